package bronze

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers/raw"
)

// Discovery: what is pending is found from a cursor, not from a listing of
// every manifest ever written (docs/discovery.md). The cursor is a txn of
// the bronze table, appId CursorAppID(source), whose version is an instant
// in Unix nanoseconds: every raw object whose landing index entry
// (raw.IndexEntry) is stamped before it is in bronze. It is committed with
// each batch, so it moves exactly with the objects it covers. A run lists
// the index from the cursor minus the grace window (landings that finished
// after a later one's), and skips what the table's txns say it took.
//
// A table without a cursor (a new table, or one written before the index
// existed) is discovered by a full listing of manifests and index once;
// the first batch that leaves no object without an index entry behind
// records a cursor.

// DefaultDiscoveryGrace is the grace window when Deps leaves it unset.
const DefaultDiscoveryGrace = 15 * time.Minute

// CursorAppID is the txn appId of the discovery cursor of source.
func CursorAppID(source string) string { return "bronze-cursor/" + source }

// Cursor returns the discovery cursor of source recorded in snap, and
// whether there is one. The zero time is a cursor too: "list the whole
// index" (the objects landed before the index are in bronze).
func Cursor(snap *delta.Snapshot, source string) (time.Time, bool) {
	if snap == nil {
		return time.Time{}, false
	}
	v, ok := snap.TxnVersion(CursorAppID(source))
	if !ok || v <= 0 {
		return time.Time{}, ok
	}
	return time.Unix(0, v).UTC(), true
}

// ListFrom is where a listing of the index starts for a cursor and a grace
// window: the zero time (everything) for the zero cursor.
func ListFrom(cursor time.Time, grace time.Duration) time.Time {
	if cursor.IsZero() {
		return cursor
	}
	return cursor.Add(-grace)
}

// discovery is what a run found pending and how far a cursor may move as
// its batches commit.
type discovery struct {
	source  string
	stamps  map[string]time.Time // sha256 -> index stamp of each pending object not yet committed
	legacy  map[string]bool      // pending objects without an index entry, not yet committed
	settled time.Time            // newest stamp of the entries found done or pending
	next    *delta.Txn           // the cursor the batch being committed records
}

// discover lists what is pending for the job's source in snap: index
// entries from the cursor minus the grace window whose manifest is
// committed, names their landing and has no txn; without a cursor, every
// manifest too.
func (j *job) discover(ctx context.Context, snap *delta.Snapshot) ([]manifest, error) {
	d := &discovery{source: j.src.Name, stamps: map[string]time.Time{}, legacy: map[string]bool{}}
	j.disc = d
	done := func(sha string) bool {
		if snap == nil {
			return false
		}
		_, ok := snap.TxnVersion(RawAppID(j.src.Name, sha))
		return ok
	}
	cursor, ok := Cursor(snap, j.src.Name)
	from := time.Time{}
	if ok {
		from = ListFrom(cursor, j.d.DiscoveryGrace)
	}
	t0 := time.Now()
	entries, err := raw.ListIndex(ctx, j.d.Store, j.src.Name, from)
	if err != nil {
		return nil, err
	}
	j.log.Debug("bronze: listed index", "entries", len(entries), "took", time.Since(t0))
	t0 = time.Now()
	var want []string
	for _, e := range entries {
		if !done(e.SHA256) {
			want = append(want, e.SHA256)
		}
	}
	read := readManifests(ctx, j.d.Store, j.src.Name, want)
	var out []manifest
	for _, e := range entries {
		if _, dup := d.stamps[e.SHA256]; dup || done(e.SHA256) {
			d.settle(e.Stamp)
			continue
		}
		m, err := read(e.SHA256)
		if errors.Is(err, lake.ErrNotExist) {
			continue // landing in flight (the grace window looks again) or crashed
		}
		if err != nil {
			return nil, err
		}
		if !e.Lands(m.Manifest) {
			continue // these bytes had landed before, under another object
		}
		d.stamps[e.SHA256] = e.Stamp
		d.settle(e.Stamp)
		out = append(out, m)
	}
	j.log.Debug("bronze: read manifests", "manifests", len(want), "took", time.Since(t0))
	if ok {
		return out, nil
	}
	t0 = time.Now()
	legacy, err := j.legacyPending(ctx, d, done)
	if err != nil {
		return nil, err
	}
	j.log.Debug("bronze: listed manifests (no cursor)", "pending", len(legacy), "took", time.Since(t0))
	return append(out, legacy...), nil
}

