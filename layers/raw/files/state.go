package files

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/medallion-dev/medallion/lake"
)

// StatePrefix is where file sources keep what they have taken, per source:
// _medallion/sources/<name>/files/.
const StatePrefix = "_medallion/sources/"

// checkpointEvery is how many log records are replayed at most on a start:
// after that many a checkpoint holding the whole state is written.
const checkpointEvery = 256

// ident is what makes a file the same file: its size and its ETag (on a
// local folder the ETag is derived from size, modification time and inode).
type ident struct {
	Size int64  `json:"size"`
	ETag string `json:"etag"`
	// Skipped marks a file of the include_existing: false baseline: never
	// taken, so never deleted or moved either.
	Skipped bool `json:"skipped,omitempty"`
}

func (i ident) same(o ident) bool { return i.Size == o.Size && i.ETag == o.ETag }

// entry is one file in a log record or checkpoint.
type entry struct {
	Key string `json:"key"`
	ident
}

// record is one commit of a source's state: files taken, files no longer
// there (forgotten, so a new file of that name is new), and whether it is
// the baseline of include_existing: false (files there at the first start
// recorded without being taken).
type record struct {
	Seq      int64    `json:"seq"`
	Taken    []entry  `json:"taken,omitempty"`
	Forgot   []string `json:"forgot,omitempty"`
	Baseline bool     `json:"baseline,omitempty"`
	// Cursor, with incremental listing, is the key up to which every file
	// is decided: later polls list only after it, and files up to it are
	// dropped from the state.
	Cursor string `json:"cursor,omitempty"`
}

// checkpoint is the whole state through Seq.
type checkpoint struct {
	Seq    int64   `json:"seq"`
	Files  []entry `json:"files"`
	Cursor string  `json:"cursor,omitempty"`
}

// state is the set of files a source has taken, kept in the lake as a log
// of records and a checkpoint now and then. A record is committed with
// PutIfAbsent under its sequence number, so two processes taking files for
// the same source cannot both commit the same step.
type state struct {
	store  lake.Store
	dir    string // _medallion/sources/<name>/files/
	seq    int64  // last committed record
	ckpt   int64  // seq of the last checkpoint
	seen   map[string]ident
	cursor string // incremental listing: see record.Cursor
	loaded bool
	fresh  bool // no state existed when loaded
}

func newState(store lake.Store, source string) *state {
	return &state{store: store, dir: StatePrefix + source + "/files/", seen: map[string]ident{}}
}

func (s *state) logKey(seq int64) string  { return s.dir + "log/" + seqName(seq) }
func (s *state) ckptKey(seq int64) string { return s.dir + "checkpoint/" + seqName(seq) }
func seqName(seq int64) string            { return fmt.Sprintf("%020d.json", seq) }

// load reads the last checkpoint and replays the records after it.
func (s *state) load(ctx context.Context) error {
	s.seen, s.seq, s.ckpt, s.cursor = map[string]ident{}, 0, 0, ""
	cks, err := s.store.List(ctx, s.dir+"checkpoint/", "")
	if err != nil {
		return fmt.Errorf("load file source state %s: %w", s.dir, err)
	}
	if n := len(cks); n > 0 {
		var c checkpoint
		if err := readJSON(ctx, s.store, cks[n-1].Key, &c); err != nil {
			return err
		}
		for _, e := range c.Files {
			s.seen[e.Key] = e.ident
		}
		s.seq, s.ckpt, s.cursor = c.Seq, c.Seq, c.Cursor
	}
	logs, err := s.store.List(ctx, s.dir+"log/", s.logKey(s.seq))
	if err != nil {
		return fmt.Errorf("load file source state %s: %w", s.dir, err)
	}
	for _, o := range logs {
		var r record
		if err := readJSON(ctx, s.store, o.Key, &r); err != nil {
			return err
		}
		if r.Seq != s.seq+1 {
			return fmt.Errorf("load file source state: %s holds record %d, want %d", o.Key, r.Seq, s.seq+1)
		}
		s.apply(r)
	}
	s.fresh = len(cks) == 0 && len(logs) == 0
	s.loaded = true
	return nil
}

func (s *state) apply(r record) {
	for _, k := range r.Forgot {
		delete(s.seen, k)
	}
	for _, e := range r.Taken {
		s.seen[e.Key] = e.ident
	}
	if r.Cursor > s.cursor {
		s.cursor = r.Cursor
		for k := range s.seen {
			if k <= s.cursor {
				delete(s.seen, k)
			}
		}
	}
	s.seq = r.Seq
}

// errConflict is a record another process committed first.
var errConflict = errors.New("another process committed this step")

// commit stores r as the next record. On a conflict the state must be
// loaded again before the next step (errConflict).
func (s *state) commit(ctx context.Context, r record) error {
	if len(r.Taken) == 0 && len(r.Forgot) == 0 && !r.Baseline && r.Cursor <= s.cursor {
		return nil
	}
	r.Seq = s.seq + 1
	js, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode file source record: %w", err)
	}
	key := s.logKey(r.Seq)
	if _, err := s.store.PutIfAbsent(ctx, key, bytes.NewReader(js), int64(len(js))); err != nil {
		s.loaded = false // the outcome is unknown or another process won: reload
		if errors.Is(err, lake.ErrExists) {
			return fmt.Errorf("commit %s: %w (is another medallion taking files for this source?)", key, errConflict)
		}
		return fmt.Errorf("commit %s: %w", key, err)
	}
	s.apply(r)
	if s.seq-s.ckpt >= checkpointEvery {
		s.checkpoint(ctx)
	}
	return nil
}

// checkpoint writes the whole state and removes what it replaces. Best
// effort: without it a start replays more records, nothing else.
func (s *state) checkpoint(ctx context.Context) {
	c := checkpoint{Seq: s.seq, Files: make([]entry, 0, len(s.seen)), Cursor: s.cursor}
	for k, id := range s.seen {
		c.Files = append(c.Files, entry{Key: k, ident: id})
	}
	sort.Slice(c.Files, func(i, j int) bool { return c.Files[i].Key < c.Files[j].Key })
	js, err := json.Marshal(c)
	if err != nil {
		return
	}
	if _, err := s.store.Put(ctx, s.ckptKey(c.Seq), bytes.NewReader(js), int64(len(js))); err != nil {
		return
	}
	prev := s.ckpt
	s.ckpt = c.Seq
	for _, sub := range []string{"log/", "checkpoint/"} {
		objs, err := s.store.List(ctx, s.dir+sub, "")
		if err != nil {
			continue
		}
		for _, o := range objs {
			seq, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(o.Key, s.dir+sub), ".json"), 10, 64)
			if err == nil && (seq <= prev || (sub == "log/" && seq <= c.Seq)) {
				_ = s.store.Delete(ctx, o.Key)
			}
		}
	}
}

func readJSON(ctx context.Context, store lake.Store, key string, v any) error {
	rc, _, err := store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read file source state: %w", err)
	}
	defer rc.Close()
	if err := json.NewDecoder(io.LimitReader(rc, 1<<30)).Decode(v); err != nil {
		return fmt.Errorf("read file source state %s: %w", key, err)
	}
	return nil
}
