package maintenance

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
)

// PruneResult counts what Prune deleted.
type PruneResult struct {
	Runs   int // run records
	Leases int // lease generation objects
}

// PruneRuns deletes the run records (jobs.RunsPrefix) of runs that started
// before now-retain, read from their keys (day folder and start time), so
// no record is opened.
func PruneRuns(ctx context.Context, store lake.Store, retain time.Duration, now time.Time) (int, error) {
	cutoff := now.Add(-retain)
	objs, err := store.List(ctx, jobs.RunsPrefix, "")
	if err != nil {
		return 0, fmt.Errorf("prune run history: list %s: %w", jobs.RunsPrefix, err)
	}
	n := 0
	for _, o := range objs {
		start, ok := runStart(o.Key)
		if !ok || !start.Before(cutoff) {
			continue
		}
		if err := store.Delete(ctx, o.Key); err != nil {
			return n, fmt.Errorf("prune run history: delete %s: %w", o.Key, err)
		}
		n++
	}
	return n, nil
}

// runStart is the start time a run record's key holds:
// <RunsPrefix><yyyymmdd>/<Unix ns, 19 digits>-<job>.json.
func runStart(key string) (time.Time, bool) {
	base := path.Base(key)
	ns, _, ok := strings.Cut(base, "-")
	if !ok || len(ns) != 19 {
		return time.Time{}, false
	}
	v, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, v), true
}

// PruneLeases deletes the lease objects (jobs.LeasePrefix) of old
// generations: every generation of a job below its newest whose object
// was last written before now-retain. The newest generation of a job is
// never deleted: the next holder numbers its generation from it, and the
// fences recorded in the tables rely on generations only growing.
func PruneLeases(ctx context.Context, store lake.Store, retain time.Duration, now time.Time) (int, error) {
	cutoff := now.Add(-retain)
	objs, err := store.List(ctx, jobs.LeasePrefix, "")
	if err != nil {
		return 0, fmt.Errorf("prune leases: list %s: %w", jobs.LeasePrefix, err)
	}
	newest := map[string]int64{}
	type gen struct {
		obj lake.ObjectInfo
		job string
		g   int64
	}
	var gens []gen
	for _, o := range objs {
		job, name, ok := strings.Cut(strings.TrimPrefix(o.Key, jobs.LeasePrefix), "/")
		num, isJSON := strings.CutSuffix(name, ".json")
		g, err := strconv.ParseInt(num, 10, 64)
		if !ok || !isJSON || strings.Contains(name, "/") || err != nil || g <= 0 {
			continue
		}
		gens = append(gens, gen{o, job, g})
		newest[job] = max(newest[job], g)
	}
	n := 0
	for _, x := range gens {
		if x.g == newest[x.job] || !x.obj.ModTime.Before(cutoff) {
			continue
		}
		if err := store.Delete(ctx, x.obj.Key); err != nil {
			return n, fmt.Errorf("prune leases: delete %s: %w", x.obj.Key, err)
		}
		n++
	}
	return n, nil
}
