package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
)

const replayUsage = "TABLE [--reason R] [--batch B] [--migrate]"

// runReplay is `medallion replay bronze.SOURCE`: type the source's
// quarantined rows again with the current rules; rows that now pass move
// into bronze exactly once, the others stay with their new reason.
func runReplay(ctx context.Context, a *app, args []string) error {
	fs := a.flags("replay")
	reason := fs.String("reason", "", "only rows whose reason contains this text, or of this reason class ("+strings.Join(bronze.ReasonClasses(), ", ")+")")
	batch := fs.String("batch", "", "only rows of this batch_id")
	wait := fs.Duration("wait", defaultLeaseWait, "how long to wait for the table while a run (serve, another run) is running it, then fail")
	migrate := fs.Bool("migrate", false, "first rename bronze._quarantine's legacy \"column\" column to column_name (rewrites the table in one commit); TABLE is then optional")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || len(pos) == 0 && !*migrate {
		return usagef("want one bronze table, e.g. bronze.meters")
	}
	if *migrate {
		if err := migrateQuarantine(ctx, a, *wait); err != nil {
			return err
		}
		if len(pos) == 0 {
			return nil
		}
	}
	ref, err := layers.ParseTableRef(pos[0], layers.Bronze)
	if err != nil {
		return usagef("%v", err)
	}
	if ref.Layer != layers.Bronze || ref.Name == layers.QuarantineName {
		return usagef("%s: replay takes a bronze source table (bronze.SOURCE); its rows come from bronze._quarantine", ref)
	}
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	src, ok := p.Sources[ref.Name]
	if !ok {
		return fmt.Errorf("no source %q in %s: replay takes bronze.SOURCE of a declared source (%s)", ref.Name, p.Path, strings.Join(sourceNames(p.Sources), ", "))
	}
	ws, err := a.openWorkspace(ctx, p)
	if err != nil {
		return err
	}
	defer ws.Close()
	r, err := ws.runner(a, p, *wait)
	if err != nil {
		return err
	}
	var st bronze.ReplayStats
	_, err = r.WithTableLease(ctx, ref, func(ctx context.Context) (layers.Result, error) {
		env := layers.Env{Store: ws.store, DB: ws.eng.DB(), Cache: ws.cache, Log: a.log}
		var err error
		st, err = bronze.Replay(ctx, bronze.Deps{Env: env, TxnRetention: p.Bronze.TxnRetention}, src, bronze.ReplayOptions{Reason: *reason, Batch: *batch})
		return layers.Result{}, err
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, st)
	if st.Moved > 0 {
		fmt.Fprintln(a.stdout, replayNext(p, ref.Name))
	}
	return nil
}

// replayNext is the line after a replay that moved rows: the next run
// brings them downstream, but rows behind a silver table's watermark go to
// silver._late there, and a refresh of the table (rebuilt over bronze as
// it is now, in one pass) counts them.
func replayNext(p *config.Pipeline, source string) string {
	var refresh []string
	for _, name := range p.SilverOrder {
		if s := p.Silver[name]; s != nil && s.From == source {
			refresh = append(refresh, "`medallion refresh silver."+name+" --downstream`")
		}
	}
	line := "run `medallion run` to bring the moved rows into silver and gold"
	if len(refresh) == 0 {
		return line
	}
	return line + "; rows behind a silver table's watermark go to silver._late: run " + strings.Join(refresh, ", ") + " to include them"
}

// sourceNames returns the names of the pipeline's sources, sorted.
func sourceNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// migrateQuarantine renames the legacy column of bronze._quarantine under
// the lease of every bronze table (no bronze run writes the quarantine
// meanwhile).
func migrateQuarantine(ctx context.Context, a *app, wait time.Duration) error {
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	ws, err := a.openWorkspace(ctx, p)
	if err != nil {
		return err
	}
	defer ws.Close()
	r, err := ws.runner(a, p, wait)
	if err != nil {
		return err
	}
	names := sourceNames(p.Sources)
	var changed bool
	var locked func(ctx context.Context, i int) (layers.Result, error)
	locked = func(ctx context.Context, i int) (layers.Result, error) {
		if i < len(names) {
			return r.WithTableLease(ctx, layers.TableRef{Layer: layers.Bronze, Name: names[i]}, func(ctx context.Context) (layers.Result, error) { return locked(ctx, i+1) })
		}
		env := layers.Env{Store: ws.store, DB: ws.eng.DB(), Cache: ws.cache, Log: a.log}
		var err error
		changed, err = bronze.MigrateQuarantine(ctx, bronze.Deps{Env: env, TxnRetention: p.Bronze.TxnRetention})
		return layers.Result{}, err
	}
	if _, err := locked(ctx, 0); err != nil {
		return fmt.Errorf("rename the column of bronze._quarantine: %w", err)
	}
	if changed {
		fmt.Fprintf(a.stdout, "bronze._quarantine: column %q renamed to %s (every file rewritten in one commit)\n", bronze.LegacyQuarantineColumn, bronze.QuarantineColumn)
	} else {
		fmt.Fprintf(a.stdout, "bronze._quarantine: already uses %s (or has no commits yet): nothing to rename\n", bronze.QuarantineColumn)
	}
	return nil
}
