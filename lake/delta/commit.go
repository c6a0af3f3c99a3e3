package delta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/medallion-dev/medallion/lake"
)

// Commit is what one transaction changes. Data files must already be in the
// store (under the table root) when it is committed.
type Commit struct {
	Adds    []Add
	Removes []Remove
	// Txns is application progress recorded in the same commit. See
	// Table.Commit for the check each one gets against the snapshot the
	// commit lands on.
	Txns     []Txn
	Metadata *Metadata // a new schema/configuration; nil: unchanged
	Info     CommitInfo
	// Read is the snapshot the writer decided from (which inputs are new,
	// what to write). nil means base. It matters when a writer reads the
	// table, works, and commits on a newer snapshot (re-read to deduplicate
	// or after a lost race): the txns it records are checked against what
	// it read, not against the newer base. A writer that decided with no
	// table passes EmptySnapshot().
	Read *Snapshot
	// IsBlindAppend says the commit only adds new files and did not depend
	// on the files it read: if another writer wins the version, it is
	// retried at the next one. It must not remove files or change metadata.
	IsBlindAppend bool
}

// engineInfo identifies this writer in commitInfo.
const engineInfo = "medallion"

// Create writes version 0 of a new table: protocol (reader 1, writer 2),
// metaData and commitInfo. meta.ID is filled with a new UUID and
// meta.CreatedTime with now when unset; meta.SchemaString, if set, must
// parse and name every partition column. The context's fences (WithFence)
// are recorded as txns. Returns an error wrapping ErrTableExists if the
// table already has a log.
func (t *Table) Create(ctx context.Context, meta Metadata, info CommitInfo) (*Snapshot, error) {
	now := time.Now()
	if meta.ID == "" {
		meta.ID = uuid.NewString()
	}
	if meta.CreatedTime == nil {
		meta.CreatedTime = ptr(now.UnixMilli())
	}
	meta = meta.normalized()
	if err := t.validateMetadata(meta); err != nil {
		return nil, err
	}
	if v, err := t.LatestVersion(ctx); err == nil {
		return nil, fmt.Errorf("%s: %w (latest version %d)", t.name(), ErrTableExists, v)
	} else if !errors.Is(err, ErrNoTable) {
		return nil, err
	}
	if info.Operation == "" {
		info.Operation = "CREATE TABLE"
	}
	info.Timestamp = now.UnixMilli()
	info.IsBlindAppend = ptr(true)
	info.ReadVersion = nil
	if info.EngineInfo == "" {
		info.EngineInfo = engineInfo
	}
	proto := Protocol{MinReaderVersion: ReaderVersion, MinWriterVersion: WriterVersion}
	actions := []action{{CommitInfo: &info}, {Protocol: &proto}, {MetaData: &meta}}
	// The creator's fences go in version 0 too: a lease holder that only
	// created the table (and then failed) must still fence the stalled
	// holder it took over from, which saw no table and would commit on it.
	for _, f := range fencesOf(ctx) {
		f.LastUpdated = now.UnixMilli()
		actions = append(actions, action{Txn: &f})
	}
	b, err := encodeActions(actions)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name(), err)
	}
	o, err := t.store.PutIfAbsent(ctx, t.commitKey(0), bytes.NewReader(b), int64(len(b)))
	if errors.Is(err, lake.ErrExists) {
		return nil, fmt.Errorf("%s: %w (created concurrently)", t.name(), ErrTableExists)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: write log version 0: %w", t.name(), err)
	}
	st := newState()
	for _, a := range actions {
		st.apply(a)
	}
	st.version = 0
	st.timestamp = commit{info: &info}.timestamp(o)
	return st.snapshot(t)
}

func (t *Table) validateMetadata(m Metadata) error {
	if m.SchemaString == "" {
		if len(m.PartitionColumns) > 0 {
			return fmt.Errorf("%s: metadata: partition columns %v without a schema", t.name(), m.PartitionColumns)
		}
		return nil
	}
	s, err := ParseSchema(m.SchemaString)
	if err != nil {
		return fmt.Errorf("%s: metadata: %w", t.name(), err)
	}
	for _, c := range m.PartitionColumns {
		if _, ok := s.Field(c); !ok {
			return fmt.Errorf("%s: metadata: partition column %q is not in the schema", t.name(), c)
		}
	}
	return nil
}

