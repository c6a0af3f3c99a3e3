package delta

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
)

// Snapshot is the state of a table at one version: the reconciled log up to
// and including Version. It is an immutable value; do not modify its slices.
type Snapshot struct {
	Version   int64
	Timestamp time.Time // of the commit that made Version
	Protocol  Protocol
	Metadata  Metadata
	Files     []Add // active data files, sorted by path (nil from Table.Head)

	txns       map[string]Txn
	over       map[string]Txn // txns added by WithTxns, over txns
	tombstones tombs          // removed files, for checkpoints (vacuum retention)
	checkpoint int64          // version of the checkpoint it was built from (-1: none)
	// checkpointWritten is when that checkpoint was stored (its object's
	// modification time): tombstones it dropped are older than this minus
	// the tombstone retention (RetainedPaths relies on it).
	checkpointWritten time.Time
	// headOnly says Files and tombstones were not loaded (Table.Head).
	headOnly bool
}

// actions is how many actions a checkpoint of s holds at most.
func (s *Snapshot) actions() int {
	return 2 + len(s.txns) + len(s.over) + len(s.Files) + s.tombstones.len()
}

// FilesLoaded reports whether s holds the table's files: false for a
// snapshot from Table.Head that skipped them, whose Files is nil whatever
// the table holds.
func (s *Snapshot) FilesLoaded() bool { return !s.headOnly }

// needFiles refuses s for op when it was loaded without its files: a
// commit, checkpoint or vacuum on it would drop every file it lacks.
func (s *Snapshot) needFiles(t *Table, op string) error {
	if s.headOnly {
		return fmt.Errorf("%s: %s: internal: snapshot of version %d was loaded without its files (Table.Head)", t.name(), op, s.Version)
	}
	return nil
}

// TxnVersion returns the last version recorded by a txn action with appID,
// and whether there is one.
func (s *Snapshot) TxnVersion(appID string) (int64, bool) {
	if t, ok := s.over[appID]; ok {
		return t.Version, true
	}
	t, ok := s.txns[appID]
	return t.Version, ok
}

// Txns returns every application's last txn action, sorted by appId.
func (s *Snapshot) Txns() []Txn {
	all := s.txns
	if len(s.over) > 0 {
		all = maps.Clone(s.txns)
		maps.Copy(all, s.over)
	}
	out := slices.Collect(maps.Values(all))
	slices.SortFunc(out, func(a, b Txn) int { return strings.Compare(a.AppID, b.AppID) })
	return out
}

// Schema parses the table schema from the metadata.
func (s *Snapshot) Schema() (*Schema, error) {
	return ParseSchema(s.Metadata.SchemaString)
}

// NumRecords sums numRecords over the file statistics; ok is false when a
// file has none.
func (s *Snapshot) NumRecords() (n int64, ok bool) { return NumRecords(s.Files) }

// NumRecords sums numRecords over the statistics of files; ok is false when
// a file has none. Only the count is decoded, not the column bounds.
func NumRecords(files []Add) (n int64, ok bool) {
	for _, f := range files {
		var st struct {
			NumRecords *int64 `json:"numRecords"`
		}
		if f.Stats == "" || json.Unmarshal([]byte(f.Stats), &st) != nil || st.NumRecords == nil {
			return 0, false
		}
		n += *st.NumRecords
	}
	return n, true
}

// state is a snapshot being built by replaying actions.
type state struct {
	version    int64
	timestamp  time.Time
	protocol   *Protocol
	metadata   *Metadata
	files      map[string]Add
	tombstones tombs
	txns       map[string]Txn
	checkpoint int64 // version of the checkpoint replay started from (-1: none)
	// checkpointWritten is when that checkpoint was stored.
	checkpointWritten time.Time
	// parts is what the state holds of the table: without partFiles (a
	// checkpoint read for Table.Head), files and tombstones are short of
	// the table's and its snapshot leaves them out.
	parts cpPart
}

func newState() *state {
	return &state{version: -1, files: map[string]Add{}, txns: map[string]Txn{}, checkpoint: -1, parts: partAll}
}

