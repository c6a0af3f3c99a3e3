package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
)

// MirrorLayer is the layer of mirror jobs: one per mirror: entry, named
// after its PostgreSQL target (mirror.public.meter_usage_ma), depending on
// the lake table it copies. `medallion run mirror` runs them all.
const MirrorLayer layers.Layer = "mirror"

// MirrorDisabled is what a run says, once, instead of running mirror jobs
// when the pipeline's postgres: is empty.
const MirrorDisabled = "mirror disabled: postgres is not set"

// MirrorSpec is the pgmirror.Spec of a mirror: entry of the pipeline file
// (to: "schema.table", or "table" in public). It lives here, not in
// pgmirror, so that the mirror does not depend on the configuration.
func MirrorSpec(m *config.Mirror) (pgmirror.Spec, error) {
	ref, err := layers.ParseTableRef(m.Table, "")
	if err != nil {
		return pgmirror.Spec{}, fmt.Errorf("mirror of %s: %w", m.Table, err)
	}
	schema, table, ok := strings.Cut(m.To, ".")
	if !ok {
		schema, table = "public", m.To
	}
	s := pgmirror.Spec{Source: WarehouseRef(ref), Schema: schema, Table: table, Key: slices.Clone(m.Key),
		Columns: slices.Clone(m.Columns), Exclude: slices.Clone(m.Exclude), Lineage: config.LineageColumns(), Names: m.Names}
	return s, s.Validate()
}

// WarehouseRef is the warehouse's name for a layer table: its DuckDB schema
// is the layer.
func WarehouseRef(r layers.TableRef) warehouse.TableRef {
	return warehouse.TableRef{Schema: string(r.Layer), Name: r.Name}
}

// WarehouseTables is layers.Tables(p) as the warehouse names them: every
// table the pipeline declares, system tables included, in pipeline order.
func WarehouseTables(p *config.Pipeline) []warehouse.TableRef {
	refs := layers.Tables(p)
	out := make([]warehouse.TableRef, len(refs))
	for i, r := range refs {
		out[i] = WarehouseRef(r)
	}
	return out
}

// mirrorJobs lists a job per mirror: entry, in the order the file declares
// them.
func mirrorJobs(p *config.Pipeline) []Job {
	var out []Job
	for _, m := range p.Mirror {
		ref, err := layers.ParseTableRef(m.Table, "")
		if err != nil {
			continue // the loader has refused it already
		}
		out = append(out, Job{Table: layers.TableRef{Layer: MirrorLayer, Name: m.To}, Deps: []layers.TableRef{ref}})
	}
	return out
}

// collapseDisabledMirrors replaces the mirror jobs of a plan by a single
// one (with an empty name) when postgres: is empty: the run says once
// that the mirror is disabled.
func collapseDisabledMirrors(p *config.Pipeline, plan []Job) []Job {
	if p.Postgres != "" {
		return plan
	}
	out := plan[:0:0]
	said := false
	for _, j := range plan {
		if j.Table.Layer == MirrorLayer {
			if said {
				continue
			}
			said = true
			j = Job{Table: layers.TableRef{Layer: MirrorLayer}}
		}
		out = append(out, j)
	}
	return out
}

// MirrorDisabled reports whether j is the job that only says the mirror
// is disabled (postgres: empty, see Plan): it runs nothing, so it has no
// run to record.
func (j Job) MirrorDisabled() bool { return j.Table.Layer == MirrorLayer && j.Table.Name == "" }

// runMirror brings one PostgreSQL mirror up to date with its lake table.
func (r *Runner) runMirror(ctx context.Context, t layers.TableRef) (string, error) {
	if r.Pipeline.Postgres == "" || t.Name == "" {
		return MirrorDisabled, nil
	}
	var cfg *config.Mirror
	for _, m := range r.Pipeline.Mirror {
		if m.To == t.Name {
			cfg = m
		}
	}
	if cfg == nil {
		return "", fmt.Errorf("%s: no mirror: entry has to: %s", t, t.Name)
	}
	spec, err := MirrorSpec(cfg)
	if err != nil {
		return "", err
	}
	opts := pgmirror.DefaultOptions()
	opts.Logger = r.Log
	m, err := pgmirror.New(r.Pipeline.Postgres, pgmirror.Deps{Store: r.Store, Engine: r.Engine, Cache: r.Cache}, opts)
	if err != nil {
		return "", err
	}
	res, err := m.Sync(ctx, spec)
	if err != nil {
		return "", err
	}
	return res.String(), nil
}
