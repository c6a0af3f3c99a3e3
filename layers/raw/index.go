package raw

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// The landing index lets a reader find what landed since it last looked
// without listing every manifest ever written (manifests are named by
// content, so their keys do not sort by time). Each landing writes, after
// its bytes and before its manifest, an empty object
//
//	raw/<source>/_index/<day>/<hh>/<stamp>_<sha256>_<object base name>
//
// where stamp is the lander's wall clock just before the manifest commit,
// in the fixed-width idLayout, day its first 8 characters (20240101) and
// hh the hour (12), so keys sort by landing order and a listing can start
// after any instant (lake.Store.List's startAfter). The day and hour
// directories keep a local lake's directories small: its listing reads
// one name per day of history at the top and skips whole days and hours
// before the start (a single level of hour directories, the layout
// before, grew by 24 names a day, 16,667 after 694 days, all read on
// every listing). Entries of that older layout,
//
//	raw/<source>/_index/<day>T<hh>/<stamp>_<sha256>_<object base name>
//
// are still read: they sort with the new ones by day, and a listing that
// starts on a day that holds both may return that day's older entries
// too, which ListIndex drops. An entry is only a hint: the manifest stays
// the commit point. An entry whose manifest does not exist (a landing in
// flight, or one that crashed) or names another object (these bytes had
// landed before) is not a landing.
//
// Once its manifest is committed, a landing that copied the bytes writes a
// second, empty entry, its landed mark:
//
//	raw/<source>/_index/<day>/<hh>/<stamp>_<sha256>_<object base name>.landed-<size>
//
// the first entry's key with the object's size. The manifest names this
// landing's object (its own commit won), so the mark and the key carry
// every field of the manifest a reader needs except the original file
// name (IndexEntry.Manifest): a reader of many new objects lists them
// instead of opening each manifest (bronze read 10,000 manifests one file
// each to promote 10,000 small objects). The mark is only written after
// the commit, and only by the landing whose commit won, so a mark is a
// committed landing of that object; an entry without one (a crash between
// commit and mark, a failed mark, a landing in place, a lake landed before
// marks) has its manifest read as before. Readers that do not know marks
// take a mark for an entry naming another object (its object name carries
// the suffix), which never lands: they skip it.

// indexNow is the clock of index stamps (a variable so tests can skew it).
var indexNow = time.Now

// IndexDir is where a source's landing index lives: raw/<source>/_index/.
func IndexDir(source string) string { return SourceDir(source) + "_index/" }

// IndexEntry is one entry of the landing index.
type IndexEntry struct {
	Key    string    // the entry's own key
	Stamp  time.Time // when it was written (UTC)
	SHA256 string    // the landed bytes' SHA-256, naming the manifest
	Object string    // base name of the object the landing wrote
	// Landed is set when the landing's mark was listed with it: its
	// manifest is committed and names this object, of Size bytes.
	Landed bool
	Size   int64
}

// landedMark separates an entry's key from the size in its landed mark.
const landedMark = ".landed-"

// LandedKey is the landed mark of the landing of m whose entry is ikey
// (IndexKey).
func LandedKey(ikey string, m Manifest) string {
	return ikey + landedMark + strconv.FormatInt(m.Size, 10)
}

// Manifest returns the manifest of a landed entry (Landed) of source as
// the landing committed it, except Name (the original file name, which
// the index does not carry; empty); ok is false for an entry without its
// mark or whose object name is not one raw writes.
func (e IndexEntry) Manifest(source string) (m Manifest, ok bool) {
	if !e.Landed || len(e.Object) < len(idLayout) {
		return Manifest{}, false
	}
	at, err := time.Parse(idLayout, e.Object[:len(idLayout)])
	if err != nil {
		return Manifest{}, false
	}
	format := e.Object[strings.LastIndexByte(e.Object, '.')+1:]
	if validate(source, format) != nil {
		return Manifest{}, false
	}
	at = at.UTC()
	return Manifest{
		Source: source, Key: SourceDir(source) + "dt=" + at.Format(time.DateOnly) + "/" + e.Object,
		SHA256: e.SHA256, Size: e.Size, ReceivedAt: at, Format: format,
	}, true
}

// IndexKey is the index entry of a landing of m stamped at stamp.
func IndexKey(m Manifest, stamp time.Time) string {
	return IndexDir(m.Source) + stampPath(stamp) + "_" + m.SHA256 + "_" + objectBase(m.Key)
}

// stampPath is <day>/<hh>/<stamp>.
func stampPath(t time.Time) string {
	s := StampKey(t)
	return s[:dayLen] + "/" + s[dayLen+1:hourLen] + "/" + s
}

// dayLen is the length of a stamp's day: 20240101; hourLen that of its
// hour: 20240101T12.
const (
	dayLen  = len("20060102")
	hourLen = len("20060102T15")
)

// StampKey is the fixed-width, sortable text of an index stamp.
func StampKey(t time.Time) string { return t.UTC().Format(idLayout) }

