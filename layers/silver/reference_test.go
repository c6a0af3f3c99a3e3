package silver

import (
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
)

func mkAgg(name, fn, arg string) *config.Aggregate {
	return &config.Aggregate{Name: name, Expr: fn + "(" + arg + ")", Func: fn, Arg: arg}
}

// silverCfg is a silver table over bronze.meters grouped by meter_id with
// n = count(*) and total = sum(usage) unless aggs are given.
func silverCfg(name string, size, slide, delay time.Duration, output string, aggs ...*config.Aggregate) *config.Silver {
	if len(aggs) == 0 {
		aggs = []*config.Aggregate{mkAgg("n", "count", "*"), mkAgg("total", "sum", "usage")}
	}
	return &config.Silver{
		Name: name, From: "meters", EventTime: "ts",
		Size: size, Slide: slide, Watermark: delay, Output: output,
		GroupBy: []string{"meter_id"}, Aggregates: aggs,
	}
}

// step is one run: the rows appended to bronze before it (none: a run with
// no new rows), and what must hold after it.
type step struct {
	rows      []ev
	wm        string   // watermark after the run (HH:MM:SS)
	late      int64    // late (row, window) pairs found
	out       int64    // rows written to the silver table
	committed bool     // whether the run committed to silver
	table     []string // the whole silver table after the run: start end meter n total
}

