package main

import (
	"context"
	"fmt"
	"github.com/medallion-dev/medallion/internal/humanize"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw/files"
)

// fileSettle is how long `medallion run` waits between its two looks at a
// watched folder: a file that changed in between is still being written and
// is left for a later run.
const fileSettle = time.Second

// filePollers are the watchers of the pipeline's file sources under serve.
type filePollers []*files.Watcher

// startFilePollers starts polling every source declared with from: {files:
// ...}, each on its interval, under ctx (which must outlive SIGTERM, like
// the brokers', so that the poll under way is landed and committed).
func startFilePollers(ctx context.Context, a *app, p *config.Pipeline, st lake.Store) (filePollers, error) {
	var out filePollers
	for _, name := range p.SourceOrder {
		sc := p.Sources[name]
		if sc.Files == nil {
			continue
		}
		w, err := files.FromConfig(ctx, st, p, sc, a.log.WithGroup("files"))
		if err != nil {
			out.Close()
			return nil, err
		}
		w.Start(ctx, sc.Files.Interval)
		out = append(out, w)
		fmt.Fprintf(a.stdout, "watching %s for source %s (every %s)\n", sc.Files.Path, name, sc.Files.Interval)
	}
	return out, nil
}

// Close stops every poller, waiting for the polls under way.
func (ps filePollers) Close() {
	for _, w := range ps {
		_ = w.Close()
	}
}

// takeFiles is what `medallion run` does for file sources before its jobs:
// take what each watched folder holds now.
func takeFiles(ctx context.Context, a *app, p *config.Pipeline, st lake.Store) error {
	for _, name := range p.SourceOrder {
		sc := p.Sources[name]
		if sc.Files == nil {
			continue
		}
		w, err := files.FromConfig(ctx, st, p, sc, a.log.WithGroup("files"))
		if err != nil {
			return err
		}
		b, err := w.TakeAll(ctx, fileSettle)
		if err != nil {
			return err
		}
		if b.Taken > 0 || b.Waiting > 0 {
			fmt.Fprintf(a.stdout, "%s: took %d new files from %s (%s, %d already landed), %d still being written\n",
				name, b.Taken, sc.Files.Path, humanize.Bytes(b.Bytes), b.Already, b.Waiting)
		}
	}
	return nil
}
