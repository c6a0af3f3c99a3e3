package files

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
)

// FromConfig builds the Watcher of a source declared with from: {files:
// ...}: its folder (a local directory, or an S3 prefix reached with the
// source's own s3: settings or else the lake's).
func FromConfig(ctx context.Context, lakeStore lake.Store, p *config.Pipeline, src *config.Source, log *slog.Logger) (*Watcher, error) {
	f := src.Files
	if f == nil {
		return nil, fmt.Errorf("source %s: no from: files", src.Name)
	}
	s3 := p.S3
	if f.S3 != nil {
		s3 = *f.S3
	}
	dir, err := openFolder(ctx, f.Path, s3)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", src.Name, err)
	}
	if within(lakeStore.URL(), dir.URL()) {
		return nil, fmt.Errorf("source %s: from.files.path %s holds the lake (%s): its own objects would be taken as new files; watch a folder beside the lake", src.Name, dir.URL(), lakeStore.URL())
	}
	var moveTo lake.Store
	if f.AfterIngest == "move" {
		if moveTo, err = openFolder(ctx, f.MoveTo, s3); err != nil {
			return nil, fmt.Errorf("source %s: move_to: %w", src.Name, err)
		}
	}
	m, err := NewMatcher(f.Glob)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", src.Name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return New(Options{
		Source: src.Name, Format: src.Format, Lake: lakeStore, Dir: dir, MoveTo: moveTo, Match: m,
		MinAge: f.MinAge, IncludeExisting: f.IncludeExisting, MaxFiles: f.MaxFiles, MaxBytes: f.MaxBytes,
		OnChange: f.OnChange, AfterIngest: f.AfterIngest, Incremental: f.Listing == "incremental", Log: log.With("source", src.Name),
		InPlace: inPlace(lakeStore, dir, f.AfterIngest),
	})
}

// inPlace reports whether files of dir can be referenced where they are
// rather than copied: dir is a prefix of the lake's own bucket on the same
// endpoint (so bronze reaches it with the lake's connection), and files are
// kept after ingest. With after_ingest delete or move a file would be gone
// before bronze reads it, so it is copied as from any other folder.
func inPlace(lakeStore, dir lake.Store, afterIngest string) bool {
	l, ok := lakeStore.(*lake.S3)
	d, ok2 := dir.(*lake.S3)
	if !ok || !ok2 || (afterIngest != "" && afterIngest != "keep") {
		return false
	}
	return l.Bucket() == d.Bucket() && strings.EqualFold(l.Endpoint(), d.Endpoint())
}

// within reports whether the store URL u is the folder URL dir or under it.
func within(u, dir string) bool {
	u, dir = strings.TrimSuffix(u, "/"), strings.TrimSuffix(dir, "/")
	return u == dir || strings.HasPrefix(u, dir+"/")
}

// openFolder opens a watched folder as a store: s3://bucket/prefix, or a
// local directory (created when missing, so files can be dropped into it).
func openFolder(ctx context.Context, path string, s3 config.S3) (lake.Store, error) {
	if strings.HasPrefix(path, "s3://") {
		return lake.Open(ctx, path, lake.S3Options{Endpoint: s3.Endpoint, AccessKey: s3.AccessKey,
			SecretKey: s3.SecretKey, Region: s3.Region, Secure: s3.Secure})
	}
	return lake.NewLocal(path)
}

// Start polls every interval, from now until Close, under ctx. A poll's
// error is logged and the next poll tries again; a poll that left stable
// files for the next batch (the batch limits) is followed by another at
// once.
func (w *Watcher) Start(ctx context.Context, interval time.Duration) {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			b, err := w.Poll(ctx)
			switch {
			case err != nil:
				w.o.Log.Error("file source poll failed; retrying at the next poll", "err", err)
			case b.Taken > 0:
				w.o.Log.Info("took files", "files", b.Taken, "already_landed", b.Already, "bytes", b.Bytes, "waiting", b.Waiting)
			}
			next := interval
			if err == nil && b.More {
				next = 0
			}
			t.Reset(next)
		}
	}()
}

// Close stops polling and waits for the poll under way, whose files are
// then landed and committed.
func (w *Watcher) Close() error {
	if w.stop == nil {
		return nil
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return nil
}

// TakeAll takes what is in the folder now, for a one-shot run: a first
// poll notes the files, a second after settle takes those that did not
// change in between (and any older than min_age at once), then polls go on
// while the batch limits left stable files behind. Files still being
// written are left for a later run.
func (w *Watcher) TakeAll(ctx context.Context, settle time.Duration) (Batch, error) {
	total, err := w.Poll(ctx)
	if err != nil {
		return total, err
	}
	if total.Waiting > 0 {
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(settle):
		}
	}
	for {
		b, err := w.Poll(ctx)
		total.Taken += b.Taken
		total.Already += b.Already
		total.Bytes += b.Bytes
		total.Waiting = b.Waiting
		if err != nil || !b.More {
			return total, err
		}
	}
}