// The reference cases of Spark's withWatermark + window semantics, worked
// out by hand. Every row has usage 1, so total = n. Bronze version k is the
// commit of step k (version 0 creates the table), so the batch of step k is
// "0000000000000000000k". Every run opens a new engine: all state is read
// back from the lake (a restart between runs).
var referenceCases = []struct {
	name  string
	cfg   *config.Silver
	steps []step
	late  []string // silver._late at the end: table event_time window watermark lateness_ms window_closed_ms group batch
}{
	{
		// Tumbling 10s windows, watermark delay 5s, append.
		name: "window closing exactly at the watermark",
		cfg:  silverCfg("w", 10*time.Second, 0, 5*time.Second, "append"),
		steps: []step{
			// max 8 -> W = 3; [0,10) ends at 10 > 3: open.
			{rows: []ev{e("00:00:01", "a"), e("00:00:08", "a")}, wm: "00:00:03", committed: true},
			// max 15 -> W = 10; [0,10) ends at 10 <= 10: final, written.
			{rows: []ev{e("00:00:15", "a")}, wm: "00:00:10", out: 1, committed: true,
				table: []string{"00:00:00 00:00:10 a 2 2"}},
			// W0 = 10: 00:00:09 belongs to [0,10), which ended at the
			// watermark: late (lateness 10-9 = 1000 ms, the window had been
			// final for 0 ms). 00:00:10 opens [10,20): on time. Max stays 15.
			{rows: []ev{e("00:00:09", "a"), e("00:00:10", "a")}, wm: "00:00:10", late: 1, committed: true,
				table: []string{"00:00:00 00:00:10 a 2 2"}},
			// No new rows: the watermark does not move, nothing is written.
			{wm: "00:00:10", table: []string{"00:00:00 00:00:10 a 2 2"}},
			// max 25 -> W = 20: [10,20) (00:00:15, 00:00:10) is final.
			{rows: []ev{e("00:00:25", "a")}, wm: "00:00:20", out: 1, committed: true,
				table: []string{"00:00:00 00:00:10 a 2 2", "00:00:10 00:00:20 a 2 2"}},
		},
		late: []string{`silver.w 00:00:09 00:00:00 00:00:10 00:00:10 1000 0 {"meter_id":"a"} 00000000000000000003`},
	},
	{
		// Tumbling 10s windows, zero delay: W = max event time.
		name: "event time equal to the previous maximum with zero delay is kept",
		cfg:  silverCfg("z", 10*time.Second, 0, 0, "append"),
		steps: []step{
			// max 12 -> W = 12; [10,20) open.
			{rows: []ev{e("00:00:12", "a")}, wm: "00:00:12", committed: true},
			// W0 = 12. 00:00:12 (= the previous max = W0) is in [10,20),
			// which ends at 20 > 12: kept. 00:00:05 is in [0,10), ended at
			// 10 <= 12: late by 12-5 = 7000 ms, closed 2000 ms before.
			{rows: []ev{e("00:00:12", "a"), e("00:00:05", "b")}, wm: "00:00:12", late: 1, committed: true},
			// max 20 -> W = 20: [10,20) final with both 00:00:12 rows.
			{rows: []ev{e("00:00:20", "a")}, wm: "00:00:20", out: 1, committed: true,
				table: []string{"00:00:10 00:00:20 a 2 2"}},
			// 00:00:20 again: equal to max and to W0, starts [20,30): kept.
			{rows: []ev{e("00:00:20", "a")}, wm: "00:00:20", committed: true,
				table: []string{"00:00:10 00:00:20 a 2 2"}},
			// max 30 -> W = 30: [20,30) final with both 00:00:20 rows.
			{rows: []ev{e("00:00:30", "a")}, wm: "00:00:30", out: 1, committed: true,
				table: []string{"00:00:10 00:00:20 a 2 2", "00:00:20 00:00:30 a 2 2"}},
		},
		late: []string{`silver.z 00:00:05 00:00:00 00:00:10 00:00:12 7000 2000 {"meter_id":"b"} 00000000000000000002`},
	},
	{
		// Hopping windows: size 10s, slide 5s, zero delay. A row at t is in
		// [5k, 5k+10) for the two k with 5k <= t < 5k+10.
		name: "hopping window, a row in several windows",
		cfg:  silverCfg("h", 10*time.Second, 5*time.Second, 0, "append"),
		steps: []step{
			// 00:00:07 -> [0,10) and [5,15). W = 7: both open.
			{rows: []ev{e("00:00:07", "a")}, wm: "00:00:07", committed: true},
			// 00:00:12 -> [5,15) and [10,20). W = 12: [0,10) final (n=1).
			{rows: []ev{e("00:00:12", "a")}, wm: "00:00:12", out: 1, committed: true,
				table: []string{"00:00:00 00:00:10 a 1 1"}},
			// 00:00:08 -> [0,10): ended at 10 <= W0 12, late (4000 ms late,
			// closed 2000 ms before); [5,15): on time (15 > 12), applied.
			{rows: []ev{e("00:00:08", "a")}, wm: "00:00:12", late: 1, committed: true,
				table: []string{"00:00:00 00:00:10 a 1 1"}},
			// 00:00:30 -> [25,35), [30,40). W = 30: [5,15) final with 07, 12
			// and 08 (n=3); [10,20) final with 12 (n=1). [15,25) and [20,30)
			// never had rows.
			{rows: []ev{e("00:00:30", "a")}, wm: "00:00:30", out: 2, committed: true,
				table: []string{"00:00:00 00:00:10 a 1 1", "00:00:05 00:00:15 a 3 3", "00:00:10 00:00:20 a 1 1"}},
		},
		late: []string{`silver.h 00:00:08 00:00:00 00:00:10 00:00:12 4000 2000 {"meter_id":"a"} 00000000000000000003`},
	},
	{
		// The input of the first case in update mode: windows are written as
		// soon as they have rows and rewritten until final.
		name: "update mode",
		cfg:  silverCfg("u", 10*time.Second, 0, 5*time.Second, "update"),
		steps: []step{
			// W = 3; [0,10) received 2 rows: written although open.
			{rows: []ev{e("00:00:01", "a"), e("00:00:08", "a")}, wm: "00:00:03", out: 1, committed: true,
				table: []string{"00:00:00 00:00:10 a 2 2"}},
			// W = 10; [10,20) received a row: written. [0,10) is final now
			// but got nothing new: its row stays as it is.
			{rows: []ev{e("00:00:15", "a")}, wm: "00:00:10", out: 1, committed: true,
				table: []string{"00:00:00 00:00:10 a 2 2", "00:00:10 00:00:20 a 1 1"}},
			// 00:00:09 late as in append mode; 00:00:10 updates [10,20): its
			// old row is replaced (not duplicated).
			{rows: []ev{e("00:00:09", "a"), e("00:00:10", "a")}, wm: "00:00:10", late: 1, out: 1, committed: true,
				table: []string{"00:00:00 00:00:10 a 2 2", "00:00:10 00:00:20 a 2 2"}},
			{wm: "00:00:10", table: []string{"00:00:00 00:00:10 a 2 2", "00:00:10 00:00:20 a 2 2"}},
			// W = 20: [20,30) written with 1 row; [10,20) final, unchanged.
			{rows: []ev{e("00:00:25", "a")}, wm: "00:00:20", out: 1, committed: true,
				table: []string{"00:00:00 00:00:10 a 2 2", "00:00:10 00:00:20 a 2 2", "00:00:20 00:00:30 a 1 1"}},
		},
		late: []string{`silver.u 00:00:09 00:00:00 00:00:10 00:00:10 1000 0 {"meter_id":"a"} 00000000000000000003`},
	},
}

