package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers/raw"
)

// growthSpacing is the simulated time between two landed objects of case
// 11's history: one every 10 minutes. With bronze's default txn retention
// (7 days) about the same ~1,000 per-object txns are live after 1,000 and
// after 100,000 objects, so the two points differ only by history.
const growthSpacing = 10 * time.Minute

// growthPoint is what case 11 measured after one history size.
type growthPoint struct {
	objects   int
	oneNew    []sample // `medallion run` after one new object landed
	nothing   []sample // `medallion run` with nothing new
	newCounts []lake.CountsSummary
	nilCounts []lake.CountsSummary
	loads     []time.Duration // in-process load of bronze.meters' latest snapshot
	txns      int             // txns in that snapshot
	files     int             // data files in that snapshot
	setup     time.Duration   // the untimed `medallion run` that consumed the history
	dir       string          // the run directory
	st        *lake.Local     // its lake
}

// case 11: growth. N objects are landed cheaply (the raw layer's keys and
// manifests written straight into the local lake, without fsync, received
// growthSpacing apart and ending now), one `medallion run` consumes them
// (untimed), then each round lands one new object and times `medallion
// run`, then times a `medallion run` that finds nothing new; the rounds
// alternate between the two histories. Ours is the
// history of -growth-large objects, the reference -growth-small; the ratio
// is ours/reference of the run with one new object.
func (b *bench) caseGrowth(ctx context.Context) *result {
	small, large := b.cfg.growthSmall, b.cfg.growthLarge
	r := &result{id: 11, kind: shareKind, maxShare: 1.2, target: "<= 1.2x", rows: 1,
		figure: fmt.Sprintf("11. Growth: `medallion run` (all layers, local lake) with one new object after %s landed objects; reference = the same after %s", count(int64(large)), count(int64(small)))}
	p := b.basePipeline()
	p.meters = true
	var pts []*growthPoint
	for _, n := range []int{small, large} {
		pt, err := b.growthSetup(ctx, p, n)
		if pt != nil && !b.cfg.keep {
			defer os.RemoveAll(pt.dir) // -keep keeps both lakes, to profile runs on them
		}
		if err != nil {
			return r.fail(fmt.Errorf("after %d objects: %w", n, err))
		}
		pts = append(pts, pt)
	}
	// Rounds alternate between the two lakes, swapping which goes first,
	// so that neither point always finds a busier machine.
	rounds := b.cfg.growthRuns
	if rounds == 0 {
		rounds = b.cfg.runs
	}
	for i := 0; i < rounds; i++ {
		order := []*growthPoint{pts[0], pts[1]}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, pt := range order {
			if err := b.growthRound(ctx, pt, i); err != nil {
				return r.fail(fmt.Errorf("after %d objects, round %d: %w", pt.objects, i+1, err))
			}
		}
	}
	r.ref, r.ours = pts[0].oneNew, pts[1].oneNew
	r.bytes = int64(len(growthRow(time.Now(), 0)))
	var lines []string
	for _, pt := range pts {
		lines = append(lines, pt.describe())
	}
	nilRatio := medianWall(pts[1].nothing).Seconds() / max(medianWall(pts[0].nothing).Seconds(), 1e-9)
	r.note = fmt.Sprintf("Case 11, after N landed objects (one every %s of simulated time, bronze txn retention 7d), %d runs each, min/median/max: ", growthSpacing, rounds) +
		strings.Join(lines, " ") + fmt.Sprintf(" A run with nothing new after %s objects takes %.2fx the time after %s.", count(int64(large)), nilRatio, count(int64(small)))
	return r.done(nil)
}

// growthSetup lands n objects in a fresh run directory and runs the
// pipeline once over them (untimed).
func (b *bench) growthSetup(ctx context.Context, p pipeline, n int) (*growthPoint, error) {
	pt := &growthPoint{objects: n}
	dir, err := b.runDir(fmt.Sprintf("growth-%d", n), p, "")
	if err != nil {
		return nil, err
	}
	pt.dir = dir
	if pt.st, err = lake.NewLocal(filepath.Join(dir, "lake")); err != nil {
		return pt, err
	}
	b.logf("case 11: landing %d objects", n)
	start := time.Now().Add(-time.Duration(n) * growthSpacing)
	for i := 0; i < n; i++ {
		if err := landCheaply(pt.st, "meters", start.Add(time.Duration(i)*growthSpacing), i); err != nil {
			return pt, err
		}
	}
	// The landing wrote without fsync: flush it now, so that the kernel's
	// writeback does not compete with the timed runs.
	syscall.Sync()
	s, _, err := b.medallion(ctx, dir, nil, "run")
	if err != nil {
		return pt, fmt.Errorf("consume the history: %w", err)
	}
	pt.setup = s.wall
	b.logf("case 11: after %d objects: the run that consumed them took %s", n, secs(s.wall))
	return pt, nil
}

