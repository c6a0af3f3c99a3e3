// Package maintenance keeps the lake's cost bounded by the new work, not
// by its history: it compacts the small files of a Delta table (Optimize),
// deletes the files no retained version needs (Vacuum) and prunes old run
// history and lease objects (Prune). Every table is covered the same way,
// bronze._quarantine and silver._late included.
package maintenance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// Defaults of the maintenance: section of medallion.yaml.
const (
	// DefaultTargetFileSize is the size compaction writes files of, and
	// below which a file counts as small.
	DefaultTargetFileSize int64 = 128 << 20
	// DefaultMinFiles is how many small files a partition must hold before
	// Optimize rewrites them.
	DefaultMinFiles = 10
)

// layoutConf is the table configuration key of a table that keeps its own
// file layout (gold moving averages: one file per hash bucket, compacted
// by gold itself). Optimize leaves such tables alone.
const layoutConf = "medallion.gold.layout"

// OptimizeOptions tune Optimize. Zero values mean the defaults.
type OptimizeOptions struct {
	// TargetSize is the size of the files written; files below it are
	// small. 0: DefaultTargetFileSize.
	TargetSize int64
	// MinFiles is how many small files a partition needs to be compacted.
	// 0: DefaultMinFiles.
	MinFiles int
	// Force compacts every partition with at least two small files,
	// whatever MinFiles says.
	Force bool
}

func (o OptimizeOptions) withDefaults() OptimizeOptions {
	if o.TargetSize <= 0 {
		o.TargetSize = DefaultTargetFileSize
	}
	if o.MinFiles <= 0 {
		o.MinFiles = DefaultMinFiles
	}
	if o.Force {
		o.MinFiles = 2
	}
	return o
}

// OptimizeResult is what Optimize did to one table.
type OptimizeResult struct {
	Table string
	// Version is the compaction's commit, -1 when nothing was compacted.
	Version int64
	// Skipped says why nothing was done (no table, own layout), if so.
	Skipped      string
	Partitions   int // partitions compacted
	FilesRemoved int
	FilesAdded   int
	BytesRemoved int64
	BytesAdded   int64
	Rows         int64 // rows rewritten
}

// SmallFiles counts the files of snap below target bytes (0: the default).
func SmallFiles(snap *delta.Snapshot, target int64) int {
	if target <= 0 {
		target = DefaultTargetFileSize
	}
	n := 0
	for _, f := range snap.Files {
		if f.Size < target {
			n++
		}
	}
	return n
}

// Optimize rewrites, per partition of tbl's latest snapshot holding at
// least MinFiles small files, those files into files of about TargetSize,
// and commits the swap as one commit whose adds and removes say
// dataChange=false: the rows do not change, so incremental readers
// (silver's Changes, gold's and the mirror's AppendedSince) skip it, and
// versions before it still read their own files (time travel) until a
// vacuum past the retention deletes them. Each new file's row count is
// checked against the files it replaces before anything is committed.
func Optimize(ctx context.Context, env layers.Env, tbl *delta.Table, opts OptimizeOptions) (OptimizeResult, error) {
	env = env.WithDefaults()
	opts = opts.withDefaults()
	snap, res, err := compactable(ctx, tbl)
	if snap == nil || err != nil {
		return res, err
	}
	return compactBins(ctx, env, tbl, snap, planBins(snap.Files, opts), res)
}

// compactable reads tbl's latest snapshot for a compaction. A nil snapshot
// with a nil error means there is nothing to compact, and res.Skipped says
// why (no table yet, a table that keeps its own layout).
func compactable(ctx context.Context, tbl *delta.Table) (*delta.Snapshot, OptimizeResult, error) {
	res := OptimizeResult{Table: tbl.Dir(), Version: -1}
	snap, err := tbl.Snapshot(ctx)
	if errors.Is(err, delta.ErrNoTable) {
		res.Skipped = "no table yet"
		return nil, res, nil
	}
	if err != nil {
		return nil, res, fmt.Errorf("optimize %s: %w", tbl.Dir(), err)
	}
	if snap.Metadata.Configuration[layoutConf] != "" {
		res.Skipped = "gold keeps its own file layout (it compacts its files itself)"
		return nil, res, nil
	}
	return snap, res, nil
}

