package maintenance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// StreamCompactOptions tune CompactNewest. Zero values mean the defaults.
type StreamCompactOptions struct {
	// TargetSize is the size below which a file is small, and the most a
	// compaction rewrites at once. 0: DefaultTargetFileSize.
	TargetSize int64
	// MaxFiles is how many small files may pile up at the end of a
	// partition before they are compacted. 0:
	// config.DefaultStreamCompactFiles.
	MaxFiles int
}

func (o StreamCompactOptions) withDefaults() StreamCompactOptions {
	if o.TargetSize <= 0 {
		o.TargetSize = DefaultTargetFileSize
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = config.DefaultStreamCompactFiles
	}
	return o
}

// CompactNewest is stream mode's compaction, bounded so that it fits
// between two micro-batches: it rewrites at most one run of files of one
// partition of tbl, and only once more than MaxFiles small files piled up
// at that partition's end. The run is the partition's newest files, in
// commit order, going back from the newest while each older file is at
// most twice the size of the newer ones gathered so far and the run stays
// under TargetSize: the files a stream wrote since the last compaction,
// plus the compacted files they outweigh. Compacted files so grow about
// threefold from one to the next older, so a partition holds about
// MaxFiles plus log3(TargetSize / smallest file) small files at most, and
// each row is rewritten a logarithmic number of times, never the whole
// partition on every pass. The commit is Optimize's (dataChange=false,
// retried over concurrent appends, row counts checked); nil bins leave
// the table alone and return Version -1.
func CompactNewest(ctx context.Context, env layers.Env, tbl *delta.Table, opts StreamCompactOptions) (OptimizeResult, error) {
	env = env.WithDefaults()
	opts = opts.withDefaults()
	snap, res, err := compactable(ctx, tbl)
	if snap == nil || err != nil {
		return res, err
	}
	bin := newestRun(snap.Files, opts)
	if bin == nil {
		return res, nil
	}
	return compactBins(ctx, env, tbl, snap, [][]delta.Add{bin}, res)
}

// newestRun is the run CompactNewest rewrites, oldest file first, or nil:
// of the partitions whose newest run holds more than opts.MaxFiles files,
// the one with the longest run.
func newestRun(files []delta.Add, opts StreamCompactOptions) []delta.Add {
	byPart := map[string][]delta.Add{}
	for _, f := range files {
		if !strings.Contains(f.Path, "://") { // another engine's absolute URI stays where it is
			k := partKey(f.PartitionValues)
			byPart[k] = append(byPart[k], f)
		}
	}
	var best []delta.Add
	for _, k := range slices.Sorted(mapsKeys(byPart)) {
		fs := byPart[k]
		if len(fs) <= opts.MaxFiles {
			continue
		}
		slices.SortFunc(fs, fileOrder)
		var run []delta.Add
		var total int64
		for i := len(fs) - 1; i >= 0; i-- {
			f := fs[i]
			if f.Size >= opts.TargetSize || total+f.Size > opts.TargetSize || (len(run) > 0 && f.Size > 2*total) {
				break
			}
			run = append(run, f)
			total += f.Size
		}
		if len(run) > opts.MaxFiles && len(run) > len(best) {
			best = run
		}
	}
	slices.Reverse(best)
	return best
}

// StreamCompactor is the jobs.Compactor serve gives stream mode:
// CompactNewest over the tables its micro-batches write.
type StreamCompactor struct {
	Env     layers.Env
	Options StreamCompactOptions

	// tables keeps one delta.Table per table, so that each checkpoint is
	// decoded once (a Table caches it) across Due and Compact calls.
	tablesMu sync.Mutex
	tables   map[string]*delta.Table
}

// table returns the compactor's Table of ref.
func (c *StreamCompactor) table(ref layers.TableRef) *delta.Table {
	c.tablesMu.Lock()
	defer c.tablesMu.Unlock()
	if c.tables == nil {
		c.tables = map[string]*delta.Table{}
	}
	t, ok := c.tables[ref.Dir()]
	if !ok {
		t = c.Env.OpenTable(ref.Dir())
		c.tables[ref.Dir()] = t
	}
	return t
}

var _ jobs.Compactor = (*StreamCompactor)(nil)

// Due reports whether CompactNewest would rewrite files of table ref now.
// It reads the table's snapshot and writes nothing.
func (c *StreamCompactor) Due(ctx context.Context, ref layers.TableRef) (bool, error) {
	snap, _, err := compactable(ctx, c.table(ref))
	if snap == nil || err != nil {
		return false, err
	}
	return newestRun(snap.Files, c.Options.withDefaults()) != nil, nil
}

// Compact runs CompactNewest on table ref and returns the number of files
// it replaced.
func (c *StreamCompactor) Compact(ctx context.Context, ref layers.TableRef) (int, error) {
	res, err := CompactNewest(ctx, c.Env, c.table(ref), c.Options)
	if err != nil {
		return 0, fmt.Errorf("compact %s: %w", ref, err)
	}
	return res.FilesRemoved, nil
}
