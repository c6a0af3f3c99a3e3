package silver

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// genRows makes n rows, one every 2 s with up to 3 s of disorder, over three
// meters; usages are multiples of 0.25, so double sums are exact whatever
// the order of additions. With a watermark delay of 5 s no row is ever late,
// however the rows are split into runs.
func genRows(n int) []ev {
	rows := make([]ev, n)
	for i := range rows {
		sec := 2*i + (i*7)%4
		rows[i] = ev{
			at:      fmt.Sprintf("%02d:%02d:%02d", sec/3600, sec/60%60, sec%60),
			meter:   string(rune('a' + i%3)),
			usage:   f64(float64(i%8) * 0.25),
			n:       int64(i % 5),
			anomaly: i%4 == 0,
			tag:     fmt.Sprintf("t%d", i%5),
		}
	}
	return rows
}

func allAggs() []*config.Aggregate {
	return []*config.Aggregate{
		mkAgg("n", "count", "*"), mkAgg("su", "sum", "usage"), mkAgg("sn", "sum", "n"),
		mkAgg("mn", "min", "usage"), mkAgg("mx", "max", "ts"), mkAgg("av", "avg", "usage"),
		mkAgg("an", "count_if", "anomaly"), mkAgg("dt", "approx_count_distinct", "tag"),
	}
}

// split cuts rows into k contiguous runs of nearly equal size.
func split(rows []ev, k int) [][]ev {
	var out [][]ev
	for i := range k {
		out = append(out, rows[i*len(rows)/k:(i+1)*len(rows)/k])
	}
	return out
}

// Splitting the same non-late input into 1, 3 and 10 runs gives identical
// silver tables and state, in both output modes; the append output equals
// a direct DuckDB GROUP BY over all rows for the final windows.
func TestSplitInvariance(t *testing.T) {
	t.Parallel()
	rows := genRows(240)
	for _, mode := range []string{"append", "update"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, store lake.Store) {
				var ref, refState []string
				for _, k := range []int{1, 3, 10} {
					name := fmt.Sprintf("split%d", k)
					cfg := silverCfg(name, 10*time.Second, 5*time.Second, 5*time.Second, mode, allAggs()...)
					// Each split gets its own bronze table (its own lake prefix).
					le := newLakeEnv(t, prefixed(store, name), cfg)
					var late int64
					for _, part := range split(rows, k) {
						le.appendBronze(part...)
						late += le.run(name).LatePairs
					}
					if late != 0 {
						t.Fatalf("%d runs: %d late pairs, want 0", k, late)
					}
					got := silverRows(t, le.store, name)
					state := stateRows(t, le.store, name)
					if len(got) == 0 || len(state) == 0 {
						t.Fatalf("%d runs: empty output or state", k)
					}
					if ref == nil {
						ref, refState = got, state
						continue
					}
					diffLines(t, fmt.Sprintf("silver table, %d runs vs 1 run", k), got, ref)
					diffLines(t, fmt.Sprintf("state, %d runs vs 1 run", k), state, refState)
				}
				if mode == "append" {
					// max event time: row 239 at 478+1 s = 00:07:59 -> W = 00:07:54:
					// windows [s, s+10) with s+10 <= 474 s are final.
					want := directWindows(t, prefixed(store, "split1"), 474)
					got := queryTable(t, prefixed(store, "split1"), "silver/split1", "window_start, window_end, meter_id, n, su, sn")
					diffLines(t, "append output vs a direct GROUP BY", got, want)
				}
			})
		})
	}
}

// directWindows computes the hopping 10s/5s windows ending at or before
// endSec straight from the bronze files, without the silver code's window
// assignment: a join against the list of window starts.
func directWindows(t *testing.T, store lake.Store, endSec int) []string {
	files := bronzeLocals(t, store)
	return queryLines(t, fmt.Sprintf(`
		WITH b AS (SELECT * FROM read_parquet(%s)),
		     w AS (SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (s) SECOND AS ws FROM range(-5, 600, 5) r(s))
		SELECT w.ws, w.ws + INTERVAL 10 SECOND AS we, meter_id, count(*), sum(usage), CAST(sum(n) AS BIGINT)
		FROM b JOIN w ON b.ts >= w.ws AND b.ts < w.ws + INTERVAL 10 SECOND
		WHERE w.ws + INTERVAL 10 SECOND <= TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (%d) SECOND
		GROUP BY ALL`, literalList(files), endSec))
}

