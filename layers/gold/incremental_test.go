package gold

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// trickyWindows is like windows (minutes [from, from+n) of meter, a SQL
// expression: 'm1' or NULL) with what makes moving averages hard: values
// over twelve orders of magnitude (so summing in another order changes the
// last bits), NULL averages, windows tying on window_start (a second
// window of the same start, longer) and rows repeated exactly.
func trickyWindows(meter string, from, n, k int) string {
	v := fmt.Sprintf("CASE WHEN i %% 9 = 4 THEN NULL ELSE ((i * 7919 + %d) %% 113) / 7.0 * pow(10, (i * 31 + %d) %% 13 - 6) END", k, k)
	one := func(extraEnd string) string {
		return fmt.Sprintf(`SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_minutes(i) AS window_start,
			TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_minutes(i + 1%s) AS window_end,
			CAST(%s AS VARCHAR) AS meter_id, CAST(i %% 7 + 1 AS BIGINT) AS readings,
			CAST(%s AS DOUBLE) AS avg_usage, CAST((%s) * 2 AS DOUBLE) AS max_usage
			FROM range(%d, %d) AS t(i)`, extraEnd, meter, v, v, from, from+n)
	}
	return one("") +
		" UNION ALL SELECT * FROM (" + one(" + 1") + ") WHERE minute(window_start) % 7 = 3" + // ties on window_start
		" UNION ALL SELECT * FROM (" + one("") + ") WHERE minute(window_start) % 11 = 5" // exact duplicates
}

var trickyAverages = map[string]config.MovingAverage{
	"rows3":  {Column: "avg_usage", Rows: 3},
	"rows20": {Column: "avg_usage", Rows: 20}, // frames over 16 rows
	"range":  {Column: "avg_usage", Range: 5 * time.Minute},
	"ema":    {Column: "avg_usage", EMAAlpha: 0.3},
}

var trickyMeters = []string{"'m1'", "'m2'", "'m3'", "'m4'", "NULL"}

func trickyGold(name, silver string, ma config.MovingAverage) *config.Gold {
	return maTable(name, silver, ma, &config.Flag{Name: "spike", When: "avg_usage > ma * 1.2"})
}

// TestAppendRunsEqualFullRun: silver growing in 1, 3 or 10 commits (later
// windows each time), with a gold run after each, gives the same gold table
// as one full run, row for row and bit for bit, for every kind of average;
// the runs after the first append, and buckets are merged before they
// pass maxBucketFiles files.
func TestAppendRunsEqualFullRun(t *testing.T) {
	// Over 32 buckets, and over the one bucket the size of these tables
	// calls for (the average written straight from silver, see
	// oneFileRowsWindow).
	for _, buckets := range []int{maxBuckets, 0} {
		t.Run(fmt.Sprintf("buckets%d", buckets), func(t *testing.T) { appendRunsEqualFullRun(t, buckets) })
	}
}

