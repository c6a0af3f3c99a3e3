package delta_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake/delta"
)

// TestChanges: the files added and removed with dataChange between two
// versions, a compaction (dataChange=false) flagged and not listed, and
// ErrChangesGone once a commit file of the range is cleaned up.
func TestChanges(t *testing.T) {
	ctx := t.Context()
	st := testenv.LocalStore(t)
	tbl := delta.Open(st, "silver/t")
	s := create(t, tbl) // v0
	a := putFile(t, st, tbl, "a.parquet")
	b := putFile(t, st, tbl, "b b.parquet") // a path the log URL-encodes
	commit := func(c delta.Commit) {
		t.Helper()
		var err error
		if s, err = tbl.Commit(ctx, s, c); err != nil {
			t.Fatal(err)
		}
	}
	commit(delta.Commit{Adds: []delta.Add{a}}) // v1
	commit(delta.Commit{Adds: []delta.Add{b}}) // v2
	c := putFile(t, st, tbl, "c.parquet")
	c.DataChange = false
	commit(delta.Commit{Adds: []delta.Add{c}, Removes: []delta.Remove{a.Remove(1, false), b.Remove(1, false)}}) // v3: compaction
	commit(delta.Commit{Removes: []delta.Remove{c.Remove(2, true)}})                                            // v4: delete

	paths := func(ch *delta.Changes) string {
		var add, rm []string
		for _, f := range ch.Added {
			add = append(add, f.Path)
		}
		for _, f := range ch.Removed {
			rm = append(rm, f.Path)
		}
		return fmt.Sprintf("+%v -%v rewritten=%v meta=%v", add, rm, ch.Rewritten, ch.MetadataChanged)
	}
	for _, tc := range []struct {
		from, to int64
		want     string
	}{
		{-1, 4, "+[a.parquet b b.parquet] -[c.parquet] rewritten=true meta=true"},
		{0, 2, "+[a.parquet b b.parquet] -[] rewritten=false meta=false"},
		{1, 2, "+[b b.parquet] -[] rewritten=false meta=false"},
		{2, 3, "+[] -[] rewritten=true meta=false"},
		{3, 4, "+[] -[c.parquet] rewritten=false meta=false"},
		{4, 4, "+[] -[] rewritten=false meta=false"},
	} {
		ch, err := tbl.Changes(ctx, tc.from, tc.to)
		if err != nil {
			t.Fatalf("Changes(%d, %d): %v", tc.from, tc.to, err)
		}
		if got := paths(ch); got != tc.want {
			t.Errorf("Changes(%d, %d) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
	if err := st.Delete(ctx, "silver/t/_delta_log/00000000000000000002.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Changes(ctx, 1, 3); !errors.Is(err, delta.ErrChangesGone) {
		t.Fatalf("Changes over a cleaned-up commit: %v, want ErrChangesGone", err)
	}
	if ch, err := tbl.Changes(ctx, 2, 4); err != nil || !slices.ContainsFunc(ch.Removed, func(r delta.Remove) bool { return r.Path == "c.parquet" }) {
		t.Fatalf("Changes after the gone commit: %+v, %v", ch, err)
	}
}

// TestAppendedSinceSkipsCompaction: a compaction (dataChange=false) of
// files a reader already has is nothing new (ok, no files); appends around
// it are still the fast path; a compaction that swallowed a file the reader
// has not seen yet, or a delete, is not.
func TestAppendedSinceSkipsCompaction(t *testing.T) {
	ctx := t.Context()
	st := testenv.LocalStore(t)
	tbl := delta.Open(st, "bronze/t")
	s := create(t, tbl)                        // v0
	s = appendFile(t, st, tbl, s, "a.parquet") // v1
	s = appendFile(t, st, tbl, s, "b.parquet") // v2
	a, b := s.Files[0], s.Files[1]
	c := putFile(t, st, tbl, "c.parquet")
	c.DataChange = false
	s, err := tbl.Commit(ctx, s, delta.Commit{Adds: []delta.Add{c}, Removes: []delta.Remove{a.Remove(1, false), b.Remove(1, false)},
		Info: delta.CommitInfo{Operation: "OPTIMIZE"}}) // v3
	if err != nil {
		t.Fatal(err)
	}
	s = appendFile(t, st, tbl, s, "d.parquet") // v4
	e := putFile(t, st, tbl, "e.parquet")
	e.DataChange = false
	d := s.Files[slices.IndexFunc(s.Files, func(f delta.Add) bool { return f.Path == "d.parquet" })]
	if s, err = tbl.Commit(ctx, s, delta.Commit{Adds: []delta.Add{e}, Removes: []delta.Remove{d.Remove(1, false), c.Remove(1, false)},
		Info: delta.CommitInfo{Operation: "OPTIMIZE"}}); err != nil { // v5
		t.Fatal(err)
	}
	if s, err = tbl.Commit(ctx, s, delta.Commit{Removes: []delta.Remove{e.Remove(2, true)}}); err != nil { // v6: delete
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, to int64
		want     string
	}{
		{2, 3, "[] true"},          // only the compaction: nothing new
		{1, 3, "[] false"},         // b was compacted before the reader saw it
		{2, 4, "[d.parquet] true"}, // compaction, then an append
		{3, 4, "[d.parquet] true"},
		{4, 5, "[] true"},
		{3, 5, "[] false"}, // d compacted before the reader saw it
		{5, 6, "[] false"}, // a delete
	} {
		to, err := tbl.SnapshotAt(ctx, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		adds, ok, err := tbl.AppendedSince(ctx, tc.from, to)
		if err != nil {
			t.Fatalf("AppendedSince(%d, %d): %v", tc.from, tc.to, err)
		}
		var got []string
		for _, f := range adds {
			got = append(got, f.Path)
		}
		if s := fmt.Sprintf("%v %v", got, ok); s != tc.want {
			t.Errorf("AppendedSince(%d, %d) = %s, want %s", tc.from, tc.to, s, tc.want)
		}
	}
}

// TestAddedPaths: every file the commits of a range added, dataChange or
// not, and ErrChangesGone when a commit of the range is cleaned up.
func TestAddedPaths(t *testing.T) {
	ctx := t.Context()
	st := testenv.LocalStore(t)
	tbl := delta.Open(st, "bronze/t")
	s := create(t, tbl)
	s = appendFile(t, st, tbl, s, "a.parquet") // v1
	s = appendFile(t, st, tbl, s, "b.parquet") // v2
	c := putFile(t, st, tbl, "c.parquet")
	c.DataChange = false
	if _, err := tbl.Commit(ctx, s, delta.Commit{Adds: []delta.Add{c}, Removes: []delta.Remove{s.Files[0].Remove(1, false)}}); err != nil { // v3
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, to int64
		want     []string
	}{{0, 3, []string{"a.parquet", "b.parquet", "c.parquet"}}, {1, 3, []string{"b.parquet", "c.parquet"}}, {3, 3, nil}} {
		got, err := tbl.AddedPaths(ctx, tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(maps.Keys(got))
		if !slices.Equal(keys, tc.want) {
			t.Errorf("AddedPaths(%d, %d) = %v, want %v", tc.from, tc.to, keys, tc.want)
		}
	}
	if err := st.Delete(ctx, "bronze/t/_delta_log/00000000000000000002.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.AddedPaths(ctx, 0, 3); !errors.Is(err, delta.ErrChangesGone) {
		t.Fatalf("AddedPaths over a cleaned-up commit: %v, want ErrChangesGone", err)
	}
}
