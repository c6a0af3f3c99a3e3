package bronze

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
)

const verifyYAML = `lake: file://./lake
sources:
  m:
    format: ndjson
    schema:
      id: {type: string, required: true}
      v:  {type: int64}
    dedupe: [id]
`

// verifyInputs are three objects of 40 rows each, ids o<object>-<row> and
// v = 1000*object + row, so a changed digit changes a value.
func verifyInputs() [][]byte {
	var out [][]byte
	for o := range 3 {
		var b bytes.Buffer
		for r := range 40 {
			fmt.Fprintf(&b, `{"id":"o%d-%02d","v":%d}`+"\n", o, r, 1000*o+r)
		}
		out = append(out, b.Bytes())
	}
	return out
}

func verifyPipeline(t *testing.T) *config.Pipeline {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(verifyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return loadCase(t, dir)
}

// TestRawObjectChecked: a landed object cut short, edited in place (same
// size) or deleted after landing is refused by bronze with an error naming
// the object and its manifest; the object landed before it is promoted, it
// and the one after it are not (nothing of them is committed). Once the
// object is restored or sent again, the next run promotes the rest, and
// every row is in bronze exactly once with the value it was sent.
func TestRawObjectChecked(t *testing.T) {
	e := newEngine(t)
	p := verifyPipeline(t)
	inputs := verifyInputs()
	type damage struct {
		name  string
		apply func(t *testing.T, st lake.Store, m raw.Manifest, data []byte)
		fix   func(t *testing.T, st lake.Store, m raw.Manifest, data []byte)
		want  string // in the error
	}
	resend := func(t *testing.T, st lake.Store, m raw.Manifest, data []byte) {
		if _, already, err := raw.Land(context.Background(), st, "m", "again.ndjson", "ndjson", bytes.NewReader(data), received.Add(time.Hour)); err != nil || !already {
			t.Fatalf("re-send: already=%v err=%v", already, err)
		}
	}
	restore := func(t *testing.T, st lake.Store, m raw.Manifest, data []byte) { writeObject(t, st, m.Key, data) }
	damages := []damage{
		{"truncated", func(t *testing.T, st lake.Store, m raw.Manifest, data []byte) {
			writeObject(t, st, m.Key, data[:len(data)*2/3])
		}, resend, fmt.Sprintf("has %d bytes, its manifest records %d", len(inputs[1])*2/3, len(inputs[1]))},
		{"edited", func(t *testing.T, st lake.Store, m raw.Manifest, data []byte) {
			edited := bytes.Replace(data, []byte(`"v":1017`), []byte(`"v":1917`), 1)
			if len(edited) != len(data) || bytes.Equal(edited, data) {
				t.Fatal("the edit changed nothing or the size")
			}
			writeObject(t, st, m.Key, edited)
		}, restore, "has sha256 "},
		{"deleted", func(t *testing.T, st lake.Store, m raw.Manifest, data []byte) {
			if err := st.Delete(context.Background(), m.Key); err != nil {
				t.Fatal(err)
			}
		}, resend, "does not exist"},
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

				_, err := Run(ctx, Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}}, p.Sources["m"])
				if err == nil {
					t.Fatalf("run over a %s object succeeded", d.name)
				}
				t.Logf("refused: %v", err)
				for _, want := range []string{ms[1].Key, raw.ManifestKey("m", ms[1].SHA256), d.want, "in1.ndjson", "nothing of it is committed"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error does not say %q: %v", want, err)
					}
				}
				checkRows(t, st, e, inputs[:1])
				if q := tableCSV(t, st, e.DB(), "bronze/_quarantine", quarantineCols); q != "(no table)\n" {
					t.Errorf("quarantine after the refused run:\n%s", q)
				}

				d.fix(t, st, ms[1], inputs[1])
				s := runBronze(t, st, p, e.DB())
				if s.Objects != 2 || s.Written != 80 {
					t.Errorf("run after the fix: %s; want the 2 waiting objects, 80 rows", s)
				}
				checkRows(t, st, e, inputs)
				if s := runBronze(t, st, p, e.DB()); s.Objects != 0 {
					t.Errorf("rerun: %s; want nothing new", s)
				}
			})
		})
	}
}