func TestReferenceCases(t *testing.T) {
	for _, tc := range referenceCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, store lake.Store) {
				le := newLakeEnv(t, store, tc.cfg)
				for i, s := range tc.steps {
					if s.rows != nil {
						le.appendBronze(s.rows...)
					}
					st := le.run(tc.cfg.Name)
					if got := render(st.WatermarkAfter); got != s.wm {
						t.Errorf("step %d: watermark after = %s, want %s", i+1, got, s.wm)
					}
					if st.LatePairs != s.late || st.RowsOut != s.out || (st.Version >= 0) != s.committed {
						t.Errorf("step %d: late=%d out=%d committed=%t, want late=%d out=%d committed=%t (%+v)",
							i+1, st.LatePairs, st.RowsOut, st.Version >= 0, s.late, s.out, s.committed, st)
					}
					if s.committed {
						if got := watermark(t, store, tc.cfg.Name); got != s.wm {
							t.Errorf("step %d: committed watermark = %s, want %s", i+1, got, s.wm)
						}
					}
					diffLines(t, "silver table after step "+string(rune('0'+i+1)), silverRows(t, store, tc.cfg.Name), s.table)
				}
				diffLines(t, "silver._late", lateRows(t, store), tc.late)
			})
		})
	}
}

// Every aggregate function, partial aggregates merged across two runs.
func TestAggregates(t *testing.T) {
	t.Parallel()
	cfg := silverCfg("aggs", time.Minute, 0, 0, "append",
		mkAgg("n", "count", "*"),
		mkAgg("cu", "count", "usage"),
		mkAgg("sn", "sum", "n"),
		mkAgg("su", "sum", "usage"),
		mkAgg("mn", "min", "usage"),
		mkAgg("mx", "max", "usage"),
		mkAgg("av", "avg", "usage"),
		mkAgg("an", "count_if", "anomaly"),
		mkAgg("dt", "approx_count_distinct", "tag"),
		mkAgg("last", "max", "ts"),
	)
	forEachStore(t, func(t *testing.T, store lake.Store) {
		le := newLakeEnv(t, store, cfg)
		// Run 1: W = 00:00:30 (zero delay); [0,60) open for a and b. The row
		// without an event time is ignored (counted in RowsNoEventTime).
		le.appendBronze(
			ev{at: "00:00:10", meter: "a", usage: f64(1.5), n: 2, tag: "x"},
			ev{at: "00:00:20", meter: "a", usage: f64(2.5), n: 3, anomaly: true, tag: "y"},
			ev{at: "00:00:30", meter: "b", usage: nil, n: 1, tag: "x"},
			ev{at: "-", meter: "a", usage: f64(100), n: 100, tag: "q"},
		)
		st := le.run("aggs")
		if st.RowsIn != 4 || st.RowsNoEventTime != 1 || st.RowsOut != 0 || st.StateRows != 2 {
			t.Errorf("run 1: %+v", st)
		}
		// Run 2: 00:01:05 moves W to 00:01:05: [0,60) final for a and b.
		//   a: rows 1.5/2/x, 2.5/3/y/anomaly, 4/5/x/anomaly: n 3, count(usage) 3,
		//      sum(n) 10, sum 8, min 1.5, max 4, avg 8/3, 2 anomalies, 2 tags.
		//   b: one row with a null usage: count(usage) 0, sum/min/max/avg null.
		le.appendBronze(
			ev{at: "00:00:40", meter: "a", usage: f64(4), n: 5, anomaly: true, tag: "x"},
			ev{at: "00:01:05", meter: "a", usage: f64(1), n: 1, tag: "z"},
		)
		st = le.run("aggs")
		if st.RowsOut != 2 || st.StateRows != 1 {
			t.Errorf("run 2: %+v", st)
		}
		diffLines(t, "silver.aggs", silverRows(t, store, "aggs"), []string{
			"00:00:00 00:01:00 a 3 3 10 8 1.5 4 2.6666666666666665 2 2 00:00:40",
			"00:00:00 00:01:00 b 1 0 1 null null null null 0 1 00:00:30",
		})
		// Column types.
		diffLines(t, "silver.aggs schema", queryTable(t, store, "silver/aggs",
			"DISTINCT typeof(window_start), typeof(window_end), typeof(meter_id), typeof(n), typeof(cu), typeof(sn), typeof(su), typeof(mn), typeof(mx), typeof(av), typeof(an), typeof(dt), typeof(last)"),
			[]string{"TIMESTAMP WITH TIME ZONE TIMESTAMP WITH TIME ZONE VARCHAR BIGINT BIGINT BIGINT DOUBLE DOUBLE DOUBLE DOUBLE BIGINT BIGINT TIMESTAMP WITH TIME ZONE"})
	})
}
