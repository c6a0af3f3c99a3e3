package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/layers/raw"
)

// ingestInput is one thing to land: a file, or stdin when path is "-".
type ingestInput struct{ path string }

func (in ingestInput) display() string {
	if in.path == "-" {
		return "stdin"
	}
	return in.path
}

func runIngest(ctx context.Context, a *app, args []string) error {
	fs := a.flags("ingest")
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
	// Check every argument before landing anything.
	inputs, err := expandInputs(pos[1:])
	if err != nil {
		return err
	}
	st, err := a.openLake(ctx, p)
	if err != nil {
		return err
	}
	var landed, already int
	var landedBytes int64
	for _, in := range inputs {
		var (
			m     raw.Manifest
			dup   bool
			err   error
			began = time.Now()
		)
		if in.path == "-" {
			m, dup, err = raw.Land(ctx, st, source, "-", src.Format, a.stdin, began)
		} else {
			m, dup, err = raw.LandFile(ctx, st, source, src.Format, in.path, began)
		}
		if err != nil {
			return fmt.Errorf("ingest %s into %s: %w", in.display(), source, err)
		}
		if dup {
			already++
			fmt.Fprintf(a.stdout, "already landed %s as %s (received %s)\n", in.display(), m.Key, m.ReceivedAt.Format(time.RFC3339))
			continue
		}
		landed++
		landedBytes += m.Size
		fmt.Fprintf(a.stdout, "landed %s -> %s (%s, sha256 %s…)\n", in.display(), m.Key, humanBytes(m.Size), m.SHA256[:8])
		a.log.Debug("landed", "source", source, "name", in.display(), "key", m.Key, "sha256", m.SHA256,
			"bytes", m.Size, "took", time.Since(began))
	}
	files := "files"
	if len(inputs) == 1 {
		files = "file"
	}
	fmt.Fprintf(a.stdout, "%s: %d %s, %d landed (%s), %d already landed\n",
		source, len(inputs), files, landed, humanBytes(landedBytes), already)
	return nil
}

// expandInputs turns the command line's FILE, DIR and - arguments into the
// files to land, in order: a directory gives its files in sorted order,
// hidden ones skipped. A missing path is an error naming it.
func expandInputs(args []string) ([]ingestInput, error) {
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
			files, err := raw.Files(arg)
			if err != nil {
				return nil, err
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("%s: no files in this directory (hidden files are skipped)", filepath.Clean(arg))
			}
			for _, f := range files {
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