func appendRunsEqualFullRun(t *testing.T, buckets int) {
	f := newFixture(t, testenv.LocalStore(t))
	f.buckets = buckets
	const minutes = 60
	for _, parts := range []int{1, 3, 10} {
		silver := fmt.Sprintf("s%d", parts)
		f.createSilver(silver)
		for name, ma := range trickyAverages {
			f.addGold(trickyGold(fmt.Sprintf("%s_%d", name, parts), silver, ma))
		}
		per := minutes / parts
		compacted := 0
		next := make([]int, len(trickyMeters)) // each meter's first minute not committed yet
		for p := 0; p < parts; p++ {
			var sels []string
			for k, m := range trickyMeters {
				if p > 0 && p < parts-1 && (p+k)%4 == 0 {
					continue // this meter's new windows wait for the next commit
				}
				sels = append(sels, trickyWindows(m, next[k], (p+1)*per-next[k], k))
				next[k] = (p + 1) * per
			}
			f.commitSilver(silver, nil, strings.Join(sels, " UNION ALL "))
			for name := range trickyAverages {
				st := f.run(fmt.Sprintf("%s_%d", name, parts))
				want := ModeAppend
				if p == 0 {
					want = ModeFull
				}
				if st.Mode != want {
					t.Fatalf("%s_%d, commit %d: %+v, want mode %s", name, parts, p, st, want)
				}
				compacted += st.Compacted
			}
		}
		if parts == 10 && compacted == 0 {
			t.Errorf("10 appends merged no bucket")
		}
		for name := range trickyAverages {
			files, _ := filesByBucket(f.snapshot(fmt.Sprintf("gold/%s_%d", name, parts)).Files, maxBuckets)
			for b, fs := range files {
				if len(fs) > maxBucketFiles {
					t.Errorf("%s_%d: bucket %d has %d files", name, parts, b, len(fs))
				}
			}
		}
	}
	for name := range trickyAverages {
		for _, parts := range []int{3, 10} {
			f.sameRows(fmt.Sprintf("SELECT * FROM {gold.%s_1}", name), fmt.Sprintf("SELECT * FROM {gold.%s_%d}", name, parts))
		}
		n := f.query(fmt.Sprintf("SELECT count(*), count(*) FILTER (meter_id IS NULL), count(*) FILTER (ma IS NULL), count(*) FILTER (spike) > 0 FROM {gold.%s_10}", name))
		if !strings.HasSuffix(n[0], " true") || strings.HasPrefix(n[0], "0 ") {
			t.Fatalf("%s: rows, NULL meter rows, NULL averages, any spike: %s", name, n[0])
		}
	}
	// The arithmetic is DuckDB's avg, to rounding (rows repeated exactly
	// are left out: which of them gets which average is not defined).
	bad := f.query(`SELECT count(*) FROM (SELECT g.ma, avg(g.avg_usage) OVER (PARTITION BY g.meter_id ORDER BY g.window_start, g.window_end,
		g.readings, g.avg_usage, g.max_usage ROWS BETWEEN 19 PRECEDING AND CURRENT ROW) AS want,
		count(*) OVER (PARTITION BY g.meter_id, g.window_start, g.window_end, g.readings, g.avg_usage, g.max_usage) AS copies
		FROM {gold.rows20_10} AS g)
		WHERE copies = 1 AND NOT (ma IS NULL AND want IS NULL) AND NOT abs(ma - want) <= 1e-12 * abs(want)`)
	if bad[0] != "0" {
		t.Fatalf("%s moving averages differ from DuckDB's", bad[0])
	}
}

// TestLateDataFallsBack: rows that do not come after a partition's
// processed ones (a window between two processed ones, a window tying with
// the last one) and a silver rewrite (update mode) recompute the buckets
// they touch; the table still equals a full build, and later runs append
// again.
func TestLateDataFallsBack(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *fixture) {
		f.createSilver("s")
		var sels []string
		for k, m := range trickyMeters {
			sels = append(sels, trickyWindows(m, 0, 30, k))
		}
		first := f.commitSilver("s", nil, strings.Join(sels, " UNION ALL "))
		for name, ma := range trickyAverages {
			f.addGold(trickyGold(name, "s", ma))
			f.run(name)
		}
		check := func(step string, want Mode) {
			t.Helper()
			for name, ma := range trickyAverages {
				if st := f.run(name); st.Mode != want {
					t.Fatalf("%s: %s: %+v, want mode %s", step, name, st, want)
				}
				ref := fmt.Sprintf("ref_%s_%d", name, len(f.pipe.GoldOrder))
				f.addGold(trickyGold(ref, "s", ma))
				f.run(ref)
				f.sameRows("SELECT * FROM {gold."+name+"}", "SELECT * FROM {gold."+ref+"}")
			}
		}
		// Later windows: appended.
		f.commitSilver("s", nil, trickyWindows("'m1'", 30, 5, 0)+" UNION ALL "+trickyWindows("NULL", 30, 5, 4))
		check("later windows", ModeAppend)
		// A window of m2 half way between processed ones.
		f.commitSilver("s", nil, `SELECT window_start + INTERVAL 30 SECOND AS window_start, window_end + INTERVAL 30 SECOND AS window_end,
			meter_id, readings, avg_usage, max_usage FROM (`+trickyWindows("'m2'", 10, 1, 1)+`)`)
		check("a window between processed ones", ModeIncremental)
		// A window of m1 starting with its last processed one (a tie).
		f.commitSilver("s", nil, `SELECT window_start, window_end + INTERVAL 5 MINUTE AS window_end, meter_id, readings, avg_usage + 1 AS avg_usage,
			max_usage FROM (`+trickyWindows("'m1'", 34, 1, 0)+`) LIMIT 1`)
		check("a window tying with the last one", ModeIncremental)
		// Update mode: the first file rewritten with other values.
		f.commitSilver("s", []string{first[0].Path}, strings.ReplaceAll(strings.Join(sels, " UNION ALL "), "7919", "7907"))
		check("a silver rewrite", ModeIncremental)
		// And appending again.
		f.commitSilver("s", nil, trickyWindows("'m3'", 40, 3, 2))
		check("later windows again", ModeAppend)
	})
}