func objectBase(key string) string { return key[strings.LastIndexByte(key, '/')+1:] }

// Lands reports whether m, the manifest the entry's SHA-256 names, is the
// landing that wrote this entry (false: the same bytes landed under another
// object, and this entry's landing lost).
func (e IndexEntry) Lands(m Manifest) bool {
	return m.SHA256 == e.SHA256 && objectBase(m.Key) == e.Object
}

// LegacyEntry is the entry an object landed before the index existed would
// have had, stamped with its receive time; Key is empty.
func LegacyEntry(m Manifest) IndexEntry {
	return IndexEntry{Stamp: m.ReceivedAt.UTC(), SHA256: m.SHA256, Object: objectBase(m.Key)}
}

// writeIndex writes the index entry of m, stamped now.
func writeIndex(ctx context.Context, store lake.Store, m Manifest) (string, error) {
	key := IndexKey(m, indexNow())
	if _, err := store.Put(ctx, key, bytes.NewReader(nil), 0); err != nil {
		return "", fmt.Errorf("write landing index %s: %w", key, err)
	}
	return key, nil
}

// writeLanded writes the landed mark of the landing of m whose entry is
// ikey, after its manifest commit, as a marker (lake.PutMarker: not made
// durable on a local lake, where a synced Put cost a third more to land a
// small object). Best effort: the landing is committed whatever happens
// here, and a reader finding no mark reads the manifest.
func writeLanded(ctx context.Context, store lake.Store, ikey string, m Manifest) {
	_ = lake.PutMarker(ctx, store, LandedKey(ikey, m))
}

// ListIndex returns the index entries of source stamped at or after from
// (zero: all of them), by stamp, then SHA-256, with each one's landed
// mark folded into it (Landed, Size). Keys that are not index entries are
// skipped.
func ListIndex(ctx context.Context, store lake.Store, source string, from time.Time) ([]IndexEntry, error) {
	if err := validate(source, "csv"); err != nil {
		return nil, err
	}
	dir := IndexDir(source)
	startAfter := ""
	if !from.IsZero() {
		// Every entry stamped at from has a longer key than this prefix.
		startAfter = dir + stampPath(from)
	}
	objs, err := store.List(ctx, dir, startAfter)
	if err != nil {
		return nil, fmt.Errorf("list landing index of %s: %w", source, err)
	}
	out := make([]IndexEntry, 0, len(objs))
	at := make(map[string]int, len(objs)) // entry key -> index in out
	for _, o := range objs {
		// Entries of the older layout on from's day sort after its start
		// whatever their hour: only those stamped at or after from count.
		e, ok := parseIndexKey(dir, o.Key)
		if !ok || e.Stamp.Before(from) {
			continue
		}
		if e.Landed {
			entry := strings.TrimSuffix(e.Key, landedMark+strconv.FormatInt(e.Size, 10))
			if i, ok := at[entry]; ok {
				out[i].Landed, out[i].Size = true, e.Size
				continue
			}
			e.Key = entry // the mark sorts after its entry: this one is gone
		}
		at[e.Key] = len(out)
		out = append(out, e)
	}
	// Key order is stamp order within each layout; across the two (one
	// day of a lake written by both) it is not.
	slices.SortStableFunc(out, func(a, b IndexEntry) int {
		return cmp.Or(a.Stamp.Compare(b.Stamp), strings.Compare(a.SHA256, b.SHA256))
	})
	return out, nil
}

// parseIndexKey reads an index entry's key.
func parseIndexKey(dir, key string) (IndexEntry, bool) {
	name, ok := strings.CutPrefix(key, dir)
	if !ok {
		return IndexEntry{}, false
	}
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return IndexEntry{}, false
	}
	dirs, name := name[:i], name[i+1:]
	stamp, rest, ok := strings.Cut(name, "_")
	if !ok || len(stamp) < hourLen {
		return IndexEntry{}, false
	}
	// <day>/<hh>, or <day>T<hh> of the older layout.
	if dirs != stamp[:dayLen]+"/"+stamp[dayLen+1:hourLen] && dirs != stamp[:hourLen] {
		return IndexEntry{}, false
	}
	sha, obj, ok := strings.Cut(rest, "_")
	if !ok || !isSHA256Hex(sha) || obj == "" || strings.Contains(obj, "/") {
		return IndexEntry{}, false
	}
	t, err := time.Parse(idLayout, stamp)
	if err != nil {
		return IndexEntry{}, false
	}
	e := IndexEntry{Key: key, Stamp: t.UTC(), SHA256: sha, Object: obj}
	if i := strings.LastIndex(obj, landedMark); i >= 0 {
		size, err := strconv.ParseInt(obj[i+len(landedMark):], 10, 64)
		if err != nil || size < 0 || i == 0 || strconv.FormatInt(size, 10) != obj[i+len(landedMark):] {
			return IndexEntry{}, false
		}
		e.Object, e.Landed, e.Size = obj[:i], true, size
	}
	return e, true
}