// writeObject replaces an object's bytes: a local lake's file is written
// directly, as a disk error or a person would; on S3 with a PUT.
func writeObject(t *testing.T, st lake.Store, key string, data []byte) {
	t.Helper()
	if lp, ok := st.(lake.LocalPather); ok {
		if err := os.WriteFile(lp.LocalPath(key), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := st.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

// checkRows fails the test unless bronze.m holds exactly the rows of inputs,
// each once, with the value sent.
func checkRows(t *testing.T, st lake.Store, e interface{ DB() *sql.DB }, inputs [][]byte) {
	t.Helper()
	var want []string
	for _, in := range inputs {
		for _, line := range strings.Split(strings.TrimSpace(string(in)), "\n") {
			m := regexp.MustCompile(`"id":"([^"]+)","v":(\d+)`).FindStringSubmatch(line)
			want = append(want, m[1]+","+m[2])
		}
	}
	sort.Strings(want)
	got := tableCSV(t, st, e.DB(), "bronze/m", "id, CAST(v AS VARCHAR) AS v")
	if w := "id,v\n" + strings.Join(want, "\n") + "\n"; got != w {
		t.Errorf("bronze.m holds\n%s\nwant\n%s", got, w)
	}
}

// TestLostManifestRepliesEndToEnd: every reply to a manifest PUT is lost
// (MinIO stored the manifest; the client's two attempts both fail), then
// the network heals and the sender sends every file again. Bronze, run
// through the proxy with one raw download cut mid-body (which the S3 store
// resumes), must then hold every row exactly once. (Before, raw removed the committed objects as
// orphans, the re-sends answered "already landed", and every bronze run
// failed on the missing objects.)
func TestLostManifestRepliesEndToEnd(t *testing.T) {
	e := newEngine(t)
	p := verifyPipeline(t)
	inputs := verifyInputs()
	direct, opts, _ := testenv.S3Store(t)
	proxy := testenv.StartFaultProxy(t, testenv.MinIO(t), 7)
	st := proxy.S3Store(t, opts.Bucket, 2)
	ctx := context.Background()

	proxy.Add(t, testenv.FaultRule{Method: "PUT", Key: regexp.MustCompile(`/_manifest/`), Kind: testenv.DropReply})
	for i, data := range inputs {
		if _, _, err := raw.Land(ctx, st, "m", fmt.Sprintf("in%d.ndjson", i), "ndjson", bytes.NewReader(data), received.Add(time.Duration(i)*time.Second)); err != nil {
			t.Logf("land in%d.ndjson: %v", i, err) // the sender sends it again below
		}
	}
	if n := proxy.Injected()[testenv.DropReply]; n < len(inputs) {
		t.Fatalf("%d manifest replies dropped, want at least %d", n, len(inputs))
	}
	proxy.Clear()
	for i, data := range inputs {
		if _, already, err := raw.Land(ctx, st, "m", fmt.Sprintf("in%d.ndjson", i), "ndjson", bytes.NewReader(data), received.Add(time.Minute)); err != nil || !already {
			t.Fatalf("re-send in%d.ndjson: already=%v err=%v", i, already, err)
		}
	}

	proxy.Add(t, testenv.FaultRule{Method: "GET", Key: regexp.MustCompile(`^raw/m/dt=`), Kind: testenv.CutReply, Count: 1})
	deps := Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}}
	if s, err := Run(ctx, deps, p.Sources["m"]); err != nil || s.Written != int64(40*len(inputs)) {
		t.Fatalf("run with a raw download cut mid-body: %s, %v; want the read resumed", s, err)
	}
	if c := proxy.Injected(); c[testenv.CutReply] != 1 {
		t.Fatalf("faults injected: %v, want one cut-reply", c)
	}
	checkRows(t, direct, e, inputs)
	t.Logf("faults injected: %v in %d requests", proxy.Injected(), proxy.Requests())
}
