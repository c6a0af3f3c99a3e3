package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maintTables are the tables of mirrorPipeline whose content is compared
// around an optimize.
var maintTables = []string{"bronze.meters", "bronze._quarantine", "silver.usage_1m", "gold.usage_ma", "gold.top_meters"}

// snapshotContent is every table's rows, sorted, through `medallion query`.
func snapshotContent(e *mirrorEnv) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, tbl := range maintTables {
		// Lineage columns (_source_file, _ingested_at, ...) differ between lakes.
		q := "SELECT COLUMNS(c -> NOT starts_with(c, '_')) FROM " + tbl + " ORDER BY ALL"
		switch tbl {
		case "bronze._quarantine":
			q = "SELECT COLUMNS(c -> c NOT IN ('source_file', 'batch_id', 'quarantined_at')) FROM bronze._quarantine ORDER BY ALL"
		case "gold.top_meters":
			// An average over rows read in another file order may differ in the last bit.
			q = "SELECT meter_id, round(mean_usage, 9) FROM gold.top_meters ORDER BY ALL"
		}
		out[tbl] = e.cli(0, "query", "--format", "csv", q)
	}
	return out
}

// TestOptimizeThenRunDoesNoWork: after many small runs, `medallion
// optimize --force` compacts every table it may (not gold's, which keep
// their own layout), no row changes, and the next `medallion run` finds
// nothing new in silver, gold and the mirror: no row is recomputed or
// copied. Later runs on the compacted tables give the same tables as a
// lake that was never compacted, before and after a vacuum; vacuum is a
// dry run by default and refuses a short retention without --force.
func TestOptimizeThenRunDoesNoWork(t *testing.T) {
	t.Parallel()
	pipeline := strings.NewReplacer("{extra}", "", "{topkey}", "meter_id").Replace(mirrorPipeline)
	e, ref := newMirrorEnv(t, "cli_optimize_"), newMirrorEnv(t, "cli_optimize_ref_")
	e.write(pipeline)
	ref.write(pipeline)
	step := func(i int) {
		for _, x := range []*mirrorEnv{e, ref} {
			x.ingest(i*5, 5*60, 10, 10)
			// A reading below energy_usage's min: a bronze._quarantine file each run.
			bad := filepath.Join(x.dir, fmt.Sprintf("bad%d.ndjson", i))
			if err := os.WriteFile(bad, []byte(fmt.Sprintf(`{"timestamp":"2024-01-01 00:%02d:00","meter_id":"m9","energy_usage":-%d}`+"\n", i, i+1)), 0o644); err != nil {
				t.Fatal(err)
			}
			x.cli(0, "ingest", "meters", bad)
			x.cli(0, "run")
		}
	}
	for i := range 4 {
		step(i)
	}
	before := snapshotContent(e)
	out := e.cli(0, "optimize", "--force")
	if !strings.Contains(out, "bronze.meters version 5: compacted 4 files") || !strings.Contains(out, "silver.usage_1m version 5: compacted 4 files") ||
		!strings.Contains(out, "gold.usage_ma: skipped: gold keeps its own file layout") || !strings.Contains(out, "bronze._quarantine version 5: compacted 4 files") {
		t.Errorf("optimize output:\n%s", out)
	}
	if out := e.cli(0, "optimize", "--force"); strings.Count(out, "nothing to compact") != 3 {
		t.Errorf("second optimize:\n%s", out)
	}
	after := snapshotContent(e)
	for tbl, want := range before {
		if after[tbl] != want {
			t.Errorf("%s changed by optimize:\n%s\nwant\n%s", tbl, after[tbl], want)
		}
	}
	// Time travel to the version before the compaction still reads.
	if got := e.cli(0, "query", "--format", "csv", "--as-of", "4", "SELECT COLUMNS(c -> NOT starts_with(c, '_')) FROM bronze.meters ORDER BY ALL"); got != before["bronze.meters"] {
		t.Errorf("bronze.meters as of version 4 after optimize differs")
	}
	out = e.cli(0, "run")
	for _, want := range []string{"bronze.meters: nothing new", "silver.usage_1m: nothing new", "gold.usage_ma: nothing new (v4)", "gold.top_meters: nothing new (v4)"} {
		if !strings.Contains(out, want) {
			t.Errorf("run after optimize: no %q:\n%s", want, out)
		}
	}
	if strings.Count(out, ": 0 rows copied from 0 files, 0 upserted, 0 deleted") != 2 || strings.Count(out, "up to date (v4)") != 2 {
		t.Errorf("mirror after optimize did work:\n%s", out)
	}
	mirrors := map[string]string{"bronze.meters": "meters", "silver.usage_1m": "Usage1m", "gold.usage_ma": "usage_ma", "gold.top_meters": "top_meters"}
	e.equal(mirrors)

	// Vacuum: refuses a short retention, lists by default, deletes with --yes.
	if code, _, stderr := cli(t, "", "vacuum", "-f", e.pipeline, "--retain", "1h"); code != 2 || !strings.HasPrefix(stderr, "medallion vacuum: --retain 1h is under 168h") {
		t.Errorf("vacuum --retain 1h: exit %d, %s", code, stderr)
	}
	if out := e.cli(0, "vacuum"); strings.Count(out, "no version older than 168h: nothing to delete") != 5 || !strings.Contains(out, "silver._late: not created yet") {
		t.Errorf("vacuum with the default retention on a new lake:\n%s", out)
	}
	out = e.cli(0, "vacuum", "--retain", "0s", "--force")
	if !strings.Contains(out, "bronze.meters: would delete 4 files") || !strings.Contains(out, "dry run: ") {
		t.Errorf("vacuum dry run:\n%s", out)
	}
	if got := e.cli(0, "query", "--format", "csv", "--as-of", "4", "SELECT COLUMNS(c -> NOT starts_with(c, '_')) FROM bronze.meters ORDER BY ALL"); got != before["bronze.meters"] {
		t.Errorf("a dry run deleted files")
	}
	out = e.cli(0, "vacuum", "--retain", "0s", "--force", "--yes")
	if !strings.Contains(out, "bronze.meters: deleted 4 files") || strings.Contains(out, "dry run") {
		t.Errorf("vacuum --yes:\n%s", out)
	}
	e.cli(0, "verify")
	if out := e.cli(0, "vacuum", "--retain", "0s", "--force"); strings.Contains(out, "would delete  ") || !strings.Contains(out, "bronze.meters: would delete 0 files") {
		t.Errorf("vacuum after vacuum:\n%s", out)
	}

	// Later runs on the compacted, vacuumed lake: same tables as the
	// reference lake, mirrors equal. The first lands odd seconds of
	// 00:18-00:20, windows still open, which silver (output: update)
	// rewrites in its compacted file.
	for _, x := range []*mirrorEnv{e, ref} {
		x.ingest(18, 2*60, 1, 20)
		x.cli(0, "run")
	}
	for i := 4; i < 6; i++ {
		step(i)
	}
	got, want := snapshotContent(e), snapshotContent(ref)
	for tbl := range want {
		if got[tbl] != want[tbl] {
			t.Errorf("%s after more runs differs from a lake never compacted:\n%s\nwant\n%s", tbl, got[tbl], want[tbl])
		}
	}
	e.equal(mirrors)
}

