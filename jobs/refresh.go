package jobs

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/layers/gold"
	"github.com/medallion-dev/medallion/layers/silver"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
)

// Downstream returns what reads table t, directly or through other tables,
// in dependency order: the gold tables and the mirror jobs (layer
// MirrorLayer, named by their to: target).
func Downstream(p *config.Pipeline, t layers.TableRef) []layers.TableRef {
	reached := map[layers.TableRef]bool{t: true}
	var out []layers.TableRef
	for _, j := range allJobs(p) { // dependency order
		if j.Table == t {
			continue
		}
		if slices.ContainsFunc(j.Deps, func(d layers.TableRef) bool { return reached[d] }) {
			reached[j.Table] = true
			out = append(out, j.Table)
		}
	}
	return out
}

// Refresh recomputes table t (bronze: in full, from the raw objects it
// consumed; silver: the windows of rng; gold: always in full) under the table's lease, through the layer's refresh (see
// bronze.Refresh, silver.Refresh and gold.Refresh), so that no run of the
// table interleaves. With downstream, it then refreshes every silver and
// gold table reading t (directly or not) and rebuilds the PostgreSQL mirrors of all
// of them, each under its own lease. report receives a line per table.
func (r *Runner) Refresh(ctx context.Context, t layers.TableRef, rng silver.Range, downstream bool, report func(string)) error {
	scratch, err := os.MkdirTemp(r.Engine.TempDir(), "refresh-")
	if err != nil {
		return fmt.Errorf("refresh scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)
	targets := []layers.TableRef{t}
	if downstream {
		targets = append(targets, Downstream(r.Pipeline, t)...)
	}
	for _, tt := range targets {
		if tt.Layer == MirrorLayer && r.Pipeline.Postgres == "" {
			report(MirrorDisabled)
			continue
		}
		res, err := r.withTableLease(ctx, tt, func(ctx context.Context) (layers.Result, error) {
			return r.refreshOne(ctx, tt, rng, scratch)
		})
		if err != nil {
			return nameTable(tt, err)
		}
		report(res.Summary)
	}
	return nil
}

// refreshOne refreshes one table or rebuilds one mirror.
func (r *Runner) refreshOne(ctx context.Context, t layers.TableRef, rng silver.Range, scratch string) (layers.Result, error) {
	env := r.env(scratch)
	// A refresh rebuilds the table from its inputs, so the columns the
	// pipeline file now makes are the ones to keep: the schema-change
	// check that stops a run must not stop the refresh it points to. A
	// range refresh keeps the table's columns (silver refuses a change).
	env.SchemaReplace = t.Layer == layers.Gold || rng.Full()
	switch t.Layer {
	case layers.Silver:
		cfg, ok := r.Pipeline.Silver[t.Name]
		if !ok {
			return layers.Result{}, fmt.Errorf("%s: not a silver table of the pipeline", t)
		}
		if cfg.Name == "" {
			c := *cfg
			c.Name = t.Name
			cfg = &c
		}
		st, err := silver.Refresh(ctx, silver.Deps{Env: env}, cfg, rng)
		return layers.Result{Table: t, Summary: st.String(), RowsOut: st.RowsAdded, Version: st.Version}, err
	case layers.Gold:
		g, ok := r.Pipeline.Gold[t.Name]
		if !ok || g == nil {
			return layers.Result{}, fmt.Errorf("%s: %w", t, gold.ErrNotGold)
		}
		st, err := gold.Refresh(ctx, gold.Deps{Env: env, Unsorted: gold.UnsortedOK(r.Pipeline, t.Name)}, g)
		res := st.Result()
		res.Summary = fmt.Sprintf("%s: refreshed in full, %d rows written (v%d)", t, st.RowsWritten, st.Version)
		return res, err
	case MirrorLayer:
		return r.rebuildMirror(ctx, t)
	case layers.Bronze:
		src, ok := r.Pipeline.Sources[t.Name]
		if !ok {
			return layers.Result{}, fmt.Errorf("%s: not a source of the pipeline", t)
		}
		env.PipelineFile = cmp.Or(env.PipelineFile, r.Pipeline.Path)
		st, err := bronze.Refresh(ctx, bronze.Deps{Env: env, DiscoveryGrace: r.Pipeline.Bronze.DiscoveryGrace, TxnRetention: r.Pipeline.Bronze.TxnRetention}, src, bronze.Range{From: rng.From, To: rng.To})
		return layers.Result{Table: t, Summary: st.String(), RowsOut: st.RowsAdded, Version: st.Version}, err
	}
	return layers.Result{}, fmt.Errorf("%s: cannot refresh a table of layer %q", t, t.Layer)
}

// rebuildMirror rebuilds the PostgreSQL mirror named t.Name (its to:
// target) in a new table swapped in, as `medallion mirror --rebuild` does.
func (r *Runner) rebuildMirror(ctx context.Context, t layers.TableRef) (layers.Result, error) {
	var cfg *config.Mirror
	for _, m := range r.Pipeline.Mirror {
		if m.To == t.Name {
			cfg = m
		}
	}
	if cfg == nil {
		return layers.Result{}, fmt.Errorf("%s: no mirror: entry has to: %s", t, t.Name)
	}
	spec, err := MirrorSpec(cfg)
	if err != nil {
		return layers.Result{}, err
	}
	opts := pgmirror.DefaultOptions()
	opts.Logger = r.Log
	m, err := pgmirror.New(r.Pipeline.Postgres, pgmirror.Deps{Store: r.Store, Engine: r.Engine, Cache: r.Cache}, opts)
	if err != nil {
		return layers.Result{}, err
	}
	res, err := m.Rebuild(ctx, spec)
	if err != nil {
		return layers.Result{}, err
	}
	return layers.Result{Table: t, Summary: res.String()}, nil
}
