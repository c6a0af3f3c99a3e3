// Package files takes new files from a watched folder or S3 prefix into the
// raw layer, each exactly once, like Spark's file source and Databricks
// Auto Loader.
//
// A file is identified by its key (path under the folder) plus size and
// ETag (on a local folder: derived from size, modification time and inode).
// A poll lists the folder (metadata only), skips names that are hidden or
// still being written (.part, .tmp, .crdownload) or do not match the glob,
// and takes a new file once it is stable: the same size and ETag at two
// polls in a row, or unchanged for min_age. Taking means landing it through
// raw (sha256 manifest, so the same bytes land once whatever their name),
// then committing the file to the source's state in the lake
// (_medallion/sources/<name>/files/), then the after_ingest action.
//
// Exactly once across crashes: a file landed but not committed is taken
// again on the next start and found already landed by its content; a file
// committed but not yet deleted or moved is deleted or moved on the next
// poll without being read again. Only files not yet taken are read: the
// state of 100,000 old files costs a listing per poll, never a re-read.
package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// Options configure a Watcher.
type Options struct {
	Source string     // the raw source name
	Format string     // csv | json | ndjson
	Lake   lake.Store // where raw objects and the state land
	Dir    lake.Store // the watched folder or prefix
	MoveTo lake.Store // after_ingest move: the destination folder or prefix
	Match  Matcher

	MinAge          time.Duration // unchanged this long: taken at first sight
	IncludeExisting bool          // take what is there at the first start
	MaxFiles        int           // per batch; 0: no limit
	MaxBytes        int64         // per batch; 0: no limit (at least one file is taken)
	OnChange        string        // ignore | error
	AfterIngest     string        // keep | delete | move
	// Incremental lists only after the last key decided (S3 start-after),
	// for folders whose new files sort after the old ones (timestamped
	// names): a file that appears with a smaller name is never taken.
	Incremental bool
	// InPlace references each file where it is instead of copying it
	// (raw.LandInPlace): the folder is in the lake's own bucket, beside the
	// lake, and files are kept (after_ingest keep).
	InPlace bool

	Log *slog.Logger
	Now func() time.Time // default time.Now
}

// Batch is the outcome of one poll.
type Batch struct {
	Taken   int   // files landed and committed
	Already int   // of those, whose bytes were landed before
	Bytes   int64 // bytes of the files taken
	Waiting int   // new files not yet stable (or beyond the batch limits)
	More    bool  // stable files were left for the next batch by the limits
}

// Watcher takes new files from one folder. Poll is not safe for concurrent
// use; Start runs it on an interval.
type Watcher struct {
	o       Options
	st      *state
	pending map[string]lake.ObjectInfo // new files seen once, not yet stable
	warned  map[string]ident           // changed files already reported

	stop chan struct{}
	done chan struct{}
}

