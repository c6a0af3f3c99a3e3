package jobs

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

func TestRunHistory(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, store lake.Store) {
		ctx := t.Context()
		t0 := time.Date(2024, 1, 1, 23, 59, 59, 0, time.UTC)
		records := []RunRecord{
			{Job: "bronze", Start: t0, End: t0.Add(time.Second), RowsIn: 3, RowsOut: 2, Result: ResultOK},
			{Job: "bronze", Start: t0, End: t0.Add(time.Second), Result: ResultFailed, Error: "same nanosecond"}, // never overwrites
			{Job: "silver.meter_usage_1m", Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second), Result: ResultSkipped},
			{Job: "bronze", Start: t0.Add(-time.Hour).In(time.FixedZone("x", 3600)), Result: ResultOK},
		}
		for _, r := range records {
			if err := RecordRun(ctx, store, r); err != nil {
				t.Fatal(err)
			}
		}
		all, err := ListRuns(ctx, store, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range all {
			got = append(got, r.Job+" "+r.Result)
		}
		want := []string{"silver.meter_usage_1m skipped", "bronze failed", "bronze ok", "bronze ok"}
		if !slices.Equal(got, want) {
			t.Fatalf("ListRuns = %v, want %v", got, want)
		}
		two, err := ListRuns(ctx, store, "bronze", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(two) != 2 || two[0].Error != "same nanosecond" || two[1].RowsIn != 3 {
			t.Fatalf("bronze, limit 2: %+v", two)
		}
		objs, err := store.List(ctx, RunsPrefix, "")
		if err != nil {
			t.Fatal(err)
		}
		days := map[string]bool{}
		for _, o := range objs {
			days[strings.Split(strings.TrimPrefix(o.Key, RunsPrefix), "/")[0]] = true
		}
		if !days["20240101"] || !days["20240102"] || len(days) != 2 {
			t.Fatalf("day folders %v, want UTC days 20240101 and 20240102", days)
		}
	})
}

func TestRecordRunRefuses(t *testing.T) {
	store := testenv.LocalStore(t)
	now := time.Now()
	for _, r := range []RunRecord{
		{Job: "", Start: now, Result: ResultOK},
		{Job: "a/b", Start: now, Result: ResultOK},
		{Job: "bronze", Start: now, Result: "great"},
		{Job: "bronze", Result: ResultOK},
	} {
		if err := RecordRun(t.Context(), store, r); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

func TestParseRunKey(t *testing.T) {
	for key, want := range map[string]string{
		RunsPrefix + "20240101/1704067199000000000-bronze.meters.json": "bronze.meters",
		RunsPrefix + "20240101/1704067199000000000-gold.top-5.json":    "gold.top-5",
		RunsPrefix + "20240101/x-bronze.json":                          "",
		RunsPrefix + "1704067199000000000-bronze.json":                 "",
		RunsPrefix + "20240101/deeper/1-bronze.json":                   "",
		RunsPrefix + "20240101/1-bronze.txt":                           "",
	} {
		_, job, ok := parseRunKey(key)
		if job != want || ok != (want != "") {
			t.Errorf("parseRunKey(%q) = %q, %v, want %q", key, job, ok, want)
		}
	}
}

// TestListRunsRecentDaysFirst: a page of recent runs comes from the recent
// day folders; a limit they cannot fill falls back to the whole history.
func TestListRunsRecentDaysFirst(t *testing.T) {
	store := testenv.LocalStore(t)
	ctx := t.Context()
	now := time.Now().UTC()
	for i, start := range []time.Time{now.AddDate(-1, 0, 0), now.Add(-2 * time.Hour), now.Add(-time.Hour), now} {
		r := RunRecord{Job: "bronze", Start: start, End: start, RowsIn: int64(i), Result: ResultOK}
		if err := RecordRun(ctx, store, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		limit int
		want  []int64
	}{{2, []int64{3, 2}}, {3, []int64{3, 2, 1}}, {10, []int64{3, 2, 1, 0}}, {0, []int64{3, 2, 1, 0}}} {
		runs, err := ListRuns(ctx, store, "bronze", tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, r := range runs {
			got = append(got, r.RowsIn)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("limit %d: rows_in %v, want %v", tc.limit, got, tc.want)
		}
	}
}
