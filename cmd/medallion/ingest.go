package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/humanize"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/layers/raw/files"
)

// ingestInput is one thing to land: a file, or stdin when path is "-".
type ingestInput struct{ path string }

func (in ingestInput) display() string {
	if in.path == "-" {
		return "stdin"
	}
	return in.path
}

// runIngest is `medallion ingest SOURCE FILE|DIR|-...`: it checks every
// argument first, then lands each input into raw and prints a summary.
func runIngest(ctx context.Context, a *app, args []string) error {
	fs := a.flags("ingest")
	a.createLakeFlag(fs)
	glob := fs.String("glob", "", "in a DIR, take only files whose name matches this pattern (\"*.csv\")")
	noProgress := fs.Bool("no-progress", false, "no progress: neither the status line on a terminal nor the info lines every "+envProgressEvery+" (5s) in logs")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("want a SOURCE and at least one FILE, DIR or - (stdin)")
	}
	source := pos[0]
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	src, ok := p.Sources[source]
	if !ok {
		return unknownSource(p, source)
	}
	// Check every argument before landing anything.
	match, err := files.NewMatcher(*glob)
	if err != nil {
		return usagef("--glob: %v", err)
	}
	inputs, err := expandInputs(pos[1:], match)
	if err != nil {
		return err
	}
	if len(inputs) == 0 {
		fmt.Fprintf(a.stdout, "%s: nothing to ingest (no files to take in %s)\n", source, strings.Join(pos[1:], ", "))
		return nil
	}
	for _, in := range inputs {
		if in.path != "-" {
			if err := checkInputFormat(in.path, source, src.Format); err != nil {
				return err
			}
		}
	}
	every, err := progressEvery()
	if err != nil {
		return err
	}
	st, err := a.openLake(ctx, p)
	if err != nil {
		return err
	}
	say := func(line string) { fmt.Fprintln(a.stdout, line) }
	var track *ingestProgress
	if !*noProgress {
		prog := newProgress(a.stderr, a.log, len(inputs), every)
		defer prog.close()
		a.log = a.loggerTo(prog.logsTo(a.stderr))
		prog.logTo(a.log)
		say = func(line string) { prog.println(a.stdout, line) }
		track = newIngestProgress(prog, source, inputs)
	}
	var landed, already int
	var landedBytes int64
	for _, in := range inputs {
		began := time.Now()
		m, dup, err := a.landInput(ctx, st, source, src.Format, in, began, track.reading())
		track.landed()
		if err != nil {
			return err
		}
		if dup {
			// Quiet: re-running ingest over a folder is the usual way to
			// pick up its new files, and the summary line counts these.
			already++
			a.log.Debug("already landed", "source", source, "name", in.display(), "key", m.Key,
				"received", m.ReceivedAt.Format(time.RFC3339))
			continue
		}
		landed++
		landedBytes += m.Size
		say(fmt.Sprintf("landed %s -> %s (%s, sha256 %s…)", in.display(), m.Key, humanize.Bytes(m.Size), m.SHA256[:8]))
		a.log.Debug("landed", "source", source, "name", in.display(), "key", m.Key, "sha256", m.SHA256,
			"bytes", m.Size, "took", time.Since(began))
	}
	files := "files"
	if len(inputs) == 1 {
		files = "file"
	}
	say(fmt.Sprintf("%s: %d %s, %d landed (%s), %d already landed",
		source, len(inputs), files, landed, humanize.Bytes(landedBytes), already))
	return nil
}

// unknownSource is the error for a source the pipeline file does not
// declare, listing the ones it does.
func unknownSource(p *config.Pipeline, source string) error {
	declared := "no sources"
	if len(p.SourceOrder) > 0 {
		declared = strings.Join(p.SourceOrder, ", ")
	}
	file := p.Path
	if file == "" {
		file = "the pipeline file"
	}
	return fmt.Errorf("unknown source %q: %s declares %s", source, file, declared)
}

// landInput lands one input (a file, or stdin after checking its first
// bytes look like format) into source's raw area; dup reports an object
// landed before.
// read, if not nil, follows the bytes of a file read so far.
func (a *app) landInput(ctx context.Context, st lake.Store, source, format string, in ingestInput, began time.Time, read func(int64)) (m raw.Manifest, dup bool, err error) {
	if in.path == "-" {
		var stdin io.Reader
		if stdin, err = checkStdinFormat(a.stdin, source, format); err != nil {
			return m, false, err
		}
		m, dup, err = raw.Land(ctx, st, source, "-", format, stdin, began)
	} else {
		m, dup, err = raw.LandFileReporting(ctx, st, source, format, in.path, began, read)
	}
	if err != nil {
		return m, false, fmt.Errorf("ingest %s into %s: %w", in.display(), source, err)
	}
	return m, dup, nil
}

// expandInputs turns the command line's FILE, DIR and - arguments into the
// files to land, in order: a directory gives the files m takes, in sorted
// order (hidden and partial files skipped); an empty one gives none. A
// missing path is an error naming it.
func expandInputs(args []string, m files.Matcher) ([]ingestInput, error) {
	var out []ingestInput
	stdin := false
	for _, arg := range args {
		if arg == "-" {
			if stdin {
				return nil, usagef("- (stdin) given twice")
			}
			stdin = true
			out = append(out, ingestInput{path: "-"})
			continue
		}
		fi, err := os.Stat(arg)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file or directory (give files, directories or - for stdin)", arg)
		}
		if err != nil {
			return nil, err
		}
		switch {
		case fi.IsDir():
			list, err := raw.Files(arg)
			if err != nil {
				return nil, err
			}
			for _, f := range list {
				rel, err := filepath.Rel(arg, f)
				if err != nil || !m.Take(filepath.ToSlash(rel)) {
					continue
				}
				out = append(out, ingestInput{path: f})
			}
		case fi.Mode().IsRegular():
			out = append(out, ingestInput{path: arg})
		default:
			return nil, fmt.Errorf("%s: not a regular file or directory", arg)
		}
	}
	return out, nil
}

// ingestProgress follows an ingest as one job of progress: bytes of the
// files landed of their total (stdin's bytes are not counted: its size is
// not known), files done of the inputs given.
type ingestProgress struct {
	prog  *progress
	name  string
	total int64 // bytes of the files given (stdin: unknown, left out)
	base  int64 // bytes of the files landed so far
	cur   int64 // bytes read of the file being landed
}

// newIngestProgress starts following the landing of inputs into source.
func newIngestProgress(prog *progress, source string, inputs []ingestInput) *ingestProgress {
	t := &ingestProgress{prog: prog, name: "ingest " + source}
	for _, in := range inputs {
		if fi, err := os.Stat(in.path); err == nil && in.path != "-" {
			t.total += fi.Size()
		}
	}
	prog.begin(t.name)
	t.set()
	return t
}

// reading is the callback following the bytes of the next file; nil when
// there is no progress.
func (t *ingestProgress) reading() func(int64) {
	if t == nil {
		return nil
	}
	return func(n int64) {
		t.cur = n
		t.set()
	}
}

// landed counts a file as done (landed, already landed or failed).
func (t *ingestProgress) landed() {
	if t == nil {
		return
	}
	t.base += t.cur
	t.cur = 0
	t.prog.count()
	t.set()
}

// set reports the bytes landed so far.
func (t *ingestProgress) set() {
	t.prog.set(t.name, layers.Progress{Step: "landing", Unit: layers.UnitBytes, Done: t.base + t.cur, Total: t.total})
}
