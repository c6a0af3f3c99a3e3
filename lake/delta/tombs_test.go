package delta

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// TestTombsMatchAMap: whatever mix of sets, deletes and copies, every
// tombs answers as a plain map that got the same operations would, and a
// copy changes independently of what it was copied from (and of the
// other copies sharing its base).
func TestTombsMatchAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type pair struct {
		ts  tombs
		ref map[string]Remove
	}
	live := []*pair{{ref: map[string]Remove{}}}
	for step := range 20000 {
		p := live[rng.IntN(len(live))]
		path := fmt.Sprintf("f%04d", rng.IntN(3000))
		switch op := rng.IntN(10); {
		case op < 6:
			r := Remove{Path: path, DeletionTimestamp: int64(step)}
			p.ts.set(r)
			p.ref[path] = r
		case op < 9:
			p.ts.del(path)
			delete(p.ref, path)
		default:
			c := &pair{ts: p.ts.clone(), ref: maps.Clone(p.ref)}
			if rng.IntN(4) == 0 {
				c.ts = c.ts.flat()
			}
			live = append(live, c)
			if len(live) > 8 {
				live = slices.Delete(live, 0, 1)
			}
		}
		if step%97 == 0 {
			for i, q := range live {
				checkTombs(t, fmt.Sprintf("step %d copy %d", step, i), &q.ts, q.ref)
			}
		}
	}
	for i, q := range live {
		checkTombs(t, fmt.Sprintf("end copy %d", i), &q.ts, q.ref)
	}
}

func checkTombs(t *testing.T, what string, ts *tombs, ref map[string]Remove) {
	t.Helper()
	if ts.len() != len(ref) {
		t.Fatalf("%s: len %d, want %d", what, ts.len(), len(ref))
	}
	got := map[string]Remove{}
	for p, r := range ts.all() {
		if _, dup := got[p]; dup {
			t.Fatalf("%s: all yields %s twice", what, p)
		}
		got[p] = r
	}
	if !maps.EqualFunc(got, ref, sameRemove) {
		t.Fatalf("%s: all differs from the reference (%d vs %d entries)", what, len(got), len(ref))
	}
	if want := slices.Sorted(maps.Keys(ref)); !slices.Equal(ts.paths(), want) {
		t.Fatalf("%s: paths not the sorted keys", what)
	}
	for p, r := range ref {
		if g, ok := ts.get(p); !ok || !sameRemove(g, r) {
			t.Fatalf("%s: get %s = %+v, %v; want %+v", what, p, g, ok, r)
		}
	}
	if _, ok := ts.get("absent"); ok {
		t.Fatalf("%s: get of an absent path found one", what)
	}
}

// TestTombsCopyCostFollowsChanges: a copy of tombstones that came from a
// checkpoint shares them; only what changed since is copied.
func TestTombsCopyCostFollowsChanges(t *testing.T) {
	var ts tombs
	for i := range 10000 {
		ts.set(Remove{Path: fmt.Sprintf("f%05d", i)})
	}
	ts = ts.flat()
	ts.set(Remove{Path: "new"})
	ts.del("f00001")
	c := ts.clone()
	if len(c.over)+len(c.gone) != 2 || len(c.base) != 10000 {
		t.Fatalf("copy owns %d+%d and shares %d; want 2 owned over a shared 10000", len(c.over), len(c.gone), len(c.base))
	}
	c.set(Remove{Path: "f00002", DeletionTimestamp: 7})
	if r, _ := ts.get("f00002"); r.DeletionTimestamp != 0 {
		t.Fatal("a change to the copy reached the original")
	}
}

func sameRemove(a, b Remove) bool {
	return a.Path == b.Path && a.DeletionTimestamp == b.DeletionTimestamp
}

// TestFlatSharesPartitionValues: after flat, tombstones whose partition
// values are equal hold one map between them (a streaming table's
// tombstones sit in a few partitions; a map each was most of their
// memory), values that differ in any way (a column, a value, null against
// a string, no map against an empty one) stay apart, and every tombstone
// still reads as it was set.
func TestFlatSharesPartitionValues(t *testing.T) {
	s := func(v string) *string { return &v }
	pvs := map[string]func() PartitionValues{
		"day1":     func() PartitionValues { return PartitionValues{"event_date": s("2026-12-06")} },
		"day2":     func() PartitionValues { return PartitionValues{"event_date": s("2026-12-07")} },
		"null":     func() PartitionValues { return PartitionValues{"event_date": nil} },
		"empty":    func() PartitionValues { return PartitionValues{"event_date": s("")} },
		"two":      func() PartitionValues { return PartitionValues{"event_date": s("2026-12-06"), "meter": s("m1")} },
		"other":    func() PartitionValues { return PartitionValues{"day": s("2026-12-06")} },
		"no-cols":  func() PartitionValues { return PartitionValues{} },
		"no-value": func() PartitionValues { return nil },
	}
	var ts tombs
	ref := map[string]Remove{}
	for name, pv := range pvs {
		for i := range 3 {
			r := Remove{Path: fmt.Sprintf("%s-%d", name, i), DeletionTimestamp: int64(i), PartitionValues: pv()}
			ts.set(r)
			ref[r.Path] = r
		}
	}
	flat := ts.flat()
	checkTombs(t, "flat", &flat, ref)
	ptr := func(pv PartitionValues) uintptr { return reflect.ValueOf(pv).Pointer() }
	byValue := map[string]uintptr{}
	for name := range pvs {
		first, _ := flat.get(name + "-0")
		for i := 1; i < 3; i++ {
			r, _ := flat.get(fmt.Sprintf("%s-%d", name, i))
			if ptr(r.PartitionValues) != ptr(first.PartitionValues) {
				t.Errorf("%s: tombstones %d and 0 hold different maps for equal values", name, i)
			}
		}
		if first.PartitionValues == nil {
			if name != "no-value" {
				t.Errorf("%s: partition values became nil", name)
			}
			continue
		}
		for other, p := range byValue {
			if p == ptr(first.PartitionValues) {
				t.Errorf("%s and %s share a map though their values differ", name, other)
			}
		}
		byValue[name] = ptr(first.PartitionValues)
	}
}