// New checks o and returns a Watcher; nothing is read until the first Poll.
func New(o Options) (*Watcher, error) {
	if o.Lake == nil || o.Dir == nil {
		return nil, fmt.Errorf("file source %s: no lake or folder", o.Source)
	}
	if o.AfterIngest == "move" && o.MoveTo == nil {
		return nil, fmt.Errorf("file source %s: after_ingest move without move_to", o.Source)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Watcher{o: o, st: newState(o.Lake, o.Source), pending: map[string]lake.ObjectInfo{}, warned: map[string]ident{}}, nil
}

// Poll lists the folder once and takes the files that are new and stable,
// within the batch limits.
func (w *Watcher) Poll(ctx context.Context) (Batch, error) {
	if !w.st.loaded {
		if err := w.st.load(ctx); err != nil {
			return Batch{}, fmt.Errorf("file source %s: %w", w.o.Source, err)
		}
		if w.st.fresh && !w.o.IncludeExisting {
			return Batch{}, w.baseline(ctx)
		}
	}
	after := ""
	if w.o.Incremental {
		after = w.st.cursor
	}
	objs, err := w.o.Dir.List(ctx, "", after)
	if err != nil {
		return Batch{}, fmt.Errorf("file source %s: list %s: %w", w.o.Source, w.o.Dir.URL(), err)
	}
	ready, forgot, b, err := w.pick(ctx, objs)
	if err != nil {
		return b, err
	}
	rec := record{Forgot: forgot}
	if w.o.Incremental {
		rec.Cursor = w.cursor(objs, ready)
	}
	now := w.o.Now()
	for i, o := range ready {
		already, err := w.land(ctx, o, now.Add(time.Duration(i)))
		if err != nil {
			// Commit what landed before, so it is not read again.
			return b, errors.Join(err, w.st.commit(ctx, rec))
		}
		rec.Taken = append(rec.Taken, entry{Key: o.Key, ident: ident{Size: o.Size, ETag: o.ETag}})
		b.Taken++
		b.Bytes += o.Size
		if already {
			b.Already++
		}
	}
	if err := w.st.commit(ctx, rec); err != nil {
		return b, fmt.Errorf("file source %s: %w", w.o.Source, err)
	}
	for _, o := range ready {
		w.after(ctx, o.Key)
	}
	return b, nil
}

// baseline records the files there at the first start as taken, without
// reading them (include_existing: false).
func (w *Watcher) baseline(ctx context.Context) error {
	objs, err := w.o.Dir.List(ctx, "", "")
	if err != nil {
		return fmt.Errorf("file source %s: list %s: %w", w.o.Source, w.o.Dir.URL(), err)
	}
	rec := record{Baseline: true}
	for _, o := range objs {
		if !w.o.Match.Take(o.Key) {
			continue
		}
		if w.o.Incremental {
			rec.Cursor = o.Key // no entries: nothing up to the cursor is listed again
			continue
		}
		rec.Taken = append(rec.Taken, entry{Key: o.Key, ident: ident{Size: o.Size, ETag: o.ETag, Skipped: true}})
	}
	if err := w.st.commit(ctx, rec); err != nil {
		return fmt.Errorf("file source %s: %w", w.o.Source, err)
	}
	w.o.Log.Info("include_existing is false: files already there are skipped", "source", w.o.Source, "files", len(rec.Taken))
	return nil
}

// pick sorts the listing into files to take now (stable, new, within the
// limits), files taken before that are gone (to forget) and, for
// after_ingest delete or move, files taken whose action did not happen
// (done again here).
func (w *Watcher) pick(ctx context.Context, objs []lake.ObjectInfo) ([]lake.ObjectInfo, []string, Batch, error) {
	var (
		b       Batch
		ready   []lake.ObjectInfo
		bytes   int64
		present = make(map[string]bool, len(objs))
		now     = w.o.Now()
	)
	pending := make(map[string]lake.ObjectInfo, len(w.pending))
	for _, o := range objs {
		if !w.o.Match.Take(o.Key) {
			continue
		}
		present[o.Key] = true
		id := ident{Size: o.Size, ETag: o.ETag}
		if prev, ok := w.st.seen[o.Key]; ok {
			if err := w.seenAgain(ctx, o, prev, id); err != nil {
				return nil, nil, b, err
			}
			continue
		}
		last, seenBefore := w.pending[o.Key]
		stable := (seenBefore && last.Size == o.Size && last.ETag == o.ETag && last.ModTime.Equal(o.ModTime)) ||
			(w.o.MinAge > 0 && !o.ModTime.IsZero() && now.Sub(o.ModTime) >= w.o.MinAge)
		full := (w.o.MaxFiles > 0 && len(ready) >= w.o.MaxFiles) || (w.o.MaxBytes > 0 && len(ready) > 0 && bytes+o.Size > w.o.MaxBytes)
		switch {
		case !stable:
			pending[o.Key] = o
			b.Waiting++
		case full:
			pending[o.Key] = o
			b.Waiting++
			b.More = true
		default:
			ready = append(ready, o)
			bytes += o.Size
		}
	}
	w.pending = pending
	var forgot []string
	for k := range w.st.seen {
		if !present[k] {
			forgot = append(forgot, k)
		}
	}
	return ready, forgot, b, nil
}

// cursor is the key up to which every file of the listing is decided
// (taken before, taken now, or not a name to take): the next incremental
// listing starts after it. A file still waiting holds it back.
func (w *Watcher) cursor(objs, ready []lake.ObjectInfo) string {
	now := make(map[string]bool, len(ready))
	for _, o := range ready {
		now[o.Key] = true
	}
	cur := w.st.cursor
	for _, o := range objs {
		if partial(o.Key) {
			break // renamed when complete, maybe to a name before it
		}
		if w.o.Match.Take(o.Key) {
			if _, seen := w.st.seen[o.Key]; !seen && !now[o.Key] {
				break
			}
		}
		cur = o.Key
	}
	return cur
}

// seenAgain handles a listed file that was taken before: unchanged, it is
// left alone (or its after_ingest action, lost to a crash, is done now);
// changed in place, on_change says what happens.
func (w *Watcher) seenAgain(ctx context.Context, o lake.ObjectInfo, prev, id ident) error {
	if prev.same(id) {
		if w.o.AfterIngest != "keep" && !prev.Skipped {
			w.after(ctx, o.Key)
		}
		return nil
	}
	if w.o.OnChange == "error" {
		return fmt.Errorf("file source %s: %s changed after it was taken (size %d -> %d): files are taken once; write a new file instead of rewriting one, or set on_change: ignore",
			w.o.Source, w.where(o.Key), prev.Size, id.Size)
	}
	if !w.warned[o.Key].same(id) {
		w.warned[o.Key] = id
		w.o.Log.Warn("a file taken before changed; it is not taken again (on_change: ignore)", "source", w.o.Source, "file", w.where(o.Key), "size", id.Size)
	}
	return nil
}

// land reads one file into the raw layer, checking afterwards that it did
// not change while it was read.
func (w *Watcher) land(ctx context.Context, o lake.ObjectInfo, at time.Time) (bool, error) {
	rc, info, err := w.o.Dir.Get(ctx, o.Key)
	if err != nil {
		return false, fmt.Errorf("file source %s: open %s: %w", w.o.Source, w.where(o.Key), err)
	}
	defer rc.Close()
	if info.Size != o.Size || (info.ETag != "" && info.ETag != o.ETag) {
		return false, fmt.Errorf("file source %s: %s changed since it was listed: taken at a later poll", w.o.Source, w.where(o.Key))
	}
	var m raw.Manifest
	var already bool
	if w.o.InPlace {
		m, already, err = raw.LandInPlace(ctx, w.o.Lake, w.o.Source, o.Key, w.o.Format, w.where(o.Key), info.ETag, rc, o.Size, at)
	} else {
		m, already, err = raw.LandSized(ctx, w.o.Lake, w.o.Source, o.Key, w.o.Format, rc, o.Size, at)
	}
	if err != nil {
		return false, fmt.Errorf("file source %s: %w", w.o.Source, err)
	}
	w.o.Log.Debug("took file", "source", w.o.Source, "file", w.where(o.Key), "key", m.Key, "bytes", m.Size, "already_landed", already)
	return already, nil
}

// after runs the after_ingest action on a taken file. A failure is logged,
// not returned: the file is taken and committed, the action is tried again
// at the next poll, and one file that cannot be moved must not stop the
// source from taking the others.
func (w *Watcher) after(ctx context.Context, key string) {
	var err error
	switch w.o.AfterIngest {
	case "delete":
		err = w.o.Dir.Delete(ctx, key)
	case "move":
		err = move(ctx, w.o.Dir, w.o.MoveTo, key)
	}
	if err != nil {
		w.o.Log.Warn("after_ingest failed; trying again at the next poll", "source", w.o.Source,
			"action", w.o.AfterIngest, "file", w.where(key), "err", err)
	}
}

// move puts the object at key into dst under the same key, then removes it
// from src: a rename when both are local folders, a copy then a delete
// otherwise (a crash between leaves both; the next poll moves it again).
func move(ctx context.Context, src, dst lake.Store, key string) error {
	if sp, ok := src.(lake.LocalPather); ok {
		if dp, ok := dst.(lake.LocalPather); ok {
			if err := renameLocal(sp.LocalPath(key), dp.LocalPath(key)); err == nil {
				return nil
			}
		}
	}
	rc, info, err := src.Get(ctx, key)
	if errors.Is(err, lake.ErrNotExist) {
		return nil // moved already
	}
	if err != nil {
		return err
	}
	_, err = dst.Put(ctx, key, rc, info.Size)
	rc.Close()
	if err != nil {
		return err
	}
	return src.Delete(ctx, key)
}

func (w *Watcher) where(key string) string {
	return strings.TrimSuffix(w.o.Dir.URL(), "/") + "/" + key
}
