package delta

import (
	"iter"
	"maps"
	"slices"
)

// tombs is a state's tombstones by path.
//
// A table that streams keeps every file it removed (compaction replaces
// about one small file per commit) for the tombstone retention, 7 days by
// default: hundreds of thousands of them, while the rest of a state (live
// files, txns within their retention) stays small. States are copied on
// every load (from the checkpoint cache) and every commit, so a copy must
// not cost as much as the tombstones: the bulk lives in base, a map nobody
// modifies once a tombs holds it (copies share it), and each copy owns only
// what changed since (over: removes added or replaced; gone: base paths
// added back). A copy whose own part has grown past half of base merges
// the two into a new base (flat), which keeps a copy's cost bounded by the
// commits since a checkpoint rather than by the table's history.
type tombs struct {
	base map[string]Remove // shared, read-only
	over map[string]Remove
	gone map[string]struct{}
}

// get returns the tombstone of path.
func (t *tombs) get(path string) (Remove, bool) {
	if r, ok := t.over[path]; ok {
		return r, true
	}
	if _, ok := t.gone[path]; ok {
		return Remove{}, false
	}
	r, ok := t.base[path]
	return r, ok
}

// set records r, replacing any tombstone of its path.
func (t *tombs) set(r Remove) {
	if t.over == nil {
		t.over = map[string]Remove{}
	}
	t.over[r.Path] = r
	delete(t.gone, r.Path)
}

// del forgets the tombstone of path (the file was added again).
func (t *tombs) del(path string) {
	delete(t.over, path)
	if _, ok := t.base[path]; ok {
		if t.gone == nil {
			t.gone = map[string]struct{}{}
		}
		t.gone[path] = struct{}{}
	}
}

// len is the number of tombstones.
func (t *tombs) len() int {
	n := len(t.base) - len(t.gone)
	for p := range t.over {
		if _, ok := t.base[p]; ok {
			if _, gone := t.gone[p]; !gone {
				n-- // counted in base already
			}
		}
	}
	return n + len(t.over)
}

// all yields every tombstone, in no particular order.
func (t *tombs) all() iter.Seq2[string, Remove] {
	return func(yield func(string, Remove) bool) {
		for p, r := range t.over {
			if !yield(p, r) {
				return
			}
		}
		for p, r := range t.base {
			if _, ok := t.over[p]; ok {
				continue
			}
			if _, ok := t.gone[p]; ok {
				continue
			}
			if !yield(p, r) {
				return
			}
		}
	}
}

// paths returns every tombstone's path, sorted.
func (t *tombs) paths() []string {
	out := make([]string, 0, t.len())
	for p := range t.all() {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// clone returns a copy that changes independently of t: it shares base
// (or a merged base, when t's own part is large) and copies the rest.
func (t *tombs) clone() tombs {
	if own := len(t.over) + len(t.gone); own > 64 && own > len(t.base)/2 {
		return t.flat()
	}
	return tombs{base: t.base, over: maps.Clone(t.over), gone: maps.Clone(t.gone)}
}

// flat returns a copy with everything in a new base.
func (t *tombs) flat() tombs {
	base := make(map[string]Remove, t.len())
	for p, r := range t.all() {
		base[p] = r
	}
	return tombs{base: base}
}
