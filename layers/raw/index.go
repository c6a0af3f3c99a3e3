package raw

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// The landing index lets a reader find what landed since it last looked
// without listing every manifest ever written (manifests are named by
// content, so their keys do not sort by time). Each landing writes, after
// its bytes and before its manifest, an empty object
//
//	raw/<source>/_index/<day>/<hh>/<day>T<hh><mm>/<stamp>_<sha256>_<object base name>
//
// where stamp is the lander's wall clock just before the manifest commit,
// in the fixed-width idLayout, day its first 8 characters (20240101), hh
// the hour (12) and <day>T<hh><mm> its first 13 (20240101T1230), so keys
// sort by landing order and a listing can start after any instant
// (lake.Store.List's startAfter). The day, hour and minute directories
// keep a local lake's directories small: a listing reads one name per day
// of history at the top, skips whole days, hours and minutes before the
// start, and reads the names of the minutes it lists, at most 60 entries
// at one landing a second where the hour directory of the layout before
// held 3,600 (and a stream of many landings a second far more), all read
// on every listing. Two older layouts,
//
//	raw/<source>/_index/<day>/<hh>/<stamp>_<sha256>_<object base name>
//	raw/<source>/_index/<day>T<hh>/<stamp>_<sha256>_<object base name>
//
// are still read. The minute directory is named by the stamp's own prefix
// so that, in an hour written by both the hour and the minute layouts, an
// hour-layout entry sorts among the minute directories by its stamp: a
// listing that starts in a minute keeps every such entry of that minute
// or later (and ListIndex drops those of the same minute stamped before
// the start). The day-hour layout sorts after a day's directory, so a
// listing that starts on a day that holds both returns that day's older
// entries, which ListIndex drops by stamp too. An entry is only a hint:
// the manifest stays the commit point. An entry whose manifest does not
// exist (a landing in flight, or one that crashed) or names another object
// (these bytes had landed before) is not a landing.

// indexNow is the clock of index stamps (a variable so tests can skew it).
var indexNow = time.Now

// SetIndexClock makes now the clock of index stamps until the function it
// returns restores the previous one. It is for a simulation that runs a
// pipeline on a simulated clock (the benchmark's compressed day): stamps
// must count in the clock that bronze's cursor, grace window and txn
// retention count in, or a grace window of one wall-clock minute would
// span hours of simulated landings. It must not be called while landings
// run.
func SetIndexClock(now func() time.Time) (restore func()) {
	prev := indexNow
	indexNow = now
	return func() { indexNow = prev }
}

// IndexDir is where a source's landing index lives: raw/<source>/_index/.
func IndexDir(source string) string { return SourceDir(source) + "_index/" }

// IndexEntry is one entry of the landing index.
type IndexEntry struct {
	Key    string    // the entry's own key
	Stamp  time.Time // when it was written (UTC)
	SHA256 string    // the landed bytes' SHA-256, naming the manifest
	Object string    // base name of the object the landing wrote
}

// IndexKey is the index entry of a landing of m stamped at stamp.
func IndexKey(m Manifest, stamp time.Time) string {
	return IndexDir(m.Source) + stampPath(stamp) + "_" + m.SHA256 + "_" + objectBase(m.Key)
}

// stampPath is <day>/<hh>/<day>T<hh><mm>/<stamp>.
func stampPath(t time.Time) string {
	s := StampKey(t)
	return s[:dayLen] + "/" + s[dayLen+1:hourLen] + "/" + s[:minuteLen] + "/" + s
}

// dayLen is the length of a stamp's day: 20240101; hourLen that of its
// hour: 20240101T12; minuteLen that of its minute: 20240101T1230.
const (
	dayLen    = len("20060102")
	hourLen   = len("20060102T15")
	minuteLen = len("20060102T1504")
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

// ListIndex returns the index entries of source stamped at or after from
// (zero: all of them), by stamp, then SHA-256. Keys that are
// not index entries are skipped.
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
	for _, o := range objs {
		// Entries of the older layouts on from's day or minute may sort
		// after its start though stamped before: only those stamped at or
		// after from count.
		if e, ok := parseIndexKey(dir, o.Key); ok && !e.Stamp.Before(from) {
			out = append(out, e)
		}
	}
	// Key order is stamp order within each layout; across them (a day of
	// a lake written by more than one) it is not.
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
	if !ok || len(stamp) < minuteLen {
		return IndexEntry{}, false
	}
	// <day>/<hh>/<day>T<hh><mm>, or the older <day>/<hh> and <day>T<hh>.
	hour := stamp[:dayLen] + "/" + stamp[dayLen+1:hourLen]
	if dirs != hour+"/"+stamp[:minuteLen] && dirs != hour && dirs != stamp[:hourLen] {
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
	return IndexEntry{Key: key, Stamp: t.UTC(), SHA256: sha, Object: obj}, true
}