// Commit writes version base.Version+1 with the changes in c, atomically
// (lake.Store.PutIfAbsent), and returns the snapshot it made.
//
// If another writer won that version: a blind append (c.IsBlindAppend)
// whose winners changed neither metadata nor protocol nor recorded a txn
// for one of c's appIds is retried at the next version, up to
// Options.MaxCommitAttempts times; anything else returns an error wrapping
// ErrCommitConflict, naming the table and version. After committing a
// multiple of Options.CheckpointInterval, a checkpoint is written; a failed
// checkpoint is logged, not returned.
//
// # Txns: the exactly-once check
//
// A txn says "this table holds appId's input up to Version". The writer
// decided what to write from c.Read (base when nil); the snapshot the
// commit lands on (base, or base plus the winners a blind append is
// reordered after) must record, for each appId of c.Txns, exactly what
// c.Read recorded: the same version, or none in both. Otherwise another
// writer recorded progress for that input since the writer decided, so
// writing would apply it twice (or skip some), and Commit returns an error
// wrapping ErrTxnApplied (and so ErrCommitConflict) naming the table, the
// appId and both versions, without writing. The writer re-plans from a
// fresh snapshot: what it meant to add is there already. This is the
// protocol's txn conflict check, extended to a base newer than what the
// writer read. A txn may record the version it read again (a gold model
// re-records an unchanged input), or a lower one (an input table that was
// recreated): the writer saw that version, so it is not a conflict.
//
// # Fences
//
// A context from WithFence adds the fence's txn to the commit. A fence is
// checked differently: the commit is refused with ErrFenced when the
// snapshot it lands on records a higher version for the fence's appId (a
// newer lease holder committed), whatever the writer read; an equal or
// lower one is fine.
func (t *Table) Commit(ctx context.Context, base *Snapshot, c Commit) (*Snapshot, error) {
	if base == nil {
		return nil, fmt.Errorf("%s: commit without a base snapshot (use Create for version 0)", t.name())
	}
	appIDs, fences, err := t.checkCommit(ctx, base, &c)
	if err != nil {
		return nil, err
	}
	read := c.Read
	if read == nil {
		read = base
	}

	st := stateOf(base)
	if err := t.checkTxns(st, read, c.Txns, fences); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		version := st.version + 1
		info, actions := c.actions(base.Version, time.Now())
		b, err := encodeActions(actions)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name(), err)
		}
		o, err := t.store.PutIfAbsent(ctx, t.commitKey(version), bytes.NewReader(b), int64(len(b)))
		if err == nil {
			for _, a := range actions {
				st.apply(a)
			}
			st.version = version
			st.timestamp = commit{info: info}.timestamp(o)
			t.cache.saw(version)
			snap, err := st.snapshot(t)
			if err != nil {
				return nil, err
			}
			t.maybeCheckpoint(ctx, snap)
			return snap, nil
		}
		if !errors.Is(err, lake.ErrExists) {
			return nil, fmt.Errorf("%s: write log version %d: %w", t.name(), version, err)
		}
		// Lost the race for this version.
		if !c.IsBlindAppend {
			return nil, fmt.Errorf("%s: %w: version %d was committed by another writer after version %d was read",
				t.name(), ErrCommitConflict, version, base.Version)
		}
		if attempt >= t.opts.MaxCommitAttempts {
			return nil, fmt.Errorf("%s: %w: gave up after %d attempts; last lost version %d",
				t.name(), ErrCommitConflict, attempt, version)
		}
		if err := t.catchUp(ctx, st, appIDs, fences); err != nil {
			return nil, err
		}
		if err := t.checkTxns(st, read, c.Txns, fences); err != nil {
			return nil, err
		}
	}
}

