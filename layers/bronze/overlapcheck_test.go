package bronze

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
)

// checkWhileTyped makes every one-object batch of a local lake check its
// object while it is typed (overlapcheck.go) for the rest of the test.
func checkWhileTyped(t *testing.T) {
	old := overlapCheckBytes
	overlapCheckBytes = 1
	t.Cleanup(func() { overlapCheckBytes = old })
}

// TestRawObjectCheckedWhileTyped is TestRawObjectChecked with one object
// a batch, each checked while DuckDB types it: an object cut short, edited
// in place or deleted after landing still fails the run with the error
// naming it and its manifest, and nothing of it (rows or quarantine rows)
// is committed; the object before it is promoted, the one after it waits.
func TestRawObjectCheckedWhileTyped(t *testing.T) {
	checkWhileTyped(t)
	e := newEngine(t)
	p := verifyPipeline(t)
	inputs := verifyInputs()
	// The edit makes a value bad too: the typing would quarantine a row
	// of an object whose check then fails.
	damages := []struct {
		name  string
		apply func(t *testing.T, st lake.Store, m raw.Manifest, data []byte)
		want  string
	}{
		{"truncated", func(t *testing.T, st lake.Store, m raw.Manifest, data []byte) {
			writeObject(t, st, m.Key, data[:len(data)*2/3])
		}, "its manifest records"},
		{"edited", func(t *testing.T, st lake.Store, m raw.Manifest, data []byte) {
			edited := bytes.Replace(data, []byte(`"v":1017`), []byte(`"v":"xyz"`), 1)
			edited = edited[:len(data)]
			writeObject(t, st, m.Key, edited)
		}, "has sha256 "},
		{"deleted", func(t *testing.T, st lake.Store, m raw.Manifest, data []byte) {
			if err := st.Delete(context.Background(), m.Key); err != nil {
				t.Fatal(err)
			}
		}, "does not exist"},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
				ctx := context.Background()
				var ms []raw.Manifest
				for i, data := range inputs {
					m, _, err := raw.Land(ctx, st, "m", fmt.Sprintf("in%d.ndjson", i), "ndjson", bytes.NewReader(data), received.Add(time.Duration(i)*time.Second))
					if err != nil {
						t.Fatal(err)
					}
					ms = append(ms, m)
				}
				d.apply(t, st, ms[1], inputs[1])
				deps := Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}, MaxBatchObjects: 1}
				s, err := Run(ctx, deps, p.Sources["m"])
				if err == nil {
					t.Fatalf("run over a %s object succeeded: %s", d.name, s)
				}
				for _, want := range []string{ms[1].Key, raw.ManifestKey("m", ms[1].SHA256), d.want, "in1.ndjson", "nothing of it is committed"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error does not say %q: %v", want, err)
					}
				}
				checkRows(t, st, e, inputs[:1])
				if q := tableCSV(t, st, e.DB(), "bronze/_quarantine", quarantineCols); q != "(no table)\n" {
					t.Errorf("quarantine after the refused run:\n%s", q)
				}
				writeObject(t, st, ms[1].Key, inputs[1])
				if s, err := Run(ctx, deps, p.Sources["m"]); err != nil || s.Objects != 2 || s.Written != 80 {
					t.Errorf("run after the fix: %s, %v; want the 2 waiting objects, 80 rows", s, err)
				}
				checkRows(t, st, e, inputs)
			})
		})
	}
}

// TestCheckWhileTypedSameResults runs the golden cases, the bad-value
// corpus and the fast-against-precise cases with every one-object batch
// checked while it is typed: the rows, quarantine rows and accounting they
// compare must not change.
func TestCheckWhileTypedSameResults(t *testing.T) {
	checkWhileTyped(t)
	t.Run("golden", TestGolden)
	t.Run("corpus", TestBadValueCorpus)
	t.Run("fast", TestFastPathMatchesPrecise)
}