// stateOf copies a snapshot into a state, to apply further commits.
func stateOf(s *Snapshot) *state {
	st := &state{
		version:    s.Version,
		timestamp:  s.Timestamp,
		files:      make(map[string]Add, len(s.Files)+8),
		tombstones: s.tombstones.clone(),
		txns:       maps.Clone(s.txns),
		checkpoint: s.checkpoint,
		parts:      partAll,

		checkpointWritten: s.checkpointWritten,
	}
	if s.headOnly {
		st.parts = partHead
	}
	p, m := s.Protocol, s.Metadata
	st.protocol, st.metadata = &p, &m
	for _, f := range s.Files {
		st.files[f.Path] = f
	}
	if st.txns == nil {
		st.txns = map[string]Txn{}
	}
	maps.Copy(st.txns, s.over)
	return st
}

// apply applies one action: the last action per path wins.
func (st *state) apply(a action) {
	switch {
	case a.Add != nil:
		st.files[a.Add.Path] = *a.Add
		st.tombstones.del(a.Add.Path)
	case a.Remove != nil:
		delete(st.files, a.Remove.Path)
		st.tombstones.set(*a.Remove)
	case a.Txn != nil:
		st.txns[a.Txn.AppID] = *a.Txn
	case a.MetaData != nil:
		m := *a.MetaData
		st.metadata = &m
	case a.Protocol != nil:
		p := *a.Protocol
		st.protocol = &p
	}
}

// snapshot freezes the state. It checks that protocol and metadata exist
// and that this package can read the table.
func (st *state) snapshot(t *Table) (*Snapshot, error) {
	if st.protocol == nil {
		return nil, fmt.Errorf("%s version %d: the log has no protocol action", t.name(), st.version)
	}
	if st.metadata == nil {
		return nil, fmt.Errorf("%s version %d: the log has no metaData action", t.name(), st.version)
	}
	if err := checkReadable(t, *st.protocol); err != nil {
		return nil, err
	}
	expireTxns(st.txns, t.txnRetention(st.metadata), t.opts.TxnExpires)
	s := &Snapshot{
		Version:    st.version,
		Timestamp:  st.timestamp,
		Protocol:   *st.protocol,
		Metadata:   *st.metadata,
		txns:       st.txns,
		checkpoint: st.checkpoint,

		checkpointWritten: st.checkpointWritten,
	}
	if st.parts&partFiles == 0 {
		// The files added and removed since the checkpoint are only part
		// of the table: leave them out rather than return a wrong list.
		s.headOnly = true
		return s, nil
	}
	s.Files, s.tombstones = slices.Collect(maps.Values(st.files)), st.tombstones
	slices.SortFunc(s.Files, func(a, b Add) int { return strings.Compare(a.Path, b.Path) })
	return s, nil
}

// checkReadable refuses tables that need reader features we lack.
func checkReadable(t *Table, p Protocol) error {
	if p.MinReaderVersion > ReaderVersion {
		return fmt.Errorf("%s: %w: the table needs reader version %d (features %v); medallion reads version %d",
			t.name(), ErrUnsupportedProtocol, p.MinReaderVersion, p.ReaderFeatures, ReaderVersion)
	}
	return nil
}

// checkWritable refuses tables that need writer features we lack.
func checkWritable(t *Table, p Protocol) error {
	if err := checkReadable(t, p); err != nil {
		return err
	}
	if p.MinWriterVersion > WriterVersion {
		return fmt.Errorf("%s: %w: the table needs writer version %d (features %v); medallion writes version %d",
			t.name(), ErrUnsupportedProtocol, p.MinWriterVersion, p.WriterFeatures, WriterVersion)
	}
	return nil
}

// logListing is what a listing of _delta_log/ holds, by version.
type logListing struct {
	commits     map[int64]lake.ObjectInfo
	checkpoints map[int64]*checkpointFiles
	// read holds commits already fetched and parsed while the log was
	// found (probe.go), so that replaying them does not read them again.
	read map[int64]commit
}

func newListing() *logListing {
	return &logListing{commits: map[int64]lake.ObjectInfo{}, checkpoints: map[int64]*checkpointFiles{}, read: map[int64]commit{}}
}

// checkpointFiles are the files of one checkpoint version, by part count
// (1: a single file; n: a multi-part checkpoint with parts 1..n).
type checkpointFiles struct {
	version int64
	byParts map[int][]lake.ObjectInfo
}

