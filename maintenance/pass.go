package maintenance

import (
	"context"
	"errors"
	"fmt"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// PassResult is what one maintenance pass did.
type PassResult struct {
	Optimized []OptimizeResult
	Vacuumed  []VacuumResult
	// LogCleaned is what the log cleanup of each table deleted.
	LogCleaned []delta.LogCleanup
	Pruned     PruneResult
}

// Pass is one maintenance pass over every table of p, as `medallion serve`
// runs it every maintenance.every: compact each table (Optimize with the
// section's target size and minimum), vacuum it with the section's
// retention (deleting), delete its log entries older than log_retain
// (delta.Table.CleanupLog, never within the data-file retention), then
// prune run history and old lease generations.
// A table that fails is reported in the error and the pass goes on with
// the others, so one damaged table does not stop the rest from being
// kept small.
func Pass(ctx context.Context, env layers.Env, p *config.Pipeline) (PassResult, error) {
	env = env.WithDefaults()
	m := p.Maintenance
	var res PassResult
	var errs []error
	for _, ref := range layers.Tables(p) {
		tbl := delta.Open(env.Store, ref.Dir())
		o, err := Optimize(ctx, env, tbl, OptimizeOptions{TargetSize: m.TargetFileSize, MinFiles: m.OptimizeMinFiles})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			continue
		}
		res.Optimized = append(res.Optimized, o)
		v, err := Vacuum(ctx, tbl, VacuumOptions{Retain: m.Retain, Delete: true, Now: env.Now})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			continue
		}
		res.Vacuumed = append(res.Vacuumed, v)
		c, err := tbl.CleanupLog(ctx, max(m.LogRetain, m.Retain), env.Now())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			continue
		}
		res.LogCleaned = append(res.LogCleaned, c)
	}
	now := env.Now()
	var err error
	if res.Pruned.Runs, err = PruneRuns(ctx, env.Store, m.RunsRetain, now); err != nil {
		errs = append(errs, err)
	}
	if res.Pruned.Leases, err = PruneLeases(ctx, env.Store, m.LeasesRetain, now); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}
