package main

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/jobs"
)

// TestTwoServeStreamsNeverOverlap checks the README's promise that stream
// mode never runs two micro-batches at once, across processes too: two
// `serve` processes in stream mode on one lake, both receiving rows, take
// turns; no job run of one overlaps in time a job run of the other (read
// from the lake's run history, where stream runs are kept).
func TestTwoServeStreamsNeverOverlap(t *testing.T) {
	l := newTestLake(t, "local")
	l.writePipeline(t, streamOnlyPipeline())
	a, b := startServe(t, l), startServe(t, l)
	owners := func() map[string]int {
		runs, err := jobs.ListRuns(t.Context(), l.store, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, r := range runs {
			n[r.Owner]++
		}
		return n
	}
	id := 0
	waitFor(t, "micro-batches run by both processes", func() bool {
		for _, srv := range []*serveProc{a, b} {
			if n := post(srv.base, id, 10); n != 10 {
				t.Fatalf("posted 10 rows to %s, %d acknowledged", srv.base, n)
			}
			id += 10
		}
		time.Sleep(100 * time.Millisecond) // pace the clients, not a synchronisation
		n := owners()
		return len(n) >= 2 && n[""] == 0 && slices.Min(mapValues(n)) >= 6 // a few batches each
	})
	stopServe(t, a)
	stopServe(t, b)

	runs, err := jobs.ListRuns(t.Context(), l.store, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
	for i, r := range runs {
		for _, o := range runs[i+1:] {
			if o.Owner != r.Owner && o.Start.Before(r.End) && r.Start.Before(o.End) {
				t.Errorf("%s by %s [%s, %s] overlaps %s by %s [%s, %s]", r.Job, r.Owner, stamp(r.Start), stamp(r.End), o.Job, o.Owner, stamp(o.Start), stamp(o.End))
			}
		}
	}
	t.Logf("%d job runs by %v, %d rows posted", len(runs), owners(), id)
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000000") }

func mapValues(m map[string]int) []int {
	var v []int
	for _, n := range m {
		v = append(v, n)
	}
	return v
}