// complete returns the files of the newest complete layout at this version.
func (c *checkpointFiles) complete() []lake.ObjectInfo {
	counts := slices.Sorted(maps.Keys(c.byParts))
	for _, n := range slices.Backward(counts) {
		files := c.byParts[n]
		if len(files) == n {
			return files
		}
	}
	return nil
}

func (l *logListing) commitVersions() []int64 {
	return slices.Sorted(maps.Keys(l.commits))
}

func (l *logListing) maxCommit() int64 {
	v := int64(-1)
	for k := range l.commits {
		v = max(v, k)
	}
	return v
}

// list lists the log from version from (inclusive; 0 or less: everything).
// Files that are not commits or classic checkpoints are ignored.
func (t *Table) list(ctx context.Context, from int64) (*logListing, error) {
	prefix := t.logPrefix()
	startAfter := ""
	if from > 0 {
		startAfter = fmt.Sprintf("%s%020d", prefix, from-1) + "~" // after every file of from-1
	}
	objs, err := t.store.List(ctx, prefix, startAfter)
	if err != nil {
		return nil, fmt.Errorf("%s: list log: %w", t.name(), err)
	}
	l := newListing()
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, prefix)
		if strings.Contains(name, "/") || len(name) < 21 || name[20] != '.' {
			continue
		}
		v, err := strconv.ParseInt(name[:20], 10, 64)
		if err != nil {
			continue
		}
		rest := name[21:]
		switch {
		case rest == "json":
			l.commits[v] = o
		case rest == "checkpoint.parquet":
			l.addCheckpoint(v, 1, o)
		case strings.HasPrefix(rest, "checkpoint.") && strings.HasSuffix(rest, ".parquet"):
			// checkpoint.PPPPPPPPPP.NNNNNNNNNN.parquet (multi-part); V2
			// checkpoints (checkpoint.<uuid>.parquet) are not read.
			parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(rest, "checkpoint."), ".parquet"), ".")
			if len(parts) != 2 || len(parts[0]) != 10 || len(parts[1]) != 10 {
				continue
			}
			n, err2 := strconv.Atoi(parts[1])
			if _, err1 := strconv.Atoi(parts[0]); err1 != nil || err2 != nil || n < 1 {
				continue
			}
			l.addCheckpoint(v, n, o)
		}
	}
	for _, c := range l.checkpoints {
		for _, files := range c.byParts {
			slices.SortFunc(files, func(a, b lake.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
		}
	}
	return l, nil
}

func (l *logListing) addCheckpoint(v int64, parts int, o lake.ObjectInfo) {
	c := l.checkpoints[v]
	if c == nil {
		c = &checkpointFiles{version: v, byParts: map[int][]lake.ObjectInfo{}}
		l.checkpoints[v] = c
	}
	c.byParts[parts] = append(c.byParts[parts], o)
}

// lastCheckpoint is the _last_checkpoint file.
type lastCheckpoint struct {
	Version       int64 `json:"version"`
	Size          int64 `json:"size"`
	Parts         *int  `json:"parts,omitempty"`
	SizeInBytes   int64 `json:"sizeInBytes,omitempty"`
	NumOfAddFiles int64 `json:"numOfAddFiles,omitempty"`
}

// readLastCheckpoint returns the version _last_checkpoint points at, or -1
// when it is missing or damaged (the log is listed instead then).
func (t *Table) readLastCheckpoint(ctx context.Context) (int64, error) {
	lc, err := t.lastCheckpointInfo(ctx)
	return lc.Version, err
}

// lastCheckpointInfo reads _last_checkpoint; its Version is -1 when it is
// missing or damaged, or when the Table ignores checkpoints.
func (t *Table) lastCheckpointInfo(ctx context.Context) (lastCheckpoint, error) {
	none := lastCheckpoint{Version: -1}
	if t.opts.IgnoreCheckpoints {
		return none, nil
	}
	b, _, err := t.get(ctx, t.lastCheckpointKey())
	if errors.Is(err, lake.ErrNotExist) {
		return none, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return none, err
		}
		t.log.Debug("delta: cannot read _last_checkpoint; listing the log", "err", err)
		return none, nil
	}
	var lc lastCheckpoint
	if err := json.Unmarshal(b, &lc); err != nil || lc.Version < 0 {
		t.log.Debug("delta: damaged _last_checkpoint; listing the log", "err", err)
		return none, nil
	}
	return lc, nil
}

