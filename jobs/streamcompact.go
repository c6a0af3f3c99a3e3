package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medallion-dev/medallion/layers"
)

// Compactor keeps the tables stream mode writes from piling up small
// files (one per micro-batch and partition). Stream calls it between
// micro-batches, still holding the stream lease, so a compaction never
// runs beside a batch of the same process or of another stream process.
// maintenance.StreamCompactor is the one serve uses.
type Compactor interface {
	// Due reports whether table ref has small files to compact now. It
	// writes nothing and takes no lease; a table with no commits yet is
	// not due.
	Due(ctx context.Context, ref layers.TableRef) (bool, error)
	// Compact compacts table ref with bounded work (dataChange=false, so
	// incremental readers skip the commit) and returns how many files it
	// replaced. It is called under the table's lease (TableLease), its
	// commit fenced by the lease's generation: no runner writes the table
	// meanwhile, and a commit of anyone else (`medallion optimize`, a
	// bronze append to the quarantine) makes it re-read and retry or give
	// up without committing, never lose rows.
	Compact(ctx context.Context, ref layers.TableRef) (int, error)
}

// written is the tables a micro-batch's job runs may have added files to:
// each successful job that read rows, with bronze's quarantine and
// silver's _late beside the jobs that write them.
func written(results []Result) []layers.TableRef {
	var out []layers.TableRef
	seen := map[string]bool{}
	add := func(t layers.TableRef) {
		if !seen[t.String()] {
			seen[t.String()] = true
			out = append(out, t)
		}
	}
	for _, r := range results {
		if r.Err != nil || r.Skipped || r.RowsIn == 0 {
			continue
		}
		switch r.Job.Table.Layer {
		case layers.Bronze:
			add(r.Job.Table)
			add(layers.Quarantine())
		case layers.Silver:
			add(r.Job.Table)
			add(layers.Late())
		case layers.Gold:
			add(r.Job.Table)
		}
	}
	return out
}

// compact runs s.Compact over tables, each that is due under its table
// lease. A table that fails is logged and left for the next batch: the
// micro-batch itself is committed already. It returns the files replaced.
func (s *Stream) compact(ctx context.Context, tables []layers.TableRef) int {
	if s.Compact == nil {
		return 0
	}
	n := 0
	for _, ref := range tables {
		due, err := s.Compact.Due(ctx, ref)
		if err == nil && due {
			_, err = s.Runner.withTableLease(ctx, ref, func(ctx context.Context) (layers.Result, error) {
				removed, err := s.Compact.Compact(ctx, ref)
				n += removed
				return layers.Result{}, err
			})
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			s.Log.Warn("stream: compaction", "table", ref.String(), "err", fmt.Errorf("compact between micro-batches: %w", err))
		}
	}
	return n
}

// compactTimed is compact, timed.
func (s *Stream) compactTimed(ctx context.Context, clock Clock, results []Result) (int, time.Duration) {
	start := clock.Now()
	n := s.compact(ctx, written(results))
	return n, clock.Now().Sub(start)
}
