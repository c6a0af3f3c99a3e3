package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
)

const mirrorUsage = "[--rebuild TABLE] [TABLE ...]"

// repeatedFlag is a repeatable string flag.
type repeatedFlag []string

func (n *repeatedFlag) String() string     { return strings.Join(*n, ",") }
func (n *repeatedFlag) Set(s string) error { *n = append(*n, s); return nil }

// runMirror is `medallion mirror [--rebuild TABLE] [TABLE ...]`: bring the
// PostgreSQL mirrors of the named lake tables (all by default) up to their
// latest committed version; --rebuild builds a target in a new table and
// swaps it in, for the changes an incremental mirror refuses (a column
// type, the key). It runs no layer job: `medallion run` does both.
func runMirror(ctx context.Context, a *app, args []string) error {
	fs := a.flags("mirror")
	var rebuild repeatedFlag
	fs.Var(&rebuild, "rebuild", "rebuild this table's PostgreSQL copy in a new table and swap it in, in one transaction (repeatable)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	if len(p.Mirror) == 0 {
		fmt.Fprintln(a.stdout, "nothing to mirror: the pipeline file has no mirror: entries")
		return nil
	}
	syncs, rebuilds, err := pickMirrors(p, pos, rebuild)
	if err != nil {
		return err
	}
	if strings.TrimSpace(p.Postgres) == "" {
		return errors.New("postgres: is not set in the pipeline file: set it (postgres: ${DATABASE_URL}) and export DATABASE_URL")
	}

	ws, err := a.openWorkspace(ctx, p)
	if err != nil {
		return err
	}
	defer ws.Close()
	opts := pgmirror.DefaultOptions()
	opts.Logger = a.log
	mir, err := pgmirror.New(p.Postgres, pgmirror.Deps{Store: ws.store, Engine: ws.eng, Cache: ws.cache}, opts)
	if err != nil {
		return err
	}

	var errs []error
	do := func(m *config.Mirror, fn func(context.Context, pgmirror.Spec) (*pgmirror.Result, error)) {
		spec, err := jobs.MirrorSpec(m)
		var res *pgmirror.Result
		if err == nil {
			res, err = fn(ctx, spec)
		}
		if err != nil {
			fmt.Fprintf(a.stdout, "mirror %s -> %s: FAILED: %s\n", m.Table, m.To, errorLine(err))
			errs = append(errs, err)
			return
		}
		fmt.Fprintln(a.stdout, res.String())
	}
	for _, m := range rebuilds {
		do(m, mir.Rebuild)
	}
	for _, m := range syncs {
		do(m, mir.Sync)
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%d mirrors failed; first: %w", len(errs), errs[0])
}

// pickMirrors sorts the mirror: entries named on the command line into
// those to sync and those to rebuild (a table named both ways is rebuilt
// once); with no names at all every entry is synced.
func pickMirrors(p *config.Pipeline, names, rebuild []string) (syncs, rebuilds []*config.Mirror, err error) {
	for _, name := range rebuild {
		m, err := findMirror(p, name)
		if err != nil {
			return nil, nil, err
		}
		if !slices.Contains(rebuilds, m) {
			rebuilds = append(rebuilds, m)
		}
	}
	for _, name := range names {
		m, err := findMirror(p, name)
		if err != nil {
			return nil, nil, err
		}
		if !slices.Contains(syncs, m) && !slices.Contains(rebuilds, m) {
			syncs = append(syncs, m)
		}
	}
	if len(names) == 0 && len(rebuild) == 0 {
		syncs = p.Mirror
	}
	return syncs, rebuilds, nil
}

// findMirror finds the mirror: entry of a table as the user names it: the
// lake table (gold.x, or x alone) or the PostgreSQL target (public.x).
func findMirror(p *config.Pipeline, name string) (*config.Mirror, error) {
	var found []*config.Mirror
	for _, m := range p.Mirror {
		_, bare, _ := strings.Cut(m.Table, ".")
		if m.Table == name || m.To == name || (!strings.Contains(name, ".") && bare == name) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		var have []string
		for _, m := range p.Mirror {
			have = append(have, m.Table)
		}
		return nil, usagef("%q is not mirrored: the pipeline mirrors %s", name, strings.Join(have, ", "))
	}
	return nil, usagef("%q is ambiguous: say %s or %s", name, found[0].Table, found[1].Table)
}
