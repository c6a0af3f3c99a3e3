package delta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/medallion-dev/medallion/lake"
)

// Commit is what one transaction changes. Data files must already be in the
// store (under the table root) when it is committed.
type Commit struct {
	Adds     []Add
	Removes  []Remove
	Txns     []Txn     // application progress recorded in the same commit
	Metadata *Metadata // a new schema/configuration; nil: unchanged
	Info     CommitInfo
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
// parse and name every partition column. Returns an error wrapping
// ErrTableExists if the table already has a log.
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
func (t *Table) Commit(ctx context.Context, base *Snapshot, c Commit) (*Snapshot, error) {
	if base == nil {
		return nil, fmt.Errorf("%s: commit without a base snapshot (use Create for version 0)", t.name())
	}
	if err := checkWritable(t, base.Protocol); err != nil {
		return nil, err
	}
	if c.IsBlindAppend && (len(c.Removes) > 0 || c.Metadata != nil) {
		return nil, fmt.Errorf("%s: a blind append cannot remove files or change metadata", t.name())
	}
	if c.Metadata != nil {
		m := c.Metadata.normalized()
		if m.ID == "" {
			m.ID = base.Metadata.ID
		}
		if err := t.validateMetadata(m); err != nil {
			return nil, err
		}
		c.Metadata = &m
	}
	for _, a := range c.Adds {
		if a.Path == "" {
			return nil, fmt.Errorf("%s: commit: add action without a path", t.name())
		}
	}
	appIDs := map[string]bool{}
	for _, tx := range c.Txns {
		if tx.AppID == "" {
			return nil, fmt.Errorf("%s: commit: txn action without an appId", t.name())
		}
		appIDs[tx.AppID] = true
	}

	st := stateOf(base)
	for attempt := 1; ; attempt++ {
		version := st.version + 1
		now := time.Now()
		info := c.Info
		info.Timestamp = now.UnixMilli()
		info.ReadVersion = ptr(base.Version)
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
			st.timestamp = commit{info: &info}.timestamp(o)
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
		if err := t.catchUp(ctx, st, appIDs); err != nil {
			return nil, err
		}
	}
}

// catchUp applies every commit after st.version to st, refusing winners a
// blind append cannot be reordered after.
func (t *Table) catchUp(ctx context.Context, st *state, appIDs map[string]bool) error {
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
	for v := st.version + 1; v <= latest; v++ {
		if _, ok := l.commits[v]; !ok {
			return t.gapError(l, v)
		}
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
					t.name(), ErrCommitConflict, w.version, a.Txn.AppID, a.Txn.Version)
			}
			st.apply(a)
		}
		st.version = w.version
		st.timestamp = w.timestamp(l.commits[w.version])
	}
	return nil
}

// maybeCheckpoint writes a checkpoint of s when its version is a multiple of
// the checkpoint interval. Failures are logged: the commit already stands.
func (t *Table) maybeCheckpoint(ctx context.Context, s *Snapshot) {
	n := t.opts.CheckpointInterval
	if n <= 0 || s.Version <= 0 || s.Version%n != 0 {
		return
	}
	if err := t.Checkpoint(ctx, s); err != nil {
		t.log.Debug("delta: checkpoint failed; readers replay the JSON log instead", "version", s.Version, "err", err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