// growthRound lands one new object, times `medallion run`, times a run
// that finds nothing new, and times a load of bronze.meters' snapshot.
func (b *bench) growthRound(ctx context.Context, pt *growthPoint, i int) error {
	statsFile := filepath.Join(b.work, "growth-storestats.json")
	env := []string{"MEDALLION_STORESTATS=" + statsFile}
	if err := landCheaply(pt.st, "meters", time.Now(), pt.objects+i); err != nil {
		return err
	}
	s1, c1, err := b.countedRun(ctx, pt.dir, env, statsFile)
	if err != nil {
		return fmt.Errorf("run with one new object: %w", err)
	}
	s2, c2, err := b.countedRun(ctx, pt.dir, env, statsFile)
	if err != nil {
		return fmt.Errorf("run with nothing new: %w", err)
	}
	pt.oneNew, pt.newCounts = append(pt.oneNew, s1), append(pt.newCounts, c1)
	pt.nothing, pt.nilCounts = append(pt.nothing, s2), append(pt.nilCounts, c2)
	// A store of its own for each load: decoded checkpoints are cached per
	// process and store, and this load is meant to decode it as a fresh
	// `medallion run` does.
	fresh, err := lake.NewLocal(filepath.Join(pt.dir, "lake"))
	if err != nil {
		return err
	}
	load, snap, err := loadSnapshot(ctx, fresh)
	if err != nil {
		return err
	}
	pt.loads = append(pt.loads, load)
	pt.txns, pt.files = len(snap.Txns()), len(snap.Files)
	b.logf("case 11: after %d objects, round %d: one new %s (%d lists, %d keys listed, %d gets), nothing new %s (%d lists, %d keys listed, %d gets), bronze snapshot load %s (%d txns, %d files)",
		pt.objects, i+1, secs(s1.wall), c1.Lists, c1.Listed, c1.Gets, secs(s2.wall), c2.Lists, c2.Listed, c2.Gets, load.Round(time.Microsecond), pt.txns, pt.files)
	return nil
}

// countedRun times `medallion run` and reads the lake calls it made.
func (b *bench) countedRun(ctx context.Context, dir string, env []string, statsFile string) (sample, lake.CountsSummary, error) {
	os.Remove(statsFile)
	s, _, err := b.medallion(ctx, dir, env, "run")
	if err != nil {
		return s, lake.CountsSummary{}, err
	}
	var c lake.CountsSummary
	data, err := os.ReadFile(statsFile)
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		return s, c, fmt.Errorf("read MEDALLION_STORESTATS: %w", err)
	}
	return s, c, nil
}

// loadSnapshot times a fresh load of bronze.meters' latest snapshot (the
// newest checkpoint and the commits after it), in this process.
func loadSnapshot(ctx context.Context, st lake.Store) (time.Duration, *delta.Snapshot, error) {
	start := time.Now()
	snap, err := delta.Open(st, "bronze/meters").Snapshot(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("load bronze.meters: %w", err)
	}
	return time.Since(start), snap, nil
}

// growthRow is the one energy reading of history object i, at t.
func growthRow(t time.Time, i int) string {
	return fmt.Sprintf("{\"timestamp\":%q,\"meter_id\":\"MTR-%03d\",\"energy_usage\":%d.%02d}\n",
		t.UTC().Format(time.DateTime), i%energyMeters, 1+i%90, i%100)
}

// landCheaply lands one object of one energy reading received at t the way
// raw.Land lays it out (the object, its landing index entry stamped t, its
// manifest), but as plain files without fsync: the history is the point,
// not the landing.
func landCheaply(st *lake.Local, source string, t time.Time, i int) error {
	body := []byte(growthRow(t, i))
	sum := sha256.Sum256(body)
	t = t.UTC()
	m := raw.Manifest{Source: source, Key: raw.ObjectKey(source, "ndjson", t, fmt.Sprintf("%08x", i)),
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body)), ReceivedAt: t,
		Name: fmt.Sprintf("o%06d.ndjson", i), Format: "ndjson"}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		key  string
		data []byte
	}{{m.Key, body}, {raw.IndexKey(m, t), nil}, {raw.ManifestKey(source, m.SHA256), append(js, '\n')}} {
		path := st.LocalPath(f.key)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			return fmt.Errorf("land %s: %w", f.key, err)
		}
	}
	return nil
}

// describe is one point of the note: times, lake calls and snapshot loads.
func (pt *growthPoint) describe() string {
	return fmt.Sprintf("**%s objects**: one new %s, nothing new %s; keys listed per run %s (one new) and %s (nothing new) in %s and %s list calls; objects read %s and %s; bronze snapshot load %s (%d live txns, %d files; the consuming run took %s).",
		count(int64(pt.objects)), minMedMax(pt.oneNew), minMedMax(pt.nothing),
		countRange(pt.newCounts, func(c lake.CountsSummary) int64 { return c.Listed }),
		countRange(pt.nilCounts, func(c lake.CountsSummary) int64 { return c.Listed }),
		countRange(pt.newCounts, func(c lake.CountsSummary) int64 { return c.Lists }),
		countRange(pt.nilCounts, func(c lake.CountsSummary) int64 { return c.Lists }),
		countRange(pt.newCounts, func(c lake.CountsSummary) int64 { return c.Gets }),
		countRange(pt.nilCounts, func(c lake.CountsSummary) int64 { return c.Gets }),
		durRange(pt.loads), pt.txns, pt.files, secs(pt.setup))
}

func minMedMax(ss []sample) string {
	d := make([]time.Duration, len(ss))
	for i, s := range ss {
		d[i] = s.wall
	}
	return durRange(d)
}

// durRange is "min / median / max" of ds.
func durRange(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	f := func(d time.Duration) string {
		if d < 10*time.Millisecond {
			return d.Round(10 * time.Microsecond).String()
		}
		return secs(d)
	}
	return f(s[0]) + " / " + f(med) + " / " + f(s[len(s)-1])
}

// countRange is "min-max" of one count over runs.
func countRange(cs []lake.CountsSummary, f func(lake.CountsSummary) int64) string {
	if len(cs) == 0 {
		return "-"
	}
	lo, hi := f(cs[0]), f(cs[0])
	for _, c := range cs[1:] {
		lo, hi = min(lo, f(c)), max(hi, f(c))
	}
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}
