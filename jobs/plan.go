// Package jobs decides what runs and when: the dependency plan behind
// `medallion run`, and later the scheduler, stream mode and leases.
package jobs

import (
	"fmt"
	"sort"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/layers"
)

// Job is one table to bring up to date, with the tables it reads.
type Job struct {
	Table layers.TableRef
	Deps  []layers.TableRef
}

// Plan resolves the targets of `medallion run` (layer names, layer.table or
// bare table names; none means everything) into jobs in dependency order,
// upstream tables included: running gold.x first brings its silver and
// bronze inputs up to date. The order is deterministic: layers in pipeline
// order, tables in the order the file declares them.
func Plan(p *config.Pipeline, targets []string) ([]Job, error) {
	all := allJobs(p)
	byName := make(map[string]Job, len(all))
	for _, j := range all {
		byName[j.Table.String()] = j
	}
	want := make(map[string]bool)
	if len(targets) == 0 {
		for _, j := range all {
			want[j.Table.String()] = true
		}
	}
	for _, t := range targets {
		refs, err := resolve(p, all, t)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			markWithDeps(byName, r.String(), want)
		}
	}
	var out []Job
	for _, j := range all { // all is already in dependency order
		if want[j.Table.String()] {
			out = append(out, j)
		}
	}
	return collapseDisabledMirrors(p, out), nil
}

func markWithDeps(byName map[string]Job, name string, want map[string]bool) {
	if want[name] {
		return
	}
	want[name] = true
	for _, d := range byName[name].Deps {
		markWithDeps(byName, d.String(), want)
	}
}

// resolve turns one target into table refs.
func resolve(p *config.Pipeline, all []Job, target string) ([]layers.TableRef, error) {
	switch layers.Layer(target) {
	case layers.Raw:
		// Raw objects are landed by ingest; `run raw` means "discover and
		// promote what landed", which is the bronze job.
		target = string(layers.Bronze)
		fallthrough
	case layers.Bronze, layers.Silver, layers.Gold, MirrorLayer:
		var refs []layers.TableRef
		for _, j := range all {
			if j.Table.Layer == layers.Layer(target) {
				refs = append(refs, j.Table)
			}
		}
		return refs, nil
	}
	var matches []layers.TableRef
	for _, j := range all {
		if j.Table.String() == target || (!strings.Contains(target, ".") && j.Table.Name == target) {
			matches = append(matches, j.Table)
		}
	}
	switch len(matches) {
	case 1:
		return matches, nil
	case 0:
		names := make([]string, 0, len(all))
		for _, j := range all {
			names = append(names, j.Table.String())
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown layer or table %q: want bronze, silver, gold, mirror or one of %s", target, strings.Join(names, ", "))
	default:
		return nil, fmt.Errorf("table name %q is ambiguous: say %s or %s", target, matches[0], matches[1])
	}
}

// allJobs lists every job of the pipeline in dependency order.
func allJobs(p *config.Pipeline) []Job {
	var out []Job
	for _, n := range p.SourceOrder {
		out = append(out, Job{Table: layers.TableRef{Layer: layers.Bronze, Name: n}})
	}
	for _, n := range p.SilverOrder {
		s := p.Silver[n]
		out = append(out, Job{
			Table: layers.TableRef{Layer: layers.Silver, Name: n},
			Deps:  []layers.TableRef{{Layer: layers.Bronze, Name: s.From}},
		})
	}
	// Gold tables may read each other (SQL models): order them so that every
	// table comes after what it reads. The loader has refused cycles.
	done := make(map[string]bool)
	var visit func(name string)
	visit = func(name string) {
		if done[name] {
			return
		}
		done[name] = true
		g := p.Gold[name]
		var deps []layers.TableRef
		if g.From != "" {
			deps = append(deps, layers.TableRef{Layer: layers.Silver, Name: g.From})
		}
		for _, d := range g.DependsOn {
			ref, err := layers.ParseTableRef(d, "")
			if err != nil {
				continue
			}
			if ref.Layer == layers.Gold {
				if _, ok := p.Gold[ref.Name]; ok {
					visit(ref.Name)
				}
			}
			deps = append(deps, ref)
		}
		out = append(out, Job{Table: layers.TableRef{Layer: layers.Gold, Name: name}, Deps: deps})
	}
	for _, n := range p.GoldOrder {
		visit(n)
	}
	return append(out, mirrorJobs(p)...)
}