// TestOptimizeUsageErrors: bad flags and tables exit 2 naming the
// mistake; a named table that does not exist yet exits 1.
func TestOptimizeUsageErrors(t *testing.T) {
	pipeline := initLake(t)
	for _, tc := range []struct {
		args  []string
		code  int
		first string
	}{
		{[]string{"optimize", "--min-files", "1"}, 2, "medallion optimize: --min-files 1: want 2 or more"},
		{[]string{"optimize", "--target-size", "12 lots"}, 2, `medallion optimize: --target-size "12 lots": want a size of at least 1MiB, e.g. 128MiB`},
		{[]string{"optimize", "meters"}, 2, `medallion optimize: table "meters": want layer.name, e.g. bronze.meters`},
		{[]string{"optimize", "bronze.meters"}, 1, "medallion optimize: table bronze.meters has no commits yet: run `medallion run` first"},
		{[]string{"vacuum", "--retain", "soon"}, 2, `medallion vacuum: --retain "soon": want a duration such as 168h or 7d`},
		{[]string{"vacuum", "--retain", "24h"}, 2, "medallion vacuum: --retain 24h is under 168h: a reader or writer slower than that could lose files it needs; add --force to do it anyway"},
	} {
		code, _, stderr := cli(t, "", append(tc.args, "-f", pipeline)...)
		if first, _, _ := strings.Cut(stderr, "\n"); code != tc.code || first != tc.first {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", tc.args, code, stderr, tc.code, tc.first)
		}
	}
	code, stdout, stderr := cli(t, "", "optimize", "-f", pipeline)
	if code != 0 || strings.Count(stdout, "skipped: no table yet") != 6 {
		t.Errorf("optimize on a fresh lake: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestSilverFromScratchAfterVacuum: a silver table that starts after
// bronze was compacted and the replaced files vacuumed reads bronze's
// current files: same windows as over a bronze never compacted.
func TestSilverFromScratchAfterVacuum(t *testing.T) {
	t.Parallel()
	compacted, plain := initLake(t), initLake(t)
	dir := t.TempDir()
	for i := range 4 {
		var b strings.Builder
		for s := range 90 {
			for m := 1; m <= 3; m++ {
				fmt.Fprintf(&b, `{"timestamp":"2024-01-01 00:%02d:%02d","meter_id":"m%d","energy_usage":%d}`+"\n", i*2+s/60, s%60, m, (s*m+i)%50)
			}
		}
		chunk := filepath.Join(dir, fmt.Sprintf("c%d.ndjson", i))
		if err := os.WriteFile(chunk, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{compacted, plain} {
			for _, args := range [][]string{{"ingest", "meters", chunk}, {"run", "bronze"}} {
				if code, stdout, stderr := cli(t, "", append(args, "-f", p)...); code != 0 {
					t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
				}
			}
		}
	}
	for _, args := range [][]string{{"optimize", "--force"}, {"vacuum", "--retain", "0s", "--force", "--yes"}} {
		if code, stdout, stderr := cli(t, "", append(args, "-f", compacted)...); code != 0 || !strings.Contains(stdout, "bronze.meters") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	q := "SELECT COLUMNS(c -> NOT starts_with(c, '_')) FROM silver.meter_usage_1m ORDER BY ALL"
	var got [2]string
	for i, p := range []string{compacted, plain} {
		if code, stdout, stderr := cli(t, "", "run", "silver", "-f", p); code != 0 || !strings.Contains(stdout, "1080 rows in") {
			t.Fatalf("run silver: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr := cli(t, "", "query", "--format", "csv", q, "-f", p)
		if code != 0 {
			t.Fatalf("query: exit %d: %s", code, stderr)
		}
		got[i] = stdout
	}
	if got[0] != got[1] || strings.Count(got[0], "\n") < 10 {
		t.Fatalf("silver over a compacted, vacuumed bronze:\n%s\nwant\n%s", got[0], got[1])
	}
}
