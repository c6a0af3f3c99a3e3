package jobs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/gold"
)

func (r *Runner) runGold(ctx context.Context, t layers.TableRef, _ string, log *slog.Logger) (string, error) {
	st, err := gold.Run(ctx, gold.Deps{
		Store: r.Store, Pipeline: r.Pipeline, Engine: r.Engine,
		LocalFile: r.materialize, Logger: log,
	}, t.Name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t, err)
	}
	if st.Mode == gold.ModeSkipped {
		return fmt.Sprintf("%s: nothing new (v%d)", t, st.Version), nil
	}
	return fmt.Sprintf("%s: %s rebuild, %d partitions recomputed, %d rows in, %d rows written (v%d)",
		t, st.Mode, st.Buckets, st.RowsIn, st.RowsWritten, st.Version), nil
}
