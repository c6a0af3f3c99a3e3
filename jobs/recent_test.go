package jobs

import (
	"slices"
	"sync"
	"testing"
)

func TestRecentRuns(t *testing.T) {
	jobsOf := func(rs []RunRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Job)
		}
		return out
	}
	r := NewRecentRuns(3)
	if got := r.Recent(0); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	for _, j := range []string{"a", "b"} {
		r.Add(RunRecord{Job: j})
	}
	if got := jobsOf(r.Recent(0)); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("partly full: %v", got)
	}
	for _, j := range []string{"c", "d", "e"} {
		r.Add(RunRecord{Job: j})
	}
	if got := jobsOf(r.Recent(0)); !slices.Equal(got, []string{"e", "d", "c"}) {
		t.Fatalf("wrapped: %v", got)
	}
	if got := jobsOf(r.Recent(2)); !slices.Equal(got, []string{"e", "d"}) {
		t.Fatalf("limit 2: %v", got)
	}
	// Concurrent writers and readers (run under -race in make test).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				r.Add(RunRecord{Job: "x"})
				r.Recent(2)
			}
		})
	}
	wg.Wait()
	if n := len(r.Recent(0)); n != 3 {
		t.Fatalf("after concurrent adds: %d runs kept, want 3", n)
	}
}