// TestSIGKILL kills a gold append run (a child process running this test
// binary) at each crash point, reruns it here and checks that the table
// and its state equal an uninterrupted build, then and after one more
// append.
func TestSIGKILL(t *testing.T) {
	if os.Getenv("GOLD_KILL_LAKE") != "" {
		killChild(t)
		return
	}
	t.Parallel()
	for _, point := range []string{CrashFilesWritten, CrashCommitted} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			store, err := lake.NewLocal(dir)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, store)
			killPipeline(f)
			f.createSilver("s")
			batch := func(p int) {
				var sels []string
				for k, m := range trickyMeters {
					sels = append(sels, trickyWindows(m, p*10, 10, k))
				}
				f.commitSilver("s", nil, strings.Join(sels, " UNION ALL "))
			}
			batch(0)
			f.run("g")
			batch(1)
			cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILL$", "-test.count=1")
			cmd.Env = append(os.Environ(), "GOLD_KILL_LAKE="+dir, "GOLD_KILL_AT="+point)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: want death by SIGKILL at %s, got %v\n%s", point, err, out)
			}
			want := map[string]Mode{CrashFilesWritten: ModeAppend, CrashCommitted: ModeSkipped}[point]
			if st := f.run("g"); st.Mode != want {
				t.Fatalf("rerun %+v, want mode %s", st, want)
			}
			batch(2)
			if st := f.run("g"); st.Mode != ModeAppend {
				t.Fatalf("append after the rerun %+v", st)
			}
			f.addGold(trickyGold("ref", "s", config.MovingAverage{Column: "avg_usage", Rows: 20}))
			f.run("ref")
			f.sameRows("SELECT * FROM {gold.g}", "SELECT * FROM {gold.ref}")
			// The current state file is there (a killed run's files are left
			// behind, unreferenced, like its data files).
			objs, err := f.store.List(f.ctx, "gold/g/"+stateDir, "")
			if err != nil {
				t.Fatal(err)
			}
			cur, v := currentState(f.snapshot("gold/g"))
			if v != f.snapshot("silver/s").Version || !slices.ContainsFunc(objs, func(o lake.ObjectInfo) bool { return o.Key == "gold/g/"+cur }) {
				t.Errorf("state %s of version %d, state files %v", cur, v, objs)
			}
		})
	}
}

func killPipeline(f *fixture) {
	f.addGold(trickyGold("g", "s", config.MovingAverage{Column: "avg_usage", Rows: 20}))
}