func (t *Table) get(ctx context.Context, key string) ([]byte, lake.ObjectInfo, error) {
	rc, info, err := t.store.Get(ctx, key)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, info, fmt.Errorf("read %s: %w", key, err)
	}
	return b, info, nil
}

// LatestVersion returns the newest committed version: the last checkpoint
// and the commits after it (probe.go), or a listing of the log from the
// last checkpoint. Returns ErrNoTable if there is no log.
func (t *Table) LatestVersion(ctx context.Context) (int64, error) {
	if l, from, ok, err := t.probeLog(ctx, false); err != nil {
		return 0, err
	} else if ok {
		return max(l.maxCommit(), from), nil
	}
	from, err := t.readLastCheckpoint(ctx)
	if err != nil {
		return 0, err
	}
	l, err := t.list(ctx, from)
	if err != nil {
		return 0, err
	}
	v := l.maxCommit()
	if v < 0 && from > 0 {
		if l, err = t.list(ctx, 0); err != nil {
			return 0, err
		}
		v = l.maxCommit()
	}
	if v < 0 {
		return 0, fmt.Errorf("%s: %w", t.name(), ErrNoTable)
	}
	return v, nil
}

// Snapshot returns the latest state of the table. Returns an error wrapping
// ErrNoTable if there is no log, ErrUnsupportedProtocol if the table needs a
// newer reader.
func (t *Table) Snapshot(ctx context.Context) (*Snapshot, error) {
	return t.snapshotAt(ctx, -1, partAll)
}

// Head returns the latest state of the table without its files: Version,
// Timestamp, Protocol, Metadata and the txns as Snapshot would return them,
// but Files is nil and FilesLoaded false (always, so that no caller comes
// to rely on files it happened to get). It is for a reader that decides
// from txns and metadata alone whether there is work (bronze's discovery):
// of a checkpoint this package wrote it decodes only the txn, metaData and
// protocol columns, not the add rows, which grow with the table's live
// files. The result may be a Commit's Read but not its base; Commit,
// Checkpoint, Verify and RetainedPaths refuse it. Errors as Snapshot.
func (t *Table) Head(ctx context.Context) (*Snapshot, error) {
	return t.snapshotAt(ctx, -1, partHead)
}

// SnapshotAt returns the state of the table at version (time travel).
// Returns an error wrapping ErrNoVersion if the log does not have it.
func (t *Table) SnapshotAt(ctx context.Context, version int64) (*Snapshot, error) {
	if version < 0 {
		return nil, fmt.Errorf("%s: %w: version %d is negative", t.name(), ErrNoVersion, version)
	}
	return t.snapshotAt(ctx, version, partAll)
}

