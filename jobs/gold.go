package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/gold"
)

func (r *Runner) runGold(ctx context.Context, t layers.TableRef, log *slog.Logger, scratch string) (outcome, error) {
	st, err := gold.Run(ctx, gold.Deps{Env: r.env(log, scratch), Pipeline: r.Pipeline}, t.Name)
	if errors.Is(err, delta.ErrNoTable) {
		// The silver table it reads has no commits yet (nothing ingested):
		// waiting for input is not a failure.
		return outcome{summary: fmt.Sprintf("%s: waiting for input (%v)", t, oneLineErr(err))}, nil
	}
	if err != nil {
		return outcome{}, err
	}
	if st.Mode == gold.ModeSkipped {
		return outcome{summary: fmt.Sprintf("%s: nothing new (v%d)", t, st.Version)}, nil
	}
	if st.Mode == gold.ModeAppend {
		summary := fmt.Sprintf("%s: appended, %d partition buckets, %d rows in, %d rows written", t, st.Buckets, st.RowsIn, st.RowsWritten)
		if st.Compacted > 0 {
			summary += fmt.Sprintf(", %d buckets merged into one file", st.Compacted)
		}
		return outcome{summary: summary + fmt.Sprintf(" (v%d)", st.Version), in: st.RowsIn, out: st.RowsWritten}, nil
	}
	return outcome{
		summary: fmt.Sprintf("%s: %s rebuild, %d partitions recomputed, %d rows in, %d rows written (v%d)",
			t, st.Mode, st.Buckets, st.RowsIn, st.RowsWritten, st.Version),
		in: st.RowsIn, out: st.RowsWritten,
	}, nil
}
