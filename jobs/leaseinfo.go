package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// LeaseInfo is the current (highest) generation of one job's lease, as
// stored in the lake. It is a read-only view for dashboards: holding a lease
// goes through Acquire.
type LeaseInfo struct {
	Job        string    `json:"job"`
	Owner      string    `json:"owner"`
	Generation int64     `json:"generation"`
	Acquired   time.Time `json:"acquired"`
	Expires    time.Time `json:"expires"`
	Released   bool      `json:"released"`
}

// Held reports whether the lease still binds at now: not released and not
// past its expiry. (A contender also waits out the clock skew; this is the
// holder's own view.)
func (l LeaseInfo) Held(now time.Time) bool { return !l.Released && now.Before(l.Expires) }

// ListLeases returns the current generation of every job's lease under
// LeasePrefix, sorted by job name. It lists the prefix once and reads one
// object per job; a generation deleted between the listing and the read
// (a newer holder cleaned it up) is skipped, the next call sees the new one.
func ListLeases(ctx context.Context, store lake.Store) ([]LeaseInfo, error) {
	objs, err := store.List(ctx, LeasePrefix, "")
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	top := map[string]int64{} // job -> highest generation
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, LeasePrefix)
		job, file, ok := strings.Cut(rest, "/")
		if !ok || job == "" || strings.Contains(file, "/") {
			continue
		}
		name, ok := strings.CutSuffix(path.Base(file), ".json")
		if !ok {
			continue
		}
		g, err := strconv.ParseInt(name, 10, 64)
		if err != nil || g <= 0 {
			continue
		}
		if g > top[job] {
			top[job] = g
		}
	}
	out := make([]LeaseInfo, 0, len(top))
	for job, g := range top {
		rec, err := readLease(ctx, store, genKey(LeasePrefix+job+"/", g))
		if errors.Is(err, lake.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("lease of %s: %w", job, err)
		}
		out = append(out, LeaseInfo{
			Job: job, Owner: rec.Owner, Generation: rec.Generation,
			Acquired: rec.Acquired, Expires: rec.Expires, Released: rec.Released,
		})
	}
	slices.SortFunc(out, func(a, b LeaseInfo) int { return cmp.Compare(a.Job, b.Job) })
	return out, nil
}
