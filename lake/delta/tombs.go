package delta

import (
	"encoding/binary"
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

// flat returns a copy with everything in a new base, whose tombstones
// share their partition values (pvInterner).
func (t *tombs) flat() tombs {
	base := make(map[string]Remove, t.len())
	var pvs pvInterner
	for p, r := range t.all() {
		r.PartitionValues = pvs.intern(r.PartitionValues)
		base[p] = r
	}
	return tombs{base: base}
}

// pvInterner hands out one shared PartitionValues per distinct value.
//
// A streaming table's tombstones almost all sit in a few partitions (one
// per day), yet each decoded Remove carries a map of its own: measured on
// 100,000 decoded tombstones of one partition, a base took 494 bytes per
// tombstone with a map each and 190 with one shared. Tombstones are
// read-only once in a base, so equal values can share one map.
type pvInterner struct {
	seen map[string]PartitionValues
	key  []byte
}

// intern returns a map equal to pv, shared with every earlier equal one.
// nil stays nil, so a Remove decodes and re-encodes as it came.
func (in *pvInterner) intern(pv PartitionValues) PartitionValues {
	if pv == nil {
		return nil
	}
	in.key = in.key[:0]
	cols := make([]string, 0, 4)
	for c := range pv {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	for _, c := range cols {
		in.key = binary.AppendUvarint(in.key, uint64(len(c)))
		in.key = append(in.key, c...)
		if v := pv[c]; v == nil {
			in.key = append(in.key, 0)
		} else {
			in.key = append(in.key, 1)
			in.key = binary.AppendUvarint(in.key, uint64(len(*v)))
			in.key = append(in.key, *v...)
		}
	}
	if shared, ok := in.seen[string(in.key)]; ok {
		return shared
	}
	if in.seen == nil {
		in.seen = map[string]PartitionValues{}
	}
	in.seen[string(in.key)] = pv
	return pv
}