// snapshotAt builds the snapshot at target (-1: latest): the newest usable
// checkpoint at or before target (the actions of part of it), then the
// JSON commits after it. The latest, and a version at or after the newest
// checkpoint, are found by probing forward from that checkpoint
// (probe.go); an older version by listing the log.
func (t *Table) snapshotAt(ctx context.Context, target int64, part cpPart) (*Snapshot, error) {
	var (
		l    *logListing
		from int64
		ok   bool
		err  error
	)
	if l, from, ok, err = t.probeLog(ctx, true); err != nil {
		return nil, err
	}
	if ok && target >= 0 && (target < from || target > max(l.maxCommit(), from)) {
		// Older than the newest checkpoint, or not found by the probe:
		// the listing finds the checkpoint before it, or says it is not
		// there. A version in the tail after the newest checkpoint (silver
		// reads bronze at the version it consumes to, each micro-batch)
		// needs no listing, which reads every name in the log.
		ok = false
	}
	if ok && target == from && l.commits[from].Key == "" {
		// The checkpoint's own version: its timestamp is its commit's,
		// which the probe asks for only when nothing follows it.
		p, err := t.probeVersion(ctx, from, true)
		if err != nil {
			return nil, err
		}
		if p.found {
			l.commits[from], l.read[from] = p.info, p.c
		}
	}
	if !ok {
		if l, from, err = t.listFromCheckpoint(ctx, target); err != nil {
			return nil, err
		}
	}
	latest := l.maxCommit()
	for v := range l.checkpoints {
		latest = max(latest, v)
	}
	if latest < 0 {
		return nil, fmt.Errorf("%s: %w", t.name(), ErrNoTable)
	}
	if target > latest {
		return nil, fmt.Errorf("%s: %w: version %d does not exist yet (latest is %d)", t.name(), ErrNoVersion, target, latest)
	}
	if target < 0 {
		target = latest
	}

	// Candidate checkpoints, newest first; a checkpoint that fails to load
	// falls back to the next older one, then to the JSON log alone.
	var cps []int64
	if !t.opts.IgnoreCheckpoints {
		for v, c := range l.checkpoints {
			if v <= target && c.complete() != nil {
				cps = append(cps, v)
			}
		}
		slices.SortFunc(cps, func(a, b int64) int { return cmp.Compare(b, a) })
	}
	var lastErr error
	for _, cv := range cps {
		st, err := t.loadCheckpoint(ctx, l.checkpoints[cv].complete(), part)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			t.log.Debug("delta: cannot read checkpoint; trying an older one", "version", cv, "err", err)
			lastErr = err
			continue
		}
		st.version, st.checkpoint = cv, cv
		for _, o := range l.checkpoints[cv].complete() {
			st.checkpointWritten = later(st.checkpointWritten, o.ModTime)
		}
		st.parts &= part // a head leaves the files out even when it has them
		return t.replay(ctx, l, st, target)
	}
	// No usable checkpoint: the JSON log must start at version 0.
	if _, ok := l.commits[0]; !ok && from > 0 {
		if l, err = t.list(ctx, 0); err != nil {
			return nil, err
		}
	}
	if _, ok := l.commits[0]; !ok {
		first := slices.Min(append(l.commitVersions(), target))
		if lastErr != nil {
			return nil, fmt.Errorf("%s: no readable checkpoint at or before version %d and log version 0 is gone: %w", t.name(), target, lastErr)
		}
		return nil, fmt.Errorf("%s: %w: cannot rebuild version %d: log version 0 is missing and no checkpoint covers it (oldest commit is %d)", t.name(), ErrNoVersion, target, first)
	}
	st := newState()
	st.parts = part
	return t.replay(ctx, l, st, target)
}

// listFromCheckpoint lists the log from the version _last_checkpoint names
// (the whole log when there is none, when it is newer than target, or when
// its checkpoint is missing or incomplete), and returns the listing and the
// version it starts at (-1: the beginning).
func (t *Table) listFromCheckpoint(ctx context.Context, target int64) (*logListing, int64, error) {
	from, err := t.readLastCheckpoint(ctx)
	if err != nil {
		return nil, -1, err
	}
	if target >= 0 && from > target {
		from = -1
	}
	l, err := t.list(ctx, from)
	if err != nil {
		return nil, -1, err
	}
	if from > 0 {
		// _last_checkpoint must point at a complete checkpoint; if it does
		// not (damaged, or a half-written one), list the whole log.
		c := l.checkpoints[from]
		if c == nil || c.complete() == nil {
			t.log.Debug("delta: _last_checkpoint points at a missing checkpoint; listing the log", "version", from)
			if l, err = t.list(ctx, 0); err != nil {
				return nil, -1, err
			}
		}
	}
	return l, from, nil
}

// replay applies the JSON commits after st.version up to target. Every
// version in between must be present.
func (t *Table) replay(ctx context.Context, l *logListing, st *state, target int64) (*Snapshot, error) {
	n := target - st.version
	if n < 0 {
		return nil, fmt.Errorf("%s: internal: replay from %d to %d", t.name(), st.version, target)
	}
	if err := t.fillGaps(ctx, l, st.version+1, target); err != nil {
		return nil, err
	}
	commits, err := t.readCommits(ctx, l, st.version+1, target)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		// Loaded from a checkpoint with no commits after it: the timestamp
		// comes from the commit file of that version, if it is still there.
		st.timestamp = time.Time{}
		if o, ok := l.commits[st.version]; ok {
			c, err := t.readCommits(ctx, l, st.version, st.version)
			if err != nil {
				return nil, err
			}
			st.timestamp = c[0].timestamp(o)
		}
	}
	for _, c := range commits {
		for _, a := range c.actions {
			st.apply(a)
		}
		st.version = c.version
		st.timestamp = c.timestamp(l.commits[c.version])
		if st.protocol != nil {
			if err := checkReadable(t, *st.protocol); err != nil {
				return nil, fmt.Errorf("%w (protocol of version %d)", err, c.version)
			}
		}
	}
	return st.snapshot(t)
}