// killChild is the child of TestSIGKILL: one gold run, which kills itself
// with SIGKILL at the crash point named by GOLD_KILL_AT.
func killChild(t *testing.T) {
	store, err := lake.NewLocal(os.Getenv("GOLD_KILL_LAKE"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, store)
	killPipeline(f)
	deps := f.deps()
	deps.Crash = func(point string) error {
		if point == os.Getenv("GOLD_KILL_AT") {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}
	_, err = Run(f.ctx, deps, f.pipe.Gold["g"])
	fmt.Println("not killed:", err)
	os.Exit(3)
}

// TestDuckDBRowsMatchPass: for frames of up to duckdbMaxFrame rows, the
// averages DuckDB's window computes are the Go pass's to the bit, in a full
// build and in appends, so either may continue what the other wrote.
func TestDuckDBRowsMatchPass(t *testing.T) {
	for _, buckets := range []int{maxBuckets, 0} {
		t.Run(fmt.Sprintf("buckets%d", buckets), func(t *testing.T) { duckDBRowsMatchPass(t, buckets) })
	}
}

func duckDBRowsMatchPass(t *testing.T, buckets int) {
	f := newFixture(t, testenv.LocalStore(t))
	f.buckets = buckets
	f.createSilver("s")
	for _, n := range []int{1, 3, duckdbMaxFrame} {
		for _, name := range []string{"sql", "go"} {
			f.addGold(trickyGold(fmt.Sprintf("%s%d", name, n), "s", config.MovingAverage{Column: "avg_usage", Rows: n}))
		}
	}
	for p := range 3 {
		var sels []string
		for k, m := range trickyMeters {
			sels = append(sels, trickyWindows(m, p*40, 40, k))
		}
		f.commitSilver("s", nil, strings.Join(sels, " UNION ALL "))
		for _, n := range []int{1, 3, duckdbMaxFrame} {
			f.run(fmt.Sprintf("sql%d", n))
			deps := f.deps()
			deps.goPass = true
			if _, err := Run(f.ctx, deps, f.pipe.Gold[fmt.Sprintf("go%d", n)]); err != nil {
				t.Fatal(err)
			}
			f.sameRows(fmt.Sprintf("SELECT * FROM {gold.sql%d}", n), fmt.Sprintf("SELECT * FROM {gold.go%d}", n))
		}
	}
}

// TestBucketsFromSize: a small table is built as one bucket (one file),
// keeps the incremental append and the recompute of late rows, records its
// count, and gives the rows of a 32-bucket build; a table whose silver
// outgrew its count is rebuilt with more buckets, and a table without a
// recorded count is rebuilt.
func TestBucketsFromSize(t *testing.T) {
	f := newFixture(t, testenv.LocalStore(t))
	f.buckets = 0
	f.createSilver("s")
	for k, m := range []string{"m1", "m2", "m3", "m4"} {
		f.commitSilver("s", nil, windows(m, 0, 50, fmt.Sprintf(usage, k)))
	}
	f.addGold(maTable("small", "s", config.MovingAverage{Column: "avg_usage", Rows: 4},
		&config.Flag{Name: "spike", When: "avg_usage > ma * 1.5"}))
	st := f.run("small")
	if st.Mode != ModeFull || st.Buckets != 1 || st.FilesAdded != 1 {
		t.Fatalf("first run %+v", st)
	}
	if n := f.snapshot("gold/small").Metadata.Configuration[confBuckets]; n != "1" {
		t.Fatalf("%s = %q, want 1", confBuckets, n)
	}

	// New windows: appended as one new file, the old one stays.
	f.commitSilver("s", nil, windows("m2", 50, 10, fmt.Sprintf(usage, 1)))
	st = f.run("small")
	if st.Mode != ModeAppend || st.Buckets != 1 || st.FilesAdded != 1 || st.FilesRemoved != 0 || st.RowsWritten != 10 {
		t.Fatalf("append %+v", st)
	}

	// A late window: the one bucket is recomputed.
	f.commitSilver("s", nil, `SELECT window_start + INTERVAL 30 SECOND AS window_start, window_end + INTERVAL 30 SECOND AS window_end,
		meter_id, readings, avg_usage, max_usage FROM (`+windows("m3", 20, 1, "1000")+`)`)
	st = f.run("small")
	if st.Mode != ModeIncremental || st.Buckets != 1 || st.FilesAdded != 1 || st.FilesRemoved != 2 || st.RowsWritten != 211 {
		t.Fatalf("late window %+v", st)
	}

	// The same rows as a build over 32 buckets.
	f.buckets = maxBuckets
	f.addGold(maTable("wide", "s", config.MovingAverage{Column: "avg_usage", Rows: 4},
		&config.Flag{Name: "spike", When: "avg_usage > ma * 1.5"}))
	if st := f.run("wide"); st.Buckets != maxBuckets || st.FilesAdded != 3 { // m2 and m3 share a bucket
		t.Fatalf("wide %+v", st)
	}
	f.sameRows("SELECT * FROM {gold.small}", "SELECT * FROM {gold.wide}")

	// Silver now calls for 4 times the buckets of "small": rebuilt in full.
	f.buckets = 4
	f.commitSilver("s", nil, windows("m4", 50, 5, "1"))
	st = f.run("small")
	if st.Mode != ModeFull || st.Buckets != 4 || !strings.Contains(st.Reason, "has grown") {
		t.Fatalf("grown %+v", st)
	}
	if n := f.snapshot("gold/small").Metadata.Configuration[confBuckets]; n != "4" {
		t.Fatalf("%s = %q, want 4", confBuckets, n)
	}
	// Twice the buckets is not enough to rebuild: appended.
	f.buckets = 8
	f.commitSilver("s", nil, windows("m4", 55, 5, "1"))
	if st = f.run("small"); st.Mode != ModeAppend {
		t.Fatalf("append at 4 buckets %+v", st)
	}
	f.run("wide")
	f.sameRows("SELECT * FROM {gold.small}", "SELECT * FROM {gold.wide}")
}

// TestChooseBuckets: one bucket per bucketInputBytes of silver, a power of
// two, at most maxBuckets, and one without partition columns.
func TestChooseBuckets(t *testing.T) {
	spec := &maSpec{part: []string{"meter_id"}}
	for _, c := range []struct {
		size int64
		want int
	}{{0, 1}, {bucketInputBytes, 1}, {bucketInputBytes + 1, 2}, {5 * bucketInputBytes, 8}, {1 << 40, maxBuckets}} {
		if got := chooseBuckets(spec, []delta.Add{{Size: c.size}}, 0); got != c.want {
			t.Errorf("%d bytes: %d buckets, want %d", c.size, got, c.want)
		}
	}
	if got := chooseBuckets(&maSpec{}, []delta.Add{{Size: 1 << 40}}, 0); got != 1 {
		t.Errorf("no partition columns: %d buckets", got)
	}
}

// TestKeyedOrderMatchesPass: on windows whose (partition, order) values
// are unique, as a silver table's window key is, the one-bucket build
// sorts by those two keys alone (no tie-breakers, see oneFileRowsWindow)
// and gives the Go pass's rows, bit for bit, with a NULL partition and a
// NULL order value (one per partition, so no tie) among them, first built
// in full, then appended to. A table whose windows tie falls back to every
// column as tie-breaker and matches too. A bad flag is named.
func TestKeyedOrderMatchesPass(t *testing.T) {
	f := newFixture(t, testenv.LocalStore(t))
	f.buckets = 0 // chosen from the size: one
	for _, s := range []string{"keyed", "ties"} {
		f.createSilver(s)
		for _, name := range []string{"sql", "go"} {
			f.addGold(trickyGold(s+name, s, config.MovingAverage{Column: "avg_usage", Rows: 4}))
		}
	}
	check := func(s, sel string) {
		t.Helper()
		f.commitSilver(s, nil, sel)
		var log bytes.Buffer
		deps := f.deps()
		deps.Log = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if _, err := Run(f.ctx, deps, f.pipe.Gold[s+"sql"]); err != nil {
			t.Fatal(err)
		}
		if fellBack := strings.Contains(log.String(), "order values repeat"); fellBack != (s == "ties") {
			t.Errorf("%s: fell back to tie-breakers: %v, want %v", s, fellBack, s == "ties")
		}
		deps = f.deps()
		deps.goPass = true
		if _, err := Run(f.ctx, deps, f.pipe.Gold[s+"go"]); err != nil {
			t.Fatal(err)
		}
		f.sameRows("SELECT * FROM {gold."+s+"sql}", "SELECT * FROM {gold."+s+"go}")
	}
	unique := func(from, n int, nullStart bool) string {
		var sels []string
		for k, m := range trickyMeters {
			w := trickyWindows(m, from, n, k)
			sels = append(sels, w[:strings.Index(w, " UNION ALL ")]) // the windows alone: no ties, no duplicates
			if nullStart {                                           // a window without a start, which sorts last in its partition
				sels = append(sels, fmt.Sprintf("SELECT CAST(NULL AS TIMESTAMPTZ), TIMESTAMPTZ '2024-01-01 00:00:00+00', CAST(%s AS VARCHAR), CAST(%d AS BIGINT), CAST(%d.5 AS DOUBLE), CAST(1 AS DOUBLE)", m, k, k))
			}
		}
		return strings.Join(sels, " UNION ALL ")
	}
	check("keyed", unique(0, 40, true))
	check("keyed", unique(40, 10, false))
	var sels []string
	for k, m := range trickyMeters {
		sels = append(sels, trickyWindows(m, 0, 40, k))
	}
	check("ties", strings.Join(sels, " UNION ALL "))

	// A bad flag is named on this path too, whose flags are probed
	// only when the statement does not bind.
	f.addGold(maTable("bad", "keyed", config.MovingAverage{Column: "avg_usage", Rows: 2}, &config.Flag{Name: "hot", When: "temperature > ma"}))
	if _, err := Run(f.ctx, f.deps(), f.pipe.Gold["bad"]); err == nil || !strings.Contains(err.Error(), "flag hot") {
		t.Errorf("bad flag: err %v, want it named", err)
	}
}

// The one-bucket build runs its state statement on a second connection
// beside the main one (startState): an empty silver table writes neither a
// data file nor a state file, a main statement failing at run time stops
// the state statement and leaves nothing behind, and a later good build
// still gives the Go pass's rows.
func TestOneFileStateBesideMain(t *testing.T) {
	// Overlap whatever the input's size (the fixture's silver is small).
	old := overlapStateBytes
	overlapStateBytes = 0
	t.Cleanup(func() { overlapStateBytes = old })
	f := newFixture(t, testenv.LocalStore(t))
	f.buckets = 0 // chosen from the size: one
	f.createSilver("s")
	objects := func(prefix string) []string {
		t.Helper()
		objs, err := f.store.List(f.ctx, prefix, "")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		return keys
	}
	f.addGold(maTable("empty", "s", config.MovingAverage{Column: "avg_usage", Rows: 3}))
	if st := f.run("empty"); st.FilesAdded != 0 {
		t.Fatalf("empty silver: %+v", st)
	}
	for _, k := range objects("gold/empty/") {
		if !strings.Contains(k, "/_delta_log/") {
			t.Errorf("empty silver left %s", k)
		}
	}
	f.commitSilver("s", nil, windows("m1", 0, 30, "i"), windows("m2", 0, 20, "i * 2"))
	// Binds, then fails on the rows: the state statement was running.
	f.addGold(maTable("boom", "s", config.MovingAverage{Column: "avg_usage", Rows: 3},
		&config.Flag{Name: "hot", When: "CASE WHEN avg_usage > 25 THEN error('boom at ' || avg_usage) ELSE false END"}))
	if _, err := Run(f.ctx, f.deps(), f.pipe.Gold["boom"]); err == nil || !strings.Contains(err.Error(), "boom at") {
		t.Fatalf("failing flag: err %v, want the statement's error", err)
	}
	if keys := objects("gold/boom/"); len(keys) != 0 {
		t.Errorf("a failed build left %v", keys)
	}
	f.addGold(maTable("good", "s", config.MovingAverage{Column: "avg_usage", Rows: 3}))
	f.addGold(maTable("goodgo", "s", config.MovingAverage{Column: "avg_usage", Rows: 3}))
	if st := f.run("good"); st.FilesAdded != 1 || st.RowsWritten != 50 {
		t.Fatalf("good build: %+v", st)
	}
	deps := f.deps()
	deps.goPass = true
	if _, err := Run(f.ctx, deps, f.pipe.Gold["goodgo"]); err != nil {
		t.Fatal(err)
	}
	f.sameRows("SELECT * FROM {gold.good}", "SELECT * FROM {gold.goodgo}")
	if st, _ := currentState(f.snapshot("gold/good")); st == "" {
		t.Error("good build: no state")
	}
}
