package bronze

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
)

// TestCSVRuleLocationKeepsEngineOrderSetting: locating the CSV rows that
// broke a rule numbers records in file order with preserve_insertion_order
// on, for its own connection only. The engine's setting is shared by every
// job running on it at once; a pass that switched it globally and back
// would change it under another job (and its reset would let a concurrent
// pass number records out of order). Here the engine's setting is on
// before the run and must still be on after it, the connection the job
// used must follow the engine's setting again, and the quarantined lines
// must be the bad ones.
func TestCSVRuleLocationKeepsEngineOrderSetting(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	dir := t.TempDir()
	yaml := strings.Replace(smallObjYAML, "format: ndjson", "format: csv", 1)
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadCase(t, dir)
	st := testenv.LocalStore(t)
	var b strings.Builder
	b.WriteString("id,obj,v\n")
	var wantBad []string
	for r := range 300 {
		v := fmt.Sprint(r)
		if r%97 == 13 {
			v = "-1" // breaks min: 0
		}
		fmt.Fprintf(&b, "r%d,1,%s\n", r, v)
		if v == "-1" {
			wantBad = append(wantBad, fmt.Sprintf("%d,v", r+2)) // header is line 1
		}
	}
	f := filepath.Join(dir, "o.csv")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := raw.LandFile(ctx, st, "m", "csv", f, received); err != nil {
		t.Fatal(err)
	}
	setting := func() string {
		var v string
		if err := e.DB().QueryRowContext(ctx, "SELECT current_setting('preserve_insertion_order')").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if _, err := e.DB().ExecContext(ctx, "SET GLOBAL preserve_insertion_order = true"); err != nil {
		t.Fatal(err)
	}
	for _, global := range []string{"true", "false"} {
		if global == "false" {
			if _, err := e.DB().ExecContext(ctx, "SET GLOBAL preserve_insertion_order = false"); err != nil {
				t.Fatal(err)
			}
			st = testenv.LocalStore(t)
			if _, _, err := raw.LandFile(ctx, st, "m", "csv", f, received); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Run(ctx, Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}, precise: true}, p.Sources["m"])
		if err != nil {
			t.Fatal(err)
		}
		if !s.Balanced() || s.Quarantined != int64(len(wantBad)) {
			t.Fatalf("global %s: stats %s; want %d quarantined", global, s, len(wantBad))
		}
		// Every connection of the pool (the job's among them) reads the
		// engine's setting.
		for range 4 {
			if got := setting(); got != global {
				t.Fatalf("preserve_insertion_order is %s after the run, the engine's is %s", got, global)
			}
		}
		q := tableCSV(t, st, e.DB(), "bronze/_quarantine", "line, column_name")
		if want := tableLines("line,column_name", wantBad); q != want {
			t.Errorf("global %s: quarantine\n--- got\n%s\n--- want\n%s", global, q, want)
		}
	}
}