// fillGaps makes sure l names every commit from..to. A directory listing
// that runs while commits land may skip a file created during it yet return
// a later one (readdir order is not creation order), so a version missing
// from l is looked up before it is called a gap: only a commit that is
// really absent damages the table.
func (t *Table) fillGaps(ctx context.Context, l *logListing, from, to int64) error {
	for v := from; v <= to; v++ {
		if _, ok := l.commits[v]; ok {
			continue
		}
		o, err := t.store.Stat(ctx, t.commitKey(v))
		if errors.Is(err, lake.ErrNotExist) {
			return t.gapError(l, v)
		}
		if err != nil {
			return fmt.Errorf("%s: read log version %d: %w", t.name(), v, err)
		}
		l.commits[v] = o
	}
	return nil
}

func (t *Table) gapError(l *logListing, missing int64) error {
	vs := l.commitVersions()
	i := sort.Search(len(vs), func(i int) bool { return vs[i] > missing })
	next := "none"
	if i < len(vs) {
		next = strconv.FormatInt(vs[i], 10)
	}
	return fmt.Errorf("%s: the log is not contiguous: version %d is missing (next commit found: %s); the table is damaged", t.name(), missing, next)
}

// commit is one parsed commit file.
type commit struct {
	version int64
	actions []action
	info    *CommitInfo
}

// timestamp is commitInfo.timestamp, or the object's modification time.
func (c commit) timestamp(o lake.ObjectInfo) time.Time {
	if c.info != nil && c.info.Timestamp > 0 {
		return time.UnixMilli(c.info.Timestamp)
	}
	return o.ModTime
}

