package main

import (
	"context"
	"fmt"
	"github.com/medallion-dev/medallion/internal/humanize"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/generate"
)

func runGenerate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("generate")
	rows := fs.Int64("rows", 1000, "rows to write, bad ones included")
	out := fs.String("out", "-", "output file; - writes to stdout")
	format := fs.String("format", "", "csv, ndjson or json (a JSON array); default: ndjson for energy and sensor, csv for ecommerce and turnstile")
	seed := fs.Uint64("seed", 1, "random seed: the same seed and flags give the same bytes")
	bad := fs.Float64("bad-fraction", 0, "fraction of rows that are bad (malformed, wrong types, missing or extra fields, out of range, invalid UTF-8, empty, bad timestamps, duplicates)")
	late := fs.Float64("late-fraction", 0, "fraction of events that arrive late")
	lateBy := fs.Duration("late-by", generate.DefaultLateBy, "a late event is at least this far behind the newest one")
	start := fs.String("start", "", `event time of the first row: RFC 3339, "2006-01-02 15:04:05", a date, or "now" (default 2024-01-01T00:00:00Z)`)
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	kinds := strings.Join(generate.Kinds(), ", ")
	switch {
	case len(pos) == 0:
		return usagef("which data? want a KIND: %s", kinds)
	case len(pos) > 1:
		return usagef("unexpected argument %q (want one KIND: %s)", pos[1], kinds)
	}
	opts := generate.Options{Kind: pos[0], Rows: *rows, Format: *format, Seed: *seed,
		BadFraction: *bad, LateFraction: *late, LateBy: *lateBy}
	if *lateBy <= 0 {
		return usagef("--late-by %v: want a positive duration", *lateBy)
	}
	if *start != "" {
		if opts.Start, err = parseStart(*start); err != nil {
			return err
		}
	}
	if err := opts.Validate(); err != nil {
		return usagef("%v", err)
	}

	began := time.Now()
	var (
		st   generate.Stats
		dest = "stdout"
	)
	if *out == "" || *out == "-" {
		st, err = generate.Write(ctx, a.stdout, opts)
	} else {
		dest = *out
		st, err = generateFile(ctx, *out, opts)
	}
	if err != nil {
		return err
	}
	// Progress goes where the data does not.
	w := a.stdout
	if dest == "stdout" {
		w = a.stderr
	}
	if opts.Format == "" {
		opts.Format, _ = generate.DefaultFormat(opts.Kind)
	}
	fmt.Fprintf(w, "wrote %d %s rows (%s, %s) to %s in %s: %s\n", st.Rows, opts.Kind, opts.Format,
		humanize.Bytes(st.Bytes), dest, time.Since(began).Round(time.Millisecond), describeFaults(st))
	return nil
}

// generateFile writes to a temp file beside path and renames it into place,
// so an interrupted run never leaves a truncated file under the real name.
// Anything that exists and is not a regular file (/dev/null, a named pipe)
// is written to directly: renaming over it would replace the device.
func generateFile(ctx context.Context, path string, opts generate.Options) (generate.Stats, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return generate.Stats{}, fmt.Errorf("--out %s is a directory", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return generate.Stats{}, err
		}
		st, err := generate.Write(ctx, f, opts)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", path, cerr)
		}
		return st, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return generate.Stats{}, fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return generate.Stats{}, fmt.Errorf("create %s: %w", path, err)
	}
	st, err := generate.Write(ctx, f, opts)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", path, cerr)
	}
	if err == nil {
		if err = os.Rename(f.Name(), path); err != nil {
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err != nil {
		os.Remove(f.Name())
		return st, err
	}
	return st, nil
}

func describeFaults(st generate.Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad", st.BadRows())
	if st.BadRows() > 0 {
		var parts []string
		for _, k := range generate.BadKinds() {
			if n := st.Bad[k]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", k, n))
			}
		}
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	fmt.Fprintf(&b, ", %d late", st.Late)
	return b.String()
}

// parseStart reads --start: RFC 3339, "2006-01-02 15:04:05" or
// "2006-01-02T15:04:05" (UTC), a date, or "now".
func parseStart(s string) (time.Time, error) {
	if s == "now" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usagef(`--start %q: want RFC 3339 (2024-01-01T00:00:00Z), "2024-01-01 00:00:00", a date or now`, s)
}