// compactBins rewrites each bin of snap's files into one new file and
// commits the swap (commitCompaction); res is filled in and returned. No
// bins: nothing is written and res.Version stays -1.
func compactBins(ctx context.Context, env layers.Env, tbl *delta.Table, snap *delta.Snapshot, bins [][]delta.Add, res OptimizeResult) (OptimizeResult, error) {
	if len(bins) == 0 {
		return res, nil
	}
	schema, _ := snap.Schema() // nil: only row counts in the new stats
	scratch, err := os.MkdirTemp(env.ScratchDir, "medallion-optimize-")
	if err != nil {
		return res, fmt.Errorf("optimize %s: scratch directory: %w", tbl.Dir(), err)
	}
	defer os.RemoveAll(scratch)
	c := &compactor{env: env, tbl: tbl, snap: snap, schema: schema, scratch: scratch}
	var adds []delta.Add
	var removes []delta.Remove
	parts := map[string]bool{}
	now := env.Now().UnixMilli()
	for i, b := range bins {
		a, err := c.rewrite(ctx, i, b)
		if err != nil {
			return res, fmt.Errorf("optimize %s: %w", tbl.Dir(), err)
		}
		adds = append(adds, a)
		parts[partKey(b[0].PartitionValues)] = true
		for _, f := range b {
			removes = append(removes, f.Remove(now, false))
			res.BytesRemoved += f.Size
		}
		res.BytesAdded += a.Size
		st, _ := delta.ParseStats(a.Stats)
		res.Rows += st.NumRecords
	}
	res.Partitions, res.FilesAdded, res.FilesRemoved = len(parts), len(adds), len(removes)
	v, err := commitCompaction(ctx, tbl, snap, adds, removes, res)
	if err != nil {
		return res, err
	}
	res.Version = v
	env.Log.Info("optimized", "table", tbl.Dir(), "version", v, "files_removed", res.FilesRemoved, "files_added", res.FilesAdded)
	return res, nil
}

// planBins groups the small files of each partition holding at least
// opts.MinFiles of them, oldest first (the order readers that let a later
// file win expect), into bins of about opts.TargetSize bytes; a bin of one
// file is left alone.
func planBins(files []delta.Add, opts OptimizeOptions) [][]delta.Add {
	byPart := map[string][]delta.Add{}
	for _, f := range files {
		// A file another engine stored by absolute URI is not under the
		// table root: leave it where it is.
		if f.Size < opts.TargetSize && !strings.Contains(f.Path, "://") {
			k := partKey(f.PartitionValues)
			byPart[k] = append(byPart[k], f)
		}
	}
	var bins [][]delta.Add
	for _, k := range slices.Sorted(mapsKeys(byPart)) {
		small := byPart[k]
		if len(small) < opts.MinFiles {
			continue
		}
		slices.SortFunc(small, fileOrder)
		var bin []delta.Add
		var size int64
		for _, f := range small {
			bin = append(bin, f)
			size += f.Size
			if size >= opts.TargetSize {
				bins, bin, size = appendBin(bins, bin), nil, 0
			}
		}
		bins = appendBin(bins, bin)
	}
	return bins
}

func appendBin(bins [][]delta.Add, bin []delta.Add) [][]delta.Add {
	if len(bin) < 2 {
		return bins
	}
	return append(bins, bin)
}