func bronzeLocals(t *testing.T, store lake.Store) []string {
	ctx := context.Background()
	tbl := delta.Open(store, "bronze/meters")
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mat := func(ctx context.Context, key string) (string, error) {
		return (&lake.Cache{Dir: t.TempDir()}).Path(ctx, store, key, "")
	}
	var out []string
	for _, f := range snap.Files {
		p, err := mat(ctx, tbl.Key(f.Path))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// State stays bounded over a long run: only windows that are not final are
// kept, old state files are deleted, and bronze checkpoints (every 10
// commits) do not hide new files.
func TestStateBounded(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, store lake.Store) {
		cfg := silverCfg("long", 10*time.Second, 0, 5*time.Second, "append")
		le := newLakeEnv(t, store, cfg)
		// 1000 rows, one per second, two meters, in 25 runs of 40 rows.
		var all []ev
		for i := range 1000 {
			all = append(all, e(fmt.Sprintf("%02d:%02d:%02d", i/3600, i/60%60, i%60), string(rune('a'+i%2))))
		}
		maxState := int64(0)
		for r, part := range split(all, 25) {
			le.appendBronze(part...)
			st := le.run("long")
			// W = max - 5 s: only the window holding max and possibly the one
			// before are open, for 2 meters: at most 4 state rows.
			if st.StateRows > 4 {
				t.Errorf("run %d: %d state rows, want <= 4", r+1, st.StateRows)
			}
			if got := int64(len(stateRows(t, store, "long"))); got != st.StateRows {
				t.Errorf("run %d: state file has %d rows, stats say %d", r+1, got, st.StateRows)
			}
			if files := objectsUnder(t, store, StateDir("long")); len(files) != 1 {
				t.Errorf("run %d: state files %v, want exactly the current one", r+1, files)
			}
			maxState = max(maxState, st.StateRows)
		}
		// max event time 00:16:39 (999 s) -> W = 994 s: windows [0,10) ...
		// [980,990) are final: 99 windows x 2 meters, 5 rows each.
		got := silverRows(t, store, "long")
		if len(got) != 198 {
			t.Fatalf("got %d output rows, want 198", len(got))
		}
		for _, l := range got {
			if l[len(l)-4:] != " 5 5" {
				t.Fatalf("row %q: want 5 rows per window and meter", l)
			}
		}
		t.Logf("largest state: %d rows", maxState)
	})
}

// A bronze compaction (files rewritten with dataChange=false) is not new data.
func TestBronzeCompactionIgnored(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, store lake.Store) {
		cfg := silverCfg("c", 10*time.Second, 0, 0, "append")
		le := newLakeEnv(t, store, cfg)
		le.appendBronze(e("00:00:01", "a"))
		le.appendBronze(e("00:00:02", "a")) // not consumed before the compaction
		le.run("c")
		le.appendBronze(e("00:00:03", "a"))
		compact(t, store) // v4: all three files -> one, dataChange=false
		le.appendBronze(e("00:00:15", "a"))
		st := le.run("c")
		if st.RowsIn != 2 || st.Files != 2 {
			t.Errorf("after compaction: read %d rows from %d files, want 2 from 2 (%+v)", st.RowsIn, st.Files, st)
		}
		diffLines(t, "silver.c", silverRows(t, store, "c"), []string{"00:00:00 00:00:10 a 3 3"})
	})
}

// compact rewrites every bronze file into one with dataChange=false.
func compact(t *testing.T, store lake.Store) {
	ctx := context.Background()
	tbl := delta.Open(store, "bronze/meters")
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	locals := bronzeLocals(t, store)
	out := t.TempDir() + "/compact.parquet"
	queryLines(t, fmt.Sprintf("COPY (SELECT * FROM read_parquet(%s)) TO %s (FORMAT parquet)", literalList(locals), warehouse.QuoteString(out)))
	path := "event_date=2024-01-01/compacted.parquet"
	up, err := lake.PutFile(ctx, store, "bronze/meters/"+path, out)
	if err != nil {
		t.Fatal(err)
	}
	var removes []delta.Remove
	for _, f := range snap.Files {
		removes = append(removes, f.Remove(time.Now().UnixMilli(), false))
	}
	if _, err := tbl.Commit(ctx, snap, delta.Commit{
		Adds:    []delta.Add{{Path: path, PartitionValues: delta.PartitionStrings(map[string]string{"event_date": "2024-01-01"}), Size: up.Size, DataChange: false}},
		Removes: removes, Info: delta.CommitInfo{Operation: "OPTIMIZE"},
	}); err != nil {
		t.Fatal(err)
	}
}

var errCrash = errors.New("simulated crash")