// actions are the log actions of c read at readVersion and written at
// now: commitInfo first, then metadata, txns, removes and adds, with the
// timestamps the caller left unset filled in.
func (c *Commit) actions(readVersion int64, now time.Time) (*CommitInfo, []action) {
	info := c.Info
	info.Timestamp = now.UnixMilli()
	info.ReadVersion = ptr(readVersion)
	info.IsBlindAppend = ptr(c.IsBlindAppend)
	if info.Operation == "" {
		info.Operation = "WRITE"
	}
	if info.EngineInfo == "" {
		info.EngineInfo = engineInfo
	}
	actions := make([]action, 0, 2+len(c.Txns)+len(c.Removes)+len(c.Adds))
	actions = append(actions, action{CommitInfo: &info})
	if c.Metadata != nil {
		actions = append(actions, action{MetaData: c.Metadata})
	}
	for i := range c.Txns {
		tx := c.Txns[i]
		if tx.LastUpdated == 0 {
			tx.LastUpdated = now.UnixMilli()
		}
		actions = append(actions, action{Txn: &tx})
	}
	for i := range c.Removes {
		r := c.Removes[i]
		if r.DeletionTimestamp == 0 {
			r.DeletionTimestamp = now.UnixMilli()
		}
		actions = append(actions, action{Remove: &r})
	}
	for i := range c.Adds {
		a := c.Adds[i]
		if a.PartitionValues == nil {
			a.PartitionValues = PartitionValues{}
		}
		actions = append(actions, action{Add: &a})
	}
	return &info, actions
}

// checkCommit refuses a malformed commit, normalizes its metadata, adds the
// context's fences to its txns and returns the appIds of its own txns and
// its fences.
func (t *Table) checkCommit(ctx context.Context, base *Snapshot, c *Commit) (map[string]bool, map[string]Txn, error) {
	if err := base.needFiles(t, "commit"); err != nil {
		return nil, nil, err
	}
	if err := checkWritable(t, base.Protocol); err != nil {
		return nil, nil, err
	}
	if c.IsBlindAppend && (len(c.Removes) > 0 || c.Metadata != nil) {
		return nil, nil, fmt.Errorf("%s: a blind append cannot remove files or change metadata", t.name())
	}
	if c.Metadata != nil {
		m := c.Metadata.normalized()
		if m.ID == "" {
			m.ID = base.Metadata.ID
		}
		if err := t.validateMetadata(m); err != nil {
			return nil, nil, err
		}
		c.Metadata = &m
	}
	for _, a := range c.Adds {
		if a.Path == "" {
			return nil, nil, fmt.Errorf("%s: commit: add action without a path", t.name())
		}
	}
	appIDs := map[string]bool{}
	for _, tx := range c.Txns {
		if tx.AppID == "" {
			return nil, nil, fmt.Errorf("%s: commit: txn action without an appId", t.name())
		}
		if appIDs[tx.AppID] {
			return nil, nil, fmt.Errorf("%s: commit: two txn actions for appId %q", t.name(), tx.AppID)
		}
		appIDs[tx.AppID] = true
	}
	fences := map[string]Txn{}
	for _, f := range fencesOf(ctx) {
		if appIDs[f.AppID] {
			return nil, nil, fmt.Errorf("%s: commit: txn appId %q is also a fence", t.name(), f.AppID)
		}
		fences[f.AppID] = f
		c.Txns = append(c.Txns[:len(c.Txns):len(c.Txns)], f)
	}
	return appIDs, fences, nil
}

// checkTxns applies the txn and fence rules of Commit to the state the
// commit is about to land on. Fences go first: a holder that lost its lease
// is told so, rather than that its input moved under it.
func (t *Table) checkTxns(st *state, read *Snapshot, txns []Txn, fences map[string]Txn) error {
	for _, f := range fences {
		if have, ok := st.txns[f.AppID]; ok && have.Version > f.Version {
			return t.fencedError(f, have.Version, st.version)
		}
	}
	for _, tx := range txns {
		if _, isFence := fences[tx.AppID]; isFence {
			continue
		}
		have, ok := st.txns[tx.AppID]
		was, wasOK := read.TxnVersion(tx.AppID)
		if ok == wasOK && (!ok || have.Version == was) {
			continue
		}
		readAs := "none"
		if wasOK {
			readAs = fmt.Sprintf("version %d", was)
		}
		nowAs := "none"
		if ok {
			nowAs = fmt.Sprintf("version %d", have.Version)
		}
		return fmt.Errorf("%s: %w: appId %q is at %s in table version %d, but this writer read %s at table version %d and meant to record version %d: another writer recorded it in between",
			t.name(), ErrTxnApplied, tx.AppID, nowAs, st.version, readAs, read.Version, tx.Version)
	}
	return nil
}

