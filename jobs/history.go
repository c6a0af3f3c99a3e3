package jobs

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// RunsPrefix is where run history lives in the lake: one small JSON object
// per run, _medallion/runs/<yyyymmdd>/<start, Unix ns, 19 digits>-<job>.json
// (the day and the start in UTC), so keys sort by start time.
const RunsPrefix = "_medallion/runs/"

// Results of a run.
const (
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultSkipped = "skipped" // not run because an upstream job failed
)

// RunRecord is one entry of the run history.
type RunRecord struct {
	Job        string    `json:"job"`
	Due        time.Time `json:"due,omitzero"` // the due time it ran for (scheduled runs)
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	RowsIn     int64     `json:"rows_in"`
	RowsOut    int64     `json:"rows_out"`
	Result     string    `json:"result"` // ResultOK, ResultFailed or ResultSkipped
	Error      string    `json:"error,omitempty"`
	Owner      string    `json:"owner,omitempty"`            // the process that ran it
	Generation int64     `json:"lease_generation,omitempty"` // the lease it ran under
}

// RecordRun appends r to the run history. It never overwrites another
// record: two runs that start in the same nanosecond get distinct keys.
func RecordRun(ctx context.Context, store lake.Store, r RunRecord) error {
	if err := checkJobName(r.Job); err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	switch r.Result {
	case ResultOK, ResultFailed, ResultSkipped:
	default:
		return fmt.Errorf("record run of %s: result %q: want ok, failed or skipped", r.Job, r.Result)
	}
	if r.Start.IsZero() || r.Start.UnixNano() < 0 {
		return fmt.Errorf("record run of %s: start %s is not a time after 1970", r.Job, r.Start)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("record run of %s: %w", r.Job, err)
	}
	start := r.Start.UTC()
	for bump := range int64(1000) {
		ns := start.UnixNano() + bump
		key := fmt.Sprintf("%s%s/%019d-%s.json", RunsPrefix, start.Format("20060102"), ns, r.Job)
		_, err := store.PutIfAbsent(ctx, key, bytes.NewReader(body), int64(len(body)))
		if !errors.Is(err, lake.ErrExists) {
			if err != nil {
				return fmt.Errorf("record run of %s: write %s: %w", r.Job, key, err)
			}
			return nil
		}
	}
	return fmt.Errorf("record run of %s: 1000 records already start at %s", r.Job, start.Format(time.RFC3339Nano))
}

// recentRunDays is how many day folders ListRuns tries before it lists the
// whole history: the history grows without bound (a schedule of @every 1s
// writes 86,400 records a day), and a page of recent runs should cost the
// listing of a few days, not of every run ever recorded.
const recentRunDays = 7

// runKey is a run record's key and its start (Unix ns).
type runKey struct {
	key string
	ns  int64
}

// ListRuns returns the run history of job (empty: every job), newest first,
// at most limit records (limit <= 0: all). It reads only the records it
// returns; with a limit it lists the most recent days first and the whole
// history only when they hold fewer than limit records.
func ListRuns(ctx context.Context, store lake.Store, job string, limit int) ([]RunRecord, error) {
	var keys []runKey
	if limit > 0 {
		// From tomorrow (a writer's clock may be ahead) back.
		day := time.Now().UTC().AddDate(0, 0, 1)
		for range recentRunDays + 1 {
			ks, err := listRunKeys(ctx, store, RunsPrefix+day.Format("20060102")+"/", job)
			if err != nil {
				return nil, err
			}
			keys = append(keys, ks...)
			day = day.AddDate(0, 0, -1)
		}
	}
	if limit <= 0 || len(keys) < limit {
		ks, err := listRunKeys(ctx, store, RunsPrefix, job)
		if err != nil {
			return nil, err
		}
		keys = ks
	}
	slices.SortFunc(keys, func(a, b runKey) int {
		if a.ns != b.ns {
			return cmp.Compare(b.ns, a.ns)
		}
		return -strings.Compare(a.key, b.key)
	})
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]RunRecord, 0, len(keys))
	for _, k := range keys {
		rc, _, err := store.Get(ctx, k.key)
		if errors.Is(err, lake.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("read run record %s: %w", k.key, err)
		}
		var r RunRecord
		err = json.NewDecoder(rc).Decode(&r)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read run record %s: %w", k.key, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// listRunKeys lists the run records under prefix that belong to job (empty:
// every job).
func listRunKeys(ctx context.Context, store lake.Store, prefix, job string) ([]runKey, error) {
	objs, err := store.List(ctx, prefix, "")
	if err != nil {
		return nil, fmt.Errorf("list run history %s: %w", prefix, err)
	}
	var keys []runKey
	for _, o := range objs {
		ns, j, ok := parseRunKey(o.Key)
		if ok && (job == "" || j == job) {
			keys = append(keys, runKey{o.Key, ns})
		}
	}
	return keys, nil
}

// parseRunKey reads <prefix><yyyymmdd>/<ns>-<job>.json.
func parseRunKey(key string) (ns int64, job string, ok bool) {
	rest, ok := strings.CutPrefix(key, RunsPrefix)
	if !ok || path.Dir(rest) == "." || strings.Contains(path.Dir(rest), "/") {
		return 0, "", false
	}
	name, ok := strings.CutSuffix(path.Base(rest), ".json")
	if !ok {
		return 0, "", false
	}
	num, job, ok := strings.Cut(name, "-")
	if !ok || job == "" {
		return 0, "", false
	}
	ns, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return ns, job, true
}