// Crash at every crash point of every run (after the silver._late commit;
// after the output and state files, before the silver commit), then rerun:
// the result equals an uninterrupted run, state and silver._late included.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	for _, ci := range []int{0, 3} { // the first case (append) and the update-mode case
		tc := referenceCases[ci]
		t.Run(tc.cfg.Output, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, store lake.Store) {
				snapshot := func(s lake.Store) []string {
					var out []string
					out = append(out, silverRows(t, s, tc.cfg.Name)...)
					out = append(out, "--late")
					out = append(out, lateRows(t, s)...)
					out = append(out, "--state")
					out = append(out, stateRows(t, s, tc.cfg.Name)...)
					out = append(out, "--watermark "+watermark(t, s, tc.cfg.Name))
					return out
				}
				// Uninterrupted.
				refStore := prefixed(store, "ref")
				ref := newLakeEnv(t, refStore, tc.cfg)
				var refAfter [][]string
				for _, s := range tc.steps {
					if s.rows != nil {
						ref.appendBronze(s.rows...)
					}
					ref.run(tc.cfg.Name)
					refAfter = append(refAfter, snapshot(refStore))
				}
				for _, point := range []string{pointLateCommitted, pointFilesWritten} {
					for crashStep := range tc.steps {
						if tc.steps[crashStep].rows == nil {
							continue // nothing to commit, nothing to crash in
						}
						sub := prefixed(store, fmt.Sprintf("%s-%d", point, crashStep))
						le := newLakeEnv(t, sub, tc.cfg)
						for i, s := range tc.steps {
							if s.rows != nil {
								le.appendBronze(s.rows...)
							}
							if i == crashStep {
								_, err := le.runWith(tc.cfg.Name, func(p string) error {
									if p == point {
										return errCrash
									}
									return nil
								})
								if !errors.Is(err, errCrash) {
									t.Fatalf("crash at %s in step %d: err = %v", point, i+1, err)
								}
							}
							le.run(tc.cfg.Name)
							diffLines(t, fmt.Sprintf("crash at %s in step %d: after step %d", point, crashStep+1, i+1), snapshot(sub), refAfter[i])
						}
					}
				}
			})
		})
	}
}

// A crash after the silver._late commit, then more bronze data before the
// rerun: the rerun finishes exactly the interrupted batch first.
func TestCrashRedoBeforeNewerData(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, store lake.Store) {
		tc := referenceCases[0]
		le := newLakeEnv(t, store, tc.cfg)
		for _, s := range tc.steps[:2] {
			le.appendBronze(s.rows...)
			le.run(tc.cfg.Name)
		}
		le.appendBronze(tc.steps[2].rows...) // bronze v3: one late row
		if _, err := le.runWith(tc.cfg.Name, func(p string) error {
			if p == pointLateCommitted {
				return errCrash
			}
			return nil
		}); !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		le.appendBronze(tc.steps[4].rows...) // bronze v4 lands before the rerun
		st := le.run(tc.cfg.Name)
		if !st.Redo || st.ToVersion != 3 || st.LateVersion != -1 || st.LatePairs != 1 {
			t.Errorf("rerun: %+v, want a redo of bronze (2, 3] writing no late rows", st)
		}
		st = le.run(tc.cfg.Name)
		if st.Redo || st.FromVersion != 3 || st.ToVersion != 4 {
			t.Errorf("next run: %+v, want bronze (3, 4]", st)
		}
		diffLines(t, "silver", silverRows(t, store, tc.cfg.Name), tc.steps[4].table)
		diffLines(t, "silver._late", lateRows(t, store), tc.late)
	})
}

// Runs of different tables may share one engine; temporary tables do not leak.
func TestSharedEngine(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, store lake.Store) {
		a := silverCfg("a", 10*time.Second, 0, 0, "append")
		b := silverCfg("b", 10*time.Second, 5*time.Second, 0, "update", allAggs()...)
		le := newLakeEnv(t, store, a, b)
		eng := openEngine(t)
		le.keepEngine = eng
		for _, part := range split(genRows(60), 4) {
			le.appendBronze(part...)
			if _, err := RunAll(context.Background(), Deps{Env: layers.Env{Store: store, DB: eng.DB(), ScratchDir: t.TempDir()}}, le.p); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := eng.DB().QueryRow("SELECT count(*) FROM duckdb_tables() WHERE temporary").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d temporary tables left behind", n)
		}
		if len(silverRows(t, store, "a")) == 0 || len(silverRows(t, store, "b")) == 0 {
			t.Error("no output")
		}
	})
}

// A changed window definition is refused with a message saying what to do.
func TestConfigChangeRefused(t *testing.T) {
	t.Parallel()
	store := prefixed(localStore(t), "x")
	cfg := silverCfg("w", 10*time.Second, 0, 0, "append")
	le := newLakeEnv(t, store, cfg)
	le.appendBronze(e("00:00:01", "a"))
	le.run("w")
	cfg.Size = 20 * time.Second
	le.appendBronze(e("00:00:02", "a"))
	_, err := le.runWith("w", nil)
	if err == nil || !containsStr(err.Error(), "the window, group_by or output changed") || !containsStr(err.Error(), "`medallion refresh silver.w`") {
		t.Fatalf("err = %v, want a refusal saying the window changed and naming medallion refresh silver.w", err)
	}
}
