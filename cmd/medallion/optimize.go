package main

import (
	"cmp"
	"context"
	"fmt"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/humanize"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/maintenance"
)

const optimizeUsage = "[--target-size SIZE] [--min-files N] [--force] [TABLE ...]"

// runOptimize is `medallion optimize [TABLE ...]`: compact the small files
// of the named tables (every table of the pipeline, _quarantine and _late
// included, when none is named) in one dataChange=false commit per table.
func runOptimize(ctx context.Context, a *app, args []string) error {
	fs := a.flags("optimize")
	target := fs.String("target-size", "", "size of the files written; smaller files are small (default maintenance.target_file_size, 128MiB)")
	minFiles := fs.Int("min-files", 0, "small files a partition needs before it is compacted (default maintenance.optimize_min_files, 10)")
	force := fs.Bool("force", false, "compact every partition holding two or more small files, whatever --min-files says")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	opts := maintenance.OptimizeOptions{MinFiles: *minFiles, Force: *force}
	if *target != "" {
		if opts.TargetSize, err = config.ParseSize(*target); err != nil || opts.TargetSize < 1<<20 {
			return usagef("--target-size %q: want a size of at least 1MiB, e.g. 128MiB", *target)
		}
	}
	if *minFiles < 0 || *minFiles == 1 {
		return usagef("--min-files %d: want 2 or more", *minFiles)
	}
	refs, err := tableArgs(pos)
	if err != nil {
		return err
	}
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	opts.TargetSize = cmp.Or(opts.TargetSize, p.Maintenance.TargetFileSize)
	opts.MinFiles = cmp.Or(opts.MinFiles, p.Maintenance.OptimizeMinFiles)
	ws, err := a.openWorkspace(ctx, p)
	if err != nil {
		return err
	}
	defer ws.Close()
	env := layers.Env{Store: ws.store, DB: ws.eng.DB(), Cache: ws.cache, Log: a.log}
	named := len(refs) > 0
	if !named {
		refs = layers.Tables(p)
	}
	for _, ref := range refs {
		res, err := maintenance.Optimize(ctx, env, delta.Open(ws.store, ref.Dir()), opts)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		switch {
		case res.Skipped == "no table yet" && named:
			return fmt.Errorf("table %s has no commits yet: run `medallion run` first", ref)
		case res.Skipped != "":
			fmt.Fprintf(a.stdout, "%s: skipped: %s\n", ref, res.Skipped)
		case res.Version < 0:
			fmt.Fprintf(a.stdout, "%s: nothing to compact\n", ref)
		default:
			fmt.Fprintf(a.stdout, "%s version %d: compacted %s (%s) into %s (%s) in %s, %d rows, dataChange=false\n",
				ref, res.Version, plural(res.FilesRemoved, "file"), humanize.Bytes(res.BytesRemoved),
				plural(res.FilesAdded, "file"), humanize.Bytes(res.BytesAdded), plural(res.Partitions, "partition"), res.Rows)
		}
	}
	return nil
}

// tableArgs parses TABLE arguments (layer.name).
func tableArgs(pos []string) ([]layers.TableRef, error) {
	var refs []layers.TableRef
	for _, s := range pos {
		ref, err := layers.ParseTableRef(s, "")
		if err != nil {
			return nil, usagef("%v", err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}
