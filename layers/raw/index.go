package raw

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// The landing index lets a reader find what landed since it last looked
// without listing every manifest ever written (manifests are named by
// content, so their keys do not sort by time). Each landing writes, after
// its bytes and before its manifest, an empty object
//
//	raw/<source>/_index/<hour>/<stamp>_<sha256>_<object base name>
//
// where stamp is the lander's wall clock just before the manifest commit,
// in the fixed-width idLayout, and hour its first 11 characters
// (20240101T12), so keys sort by landing order and a listing can start
// after any instant (lake.Store.List's startAfter); the hour directories
// keep a local lake's directories small and let its listing skip whole
// hours before the start. An entry is
// only a hint: the manifest stays the commit point. An entry whose manifest
// does not exist (a landing in flight, or one that crashed) or names
// another object (these bytes had landed before) is not a landing.

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
}

// IndexKey is the index entry of a landing of m stamped at stamp.
func IndexKey(m Manifest, stamp time.Time) string {
	return IndexDir(m.Source) + stampPath(stamp) + "_" + m.SHA256 + "_" + objectBase(m.Key)
}

// stampPath is <hour>/<stamp>.
func stampPath(t time.Time) string {
	s := StampKey(t)
	return s[:hourLen] + "/" + s
}

// hourLen is the length of a stamp's hour: 20240101T12.
const hourLen = len("20060102T15")

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
// (zero: all of them), in key order: by stamp, then SHA-256. Keys that are
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
		if e, ok := parseIndexKey(dir, o.Key); ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// parseIndexKey reads an index entry's key.
func parseIndexKey(dir, key string) (IndexEntry, bool) {
	name, ok := strings.CutPrefix(key, dir)
	if !ok {
		return IndexEntry{}, false
	}
	hour, name, ok := strings.Cut(name, "/")
	if !ok {
		return IndexEntry{}, false
	}
	stamp, rest, ok := strings.Cut(name, "_")
	if !ok || !strings.HasPrefix(stamp, hour) || len(hour) != hourLen {
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