// readCommits fetches and parses commits from..to (inclusive) in parallel.
func (t *Table) readCommits(ctx context.Context, l *logListing, from, to int64) ([]commit, error) {
	if to < from {
		return nil, nil
	}
	out := make([]commit, to-from+1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for v := from; v <= to; v++ {
		if c, ok := l.read[v]; ok {
			out[v-from] = c
			continue
		}
		g.Go(func() error {
			c, err := t.readCommit(gctx, v)
			if errors.Is(err, lake.ErrNotExist) {
				return fmt.Errorf("%s: log version %d vanished while reading (cleaned up?): %w", t.name(), v, err)
			}
			out[v-from] = c
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// readCommit reads and parses one commit file. Returns an error wrapping
// lake.ErrNotExist if the version has no commit.
func (t *Table) readCommit(ctx context.Context, v int64) (commit, error) {
	b, _, err := t.get(ctx, t.commitKey(v))
	if err != nil {
		return commit{}, fmt.Errorf("%s: read log version %d: %w", t.name(), v, err)
	}
	return t.parseCommit(v, b)
}

// parseCommit parses the commit file b of version v.
func (t *Table) parseCommit(v int64, b []byte) (commit, error) {
	actions, err := decodeActions(b)
	if err != nil {
		return commit{}, fmt.Errorf("%s: log version %d (%s): %w", t.name(), v, t.commitKey(v), err)
	}
	c := commit{version: v, actions: actions}
	for _, a := range actions {
		if a.CommitInfo != nil {
			ci := *a.CommitInfo
			ci.Version = v
			c.info = &ci
		}
	}
	return c, nil
}

// CommitInfoAt returns the commit info of version v, with Version and
// Timestamp filled in as History fills them. It reads that one commit:
// a writer looking for its own last commit among a few newer ones
// (compaction, maintenance) walks back from its snapshot's version with it
// instead of reading the whole history. Returns an error wrapping
// lake.ErrNotExist if the log has no commit v (never written, or cleaned
// up).
func (t *Table) CommitInfoAt(ctx context.Context, v int64) (CommitInfo, error) {
	c, ts, err := t.readCommitTime(ctx, v)
	if err != nil {
		return CommitInfo{}, err
	}
	return c.infoAt(ts), nil
}

// readCommitTime reads and parses the commit of version v, and returns
// the time it was committed (commit.timestamp of its object). Returns an
// error wrapping lake.ErrNotExist if the version has no commit.
func (t *Table) readCommitTime(ctx context.Context, v int64) (commit, time.Time, error) {
	b, o, err := t.get(ctx, t.commitKey(v))
	if err != nil {
		return commit{}, time.Time{}, fmt.Errorf("%s: read log version %d: %w", t.name(), v, err)
	}
	c, err := t.parseCommit(v, b)
	if err != nil {
		return commit{}, time.Time{}, err
	}
	return c, c.timestamp(o), nil
}

// infoAt is c's commit info with Version and Timestamp (ts, the time it
// was committed) filled in.
func (c commit) infoAt(ts time.Time) CommitInfo {
	ci := CommitInfo{}
	if c.info != nil {
		ci = *c.info
	}
	ci.Version = c.version
	ci.Timestamp = ts.UnixMilli()
	return ci
}

// History returns the commit infos of the newest limit versions (limit <= 0:
// every version still in the log), newest first, with Version and Timestamp
// filled in (from the object's modification time if the commit has none).
//
// A limit the commits since the last checkpoint cover (a writer reading its
// own last commit) is served by probing the log (probe.go), not listing it.
func (t *Table) History(ctx context.Context, limit int) ([]CommitInfo, error) {
	l, err := t.historyLog(ctx, limit)
	if err != nil {
		return nil, err
	}
	vs := l.commitVersions()
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: %w", t.name(), ErrNoTable)
	}
	if limit > 0 && len(vs) > limit {
		vs = vs[len(vs)-limit:]
	}
	out := make([]CommitInfo, len(vs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, v := range vs {
		g.Go(func() error {
			c, err := t.readCommit(gctx, v)
			if err != nil {
				return err
			}
			out[len(vs)-1-i] = c.infoAt(c.timestamp(l.commits[v]))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// historyLog returns a log naming at least the newest limit commits, or
// every commit when limit <= 0.
func (t *Table) historyLog(ctx context.Context, limit int) (*logListing, error) {
	if limit > 0 {
		l, _, ok, err := t.probeLog(ctx, false)
		if err != nil {
			return nil, err
		}
		if ok && len(l.commits) >= limit {
			return l, nil
		}
	}
	return t.list(ctx, 0)
}

// SnapshotAsOf returns the snapshot of the latest commit whose timestamp
// (commitInfo.timestamp, else the log object's modification time) is at or
// before ts. Returns an error wrapping ErrNoVersion if ts is before the
// oldest commit in the log.
func (t *Table) SnapshotAsOf(ctx context.Context, ts time.Time) (*Snapshot, error) {
	// Vacuum asks for the version at its cutoff on every maintenance pass;
	// while the log's oldest commit is younger (a table younger than the
	// retention) the answer needs no listing of the log.
	if v0, oldest, err := t.oldestCommit(ctx); err != nil {
		return nil, err
	} else if oldest.After(ts) {
		return nil, fmt.Errorf("%s: %w: no commit at or before %s (the oldest, version %d, is at %s)",
			t.name(), ErrNoVersion, ts.UTC().Format(time.RFC3339Nano), v0, oldest.UTC().Format(time.RFC3339Nano))
	}
	l, err := t.list(ctx, 0)
	if err != nil {
		return nil, err
	}
	vs := l.commitVersions()
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: %w", t.name(), ErrNoTable)
	}
	// Commit timestamps increase with versions, so binary search, reading
	// only the commits it probes.
	var firstErr error
	tsOf := func(v int64) time.Time {
		c, err := t.readCommit(ctx, v)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return time.Time{}
		}
		return c.timestamp(l.commits[v])
	}
	i := sort.Search(len(vs), func(i int) bool { return tsOf(vs[i]).After(ts) })
	if firstErr != nil {
		return nil, firstErr
	}
	if i == 0 {
		return nil, fmt.Errorf("%s: %w: no commit at or before %s (the oldest, version %d, is at %s)",
			t.name(), ErrNoVersion, ts.UTC().Format(time.RFC3339Nano), vs[0], tsOf(vs[0]).UTC().Format(time.RFC3339Nano))
	}
	return t.SnapshotAt(ctx, vs[i-1])
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