// fileOrder orders files by commit: modification time, then path.
func fileOrder(x, y delta.Add) int {
	return cmp.Or(cmp.Compare(x.ModificationTime, y.ModificationTime), strings.Compare(x.Path, y.Path))
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// partKey is a partition's identity: its values, sorted by column, NULL
// told apart from every string.
func partKey(pv delta.PartitionValues) string {
	var b strings.Builder
	for _, k := range slices.Sorted(mapsKeys(pv)) {
		b.WriteString(k)
		if v := pv[k]; v == nil {
			b.WriteString("\x00null")
		} else {
			b.WriteString("=" + *v)
		}
		b.WriteByte(0)
	}
	return b.String()
}

// compactor writes the new files of one Optimize.
type compactor struct {
	env     layers.Env
	tbl     *delta.Table
	snap    *delta.Snapshot
	schema  *delta.Schema
	scratch string
}

// rewrite writes the rows of the files of bin, in their order, into one
// new file beside them, uploads it and returns its add action.
func (c *compactor) rewrite(ctx context.Context, i int, bin []delta.Add) (delta.Add, error) {
	cache := c.env.LocalFiles(filepath.Join(c.scratch, "in"))
	srcs := make([]string, len(bin))
	order := make([]string, len(bin))
	for j, f := range bin {
		p, err := cache.Path(ctx, c.tbl.Store(), c.tbl.Key(f.Path), "")
		if err != nil {
			return delta.Add{}, fmt.Errorf("read %s: %w", f.Path, err)
		}
		if err := delta.CheckLocalFile(c.tbl.Dir(), c.snap.Version, f, p); err != nil {
			return delta.Add{}, err
		}
		srcs[j] = warehouse.QuoteString(p)
		order[j] = fmt.Sprintf("WHEN %s THEN %d", srcs[j], j)
	}
	local := filepath.Join(c.scratch, fmt.Sprintf("out-%d.parquet", i))
	scan := "read_parquet([" + strings.Join(srcs, ", ") + "], union_by_name = true, hive_partitioning = false, filename = true, file_row_number = true)"
	q := "COPY (SELECT * EXCLUDE (filename, file_row_number) FROM " + scan + " ORDER BY CASE filename " + strings.Join(order, " ") +
		" END, file_row_number) TO " + warehouse.QuoteString(local) + " (FORMAT parquet, COMPRESSION zstd)"
	if _, err := c.env.DB.ExecContext(ctx, q); err != nil {
		return delta.Add{}, fmt.Errorf("rewrite %d files of partition %s: %w", len(bin), partLabel(bin[0].PartitionValues), err)
	}
	var n int64
	if err := c.env.DB.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+warehouse.QuoteString(local)+")").Scan(&n); err != nil {
		return delta.Add{}, fmt.Errorf("count the rows of the compacted file: %w", err)
	}
	st, ok := mergeStats(bin, c.schema)
	if ok && st.NumRecords != n {
		return delta.Add{}, fmt.Errorf("compacted file of partition %s holds %d rows, its %d files %d: nothing committed",
			partLabel(bin[0].PartitionValues), n, len(bin), st.NumRecords)
	}
	if !ok {
		st = delta.FileStats{NumRecords: n}
	}
	rel := path.Join(path.Dir(bin[0].Path), "part-"+uuid.NewString()+"-c000.parquet")
	up, err := lake.PutFile(ctx, c.tbl.Store(), c.tbl.Key(rel), local)
	if err != nil {
		return delta.Add{}, err
	}
	last := slices.MaxFunc(bin, fileOrder)
	return delta.Add{
		Path: rel, PartitionValues: bin[0].PartitionValues, Size: up.Size,
		// The newest input's time: readers that let a later file win a
		// repeated key keep seeing these rows in their place.
		ModificationTime: last.ModificationTime,
		DataChange:       false,
		Stats:            st.String(),
		Tags:             delta.WithSHA256(nil, up.SHA256),
	}, nil
}

// partLabel names a partition in messages.
func partLabel(pv delta.PartitionValues) string {
	if len(pv) == 0 {
		return "(unpartitioned)"
	}
	return strings.ReplaceAll(partKey(pv), "\x00null", "=NULL")
}

// maxCommitAttempts bounds the re-reads after concurrent commits.
const maxCommitAttempts = 20

// commitCompaction commits the swap on snap, or on a newer snapshot when
// another writer committed meanwhile, as long as every file it removes is
// still in the table; otherwise it gives up (the new files stay orphans
// that vacuum deletes after the retention).
func commitCompaction(ctx context.Context, tbl *delta.Table, snap *delta.Snapshot, adds []delta.Add, removes []delta.Remove, res OptimizeResult) (int64, error) {
	info := delta.CommitInfo{
		Operation:           "OPTIMIZE",
		OperationParameters: map[string]any{"predicate": "[]", "zOrderBy": "[]"},
		OperationMetrics: map[string]string{
			"numAddedFiles": fmt.Sprint(len(adds)), "numRemovedFiles": fmt.Sprint(len(removes)),
			"numAddedBytes": fmt.Sprint(res.BytesAdded), "numRemovedBytes": fmt.Sprint(res.BytesRemoved),
		},
	}
	base := snap
	for attempt := 1; ; attempt++ {
		s, err := tbl.Commit(ctx, base, delta.Commit{Adds: adds, Removes: removes, Info: info})
		if err == nil {
			return s.Version, nil
		}
		if !errors.Is(err, delta.ErrCommitConflict) || attempt >= maxCommitAttempts {
			return -1, fmt.Errorf("optimize %s: commit: %w", tbl.Dir(), err)
		}
		if base, err = tbl.Snapshot(ctx); err != nil {
			return -1, fmt.Errorf("optimize %s: re-read after a concurrent commit: %w", tbl.Dir(), err)
		}
		if f, ok := missingFile(base, removes); !ok {
			return -1, fmt.Errorf("optimize %s: %w: file %s was removed by a concurrent commit (version %d); run optimize again",
				tbl.Dir(), delta.ErrCommitConflict, f, base.Version)
		}
	}
}

// missingFile returns the first file of removes that snap no longer has.
func missingFile(snap *delta.Snapshot, removes []delta.Remove) (string, bool) {
	have := make(map[string]bool, len(snap.Files))
	for _, f := range snap.Files {
		have[f.Path] = true
	}
	for _, r := range removes {
		if !have[r.Path] {
			return r.Path, false
		}
	}
	return "", true
}
