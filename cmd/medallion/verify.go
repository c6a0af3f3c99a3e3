package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/humanize"
	"strings"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

const verifyUsage = "[--parallel N] [TABLE ...]"

// runVerify is a scrub: it reads every live data file of the named tables
// (every table of the pipeline when none is named) and compares it with
// the size and SHA-256 its add action records. A mismatch is printed with
// the file, what was expected and what was found, and makes the command
// exit 1; files written without a checksum (by other engines or older
// versions) are counted as unverified, their size still checked.
func runVerify(ctx context.Context, a *app, args []string) error {
	fs := a.flags("verify")
	parallel := fs.Int("parallel", 4, "files read at once")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if *parallel < 1 {
		return usagef("--parallel %d: want 1 or more", *parallel)
	}
	refs, err := tableArgs(pos)
	if err != nil {
		return err
	}
	p, st, err := a.pipelineLake(ctx)
	if err != nil {
		return err
	}
	named := len(refs) > 0
	if !named {
		refs = layers.Tables(p)
	}
	var bad, badTables int
	for _, ref := range refs {
		tbl := delta.Open(st, ref.Dir())
		snap, err := tbl.Snapshot(ctx)
		if errors.Is(err, delta.ErrNoTable) {
			if named {
				return fmt.Errorf("table %s has no commits yet: run `medallion run` first", ref)
			}
			fmt.Fprintf(a.stdout, "%s: not created yet\n", ref)
			continue
		}
		if err != nil {
			return fmt.Errorf("verify %s: %w", ref, err)
		}
		res, err := tbl.Verify(ctx, snap, *parallel)
		if err != nil {
			return fmt.Errorf("verify %s version %d: %w", ref, snap.Version, err)
		}
		line := fmt.Sprintf("%s version %d: %s checked, %s read, %s", ref, snap.Version,
			plural(res.Files, "file"), humanize.Bytes(res.Bytes), plural(len(res.Mismatches), "mismatch"))
		if res.Unverified > 0 {
			line += fmt.Sprintf(", %d unverified (no checksum)", res.Unverified)
		}
		fmt.Fprintln(a.stdout, line)
		for _, m := range res.Mismatches {
			fmt.Fprintf(a.stdout, "  MISMATCH %s: %s: expected %s, found %s\n", tbl.Key(m.Path), m.Problem, m.Expected, m.Found)
		}
		if len(res.Mismatches) > 0 {
			bad += len(res.Mismatches)
			badTables++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d data file(s) in %d table(s) do not match the size or checksum their table's log records (listed above): restore them from a copy (bucket versioning, a backup) or rebuild the table from its inputs", bad, badTables)
	}
	return nil
}

// plural is "1 file", "2 files", "0 mismatches".
func plural(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "ch"):
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