// legacyPending returns the objects landed without an index entry (before
// the index existed) that are not in bronze: a full listing of manifests,
// done while the table has no cursor.
func (j *job) legacyPending(ctx context.Context, d *discovery, done func(string) bool) ([]manifest, error) {
	shas, err := listManifests(ctx, j.d.Store, j.src.Name)
	if err != nil {
		return nil, err
	}
	var want []string
	for _, sha := range shas {
		if _, indexed := d.stamps[sha]; !indexed && !done(sha) {
			want = append(want, sha)
		}
	}
	read := readManifests(ctx, j.d.Store, j.src.Name, want)
	var out []manifest
	for _, sha := range want {
		m, err := read(sha)
		if err != nil {
			return nil, err
		}
		d.legacy[sha] = true
		out = append(out, m)
	}
	return out, nil
}

func (d *discovery) settle(t time.Time) {
	if t.After(d.settled) {
		d.settled = t
	}
}

// cursorTxns returns the cursor txn a commit of batch records: the instant
// before the oldest stamp still pending after it, or, when nothing is, the
// newest stamp seen (never past the wall clock, so an index stamp from a
// clock running ahead is listed again rather than hiding what lands
// meanwhile). None while an object without an index entry is pending: the
// next run must list the manifests again.
func (d *discovery) cursorTxns(batch []manifest, now time.Time) []delta.Txn {
	if d == nil {
		return nil
	}
	d.next = nil
	in := make(map[string]bool, len(batch))
	for _, m := range batch {
		in[m.SHA256] = true
	}
	for sha := range d.legacy {
		if !in[sha] {
			return nil
		}
	}
	cur := d.settled
	oldest := time.Time{}
	for sha, t := range d.stamps {
		if !in[sha] && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	if !oldest.IsZero() {
		cur = oldest.Add(-time.Nanosecond)
	}
	if wall := time.Now(); cur.After(wall) {
		cur = wall
	}
	v, at := int64(0), now
	if !cur.IsZero() {
		v, at = cur.UnixNano(), minTime(cur, now)
	}
	tx := delta.Txn{AppID: CursorAppID(d.source), Version: v, LastUpdated: at.UnixMilli()}
	d.next = &tx
	return []delta.Txn{tx}
}

// txnTime is the lastUpdated of the txn recording that the object sha is
// in bronze: its landing stamp (not past now), so that txn retention counts
// in the clock the cursor and its grace window count in: a txn expires
// only when objects landed a retention later are in bronze, far past any
// listing from the cursor. An object without an index entry gets now.
func (d *discovery) txnTime(sha string, now time.Time) time.Time {
	if d == nil {
		return now
	}
	if t, ok := d.stamps[sha]; ok {
		return minTime(t, now)
	}
	return now
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// committed records that batch is in bronze; it returns read as the
// writer now knows it (its own cursor included) for the next batch.
func (d *discovery) committed(batch []manifest, read *delta.Snapshot) *delta.Snapshot {
	if d == nil {
		return read
	}
	for _, m := range batch {
		delete(d.stamps, m.SHA256)
		delete(d.legacy, m.SHA256)
	}
	if d.next == nil {
		return read
	}
	tx := *d.next
	d.next = nil
	return read.WithTxns(tx)
}

// tableOptions are the delta options of the job's tables: the txn
// retention set for bronze.
func (d Deps) tableOptions() (delta.Options, error) {
	o := delta.DefaultOptions()
	o.TxnRetention = d.TxnRetention
	// Only the per-object records expire: the cursor, and the fences of
	// the runner's lease, are kept (each is rewritten by later commits).
	o.TxnExpires = func(app string) bool { return strings.HasPrefix(app, "raw/") || strings.HasPrefix(app, "bronze/") }
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("bronze: %w", err)
	}
	return o, nil
}