func (t *Table) fencedError(f Txn, newer, at int64) error {
	return fmt.Errorf("%s: %w: %q is at %d in table version %d, newer than this writer's %d: a newer lease holder committed, this one lost its lease",
		t.name(), ErrFenced, f.AppID, newer, at, f.Version)
}

// catchUp applies every commit after st.version to st, refusing winners a
// blind append cannot be reordered after.
func (t *Table) catchUp(ctx context.Context, st *state, appIDs map[string]bool, fences map[string]Txn) error {
	l, err := t.list(ctx, st.version+1)
	if err != nil {
		return err
	}
	latest := l.maxCommit()
	if latest <= st.version {
		// PutIfAbsent said the version exists, so it must list; a store
		// with lagging listings gets the one version we know of.
		latest = st.version + 1
		l.commits[latest] = lake.ObjectInfo{Key: t.commitKey(latest)}
	}
	if err := t.fillGaps(ctx, l, st.version+1, latest); err != nil {
		return err
	}
	winners, err := t.readCommits(ctx, l, st.version+1, latest)
	if err != nil {
		return err
	}
	for _, w := range winners {
		for _, a := range w.actions {
			switch {
			case a.MetaData != nil:
				return fmt.Errorf("%s: %w: version %d changed the table metadata", t.name(), ErrCommitConflict, w.version)
			case a.Protocol != nil:
				return fmt.Errorf("%s: %w: version %d changed the table protocol", t.name(), ErrCommitConflict, w.version)
			case a.Txn != nil && appIDs[a.Txn.AppID]:
				return fmt.Errorf("%s: %w: version %d recorded progress of application %q (version %d) concurrently",
					t.name(), ErrTxnApplied, w.version, a.Txn.AppID, a.Txn.Version)
			case a.Txn != nil:
				if f, ok := fences[a.Txn.AppID]; ok && a.Txn.Version > f.Version {
					return t.fencedError(f, a.Txn.Version, w.version)
				}
			}
			st.apply(a)
		}
		st.version = w.version
		st.timestamp = w.timestamp(l.commits[w.version])
	}
	return nil
}

// maybeCheckpoint writes a checkpoint of s when its version is a multiple
// of the checkpoint interval, or when the tail of commits since the
// checkpoint s was built from has grown past twice the interval (a
// checkpoint was missed: its write failed, or its writer crashed first), so
// a reader replays at most a short tail. Failures are logged: the commit
// already stands. s is the commit's own fresh snapshot, not yet shared.
//
// The interval grows with the checkpoint's size (checkpointInterval): a
// checkpoint rewrites every action the table holds, and a table that
// streams keeps a tombstone for about every commit of the last week, so a
// checkpoint every ten commits would make each commit cost as much as the
// table's history.
func (t *Table) maybeCheckpoint(ctx context.Context, s *Snapshot) {
	n := t.opts.CheckpointInterval
	if n <= 0 || s.Version <= 0 {
		return
	}
	k := checkpointInterval(n, s.actions())
	tail := s.Version - max(s.checkpoint, 0)
	if due := s.Version%n == 0 && (k == n || tail >= k); !due && tail < 2*k {
		return
	}
	if err := t.Checkpoint(ctx, s); err != nil {
		t.log.Debug("delta: checkpoint failed; readers replay the JSON log instead", "version", s.Version, "err", err)
		return
	}
	s.checkpoint = s.Version
}

// checkpointActionsPerInterval is how many actions a checkpoint may hold
// per CheckpointInterval commits: writing one costs about 2 µs per action,
// so the checkpoints cost each commit at most about 1 ms on average,
// whatever the table's size, while the tail a reader replays stays within
// a few times the checkpoint's own size in actions.
const checkpointActionsPerInterval = 5000

// checkpointInterval is how many commits apart checkpoints of a table
// holding actions are written: the configured interval n, times one more
// for every checkpointActionsPerInterval actions.
func checkpointInterval(n int64, actions int) int64 {
	return n * max(1, int64((actions+checkpointActionsPerInterval-1)/checkpointActionsPerInterval))
}
