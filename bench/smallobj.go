package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// case 10: many small objects. N NDJSON objects of 5 energy readings each
// are landed (untimed, once, then hard-linked into each run's lake), and
// `medallion run bronze` is timed against DuckDB reading the same files as
// one list in one read_json and writing Parquet.
func (b *bench) caseSmallObjects(ctx context.Context) *result {
	n := b.cfg.smallObjects
	const perObject = 5
	r := &result{id: 10, kind: speedKind, minRatio: 0.5, rows: int64(n * perObject),
		figure: fmt.Sprintf("10. Many small objects, %s NDJSON objects of %d energy readings landed, then `run bronze` vs DuckDB `read_json([...files...])` -> Parquet", count(int64(n)), perObject)}
	data, err := b.generate(ctx, "energy", int64(n*perObject), "", 1)
	if err != nil {
		return r.fail(err)
	}
	objDir := filepath.Join(b.work, "data", fmt.Sprintf("small-%d", n))
	files, size, err := splitLines(data.path, objDir, perObject)
	if err != nil {
		return r.fail(fmt.Errorf("split into objects: %w", err))
	}
	r.bytes = size
	p := b.basePipeline()
	p.meters = true
	landed, err := b.runDir("small-objects-landed", p, "")
	if err != nil {
		return r.fail(err)
	}
	defer os.RemoveAll(landed)
	b.logf("case 10: landing %d objects", len(files))
	if _, _, err := b.medallion(ctx, landed, nil, "ingest", "meters", objDir); err != nil {
		return r.fail(fmt.Errorf("land the objects: %w", err))
	}
	// The list of 10,000 paths is longer than one argument may be: the
	// reference reads its statement from a file.
	stmt := filepath.Join(b.work, "small-objects.sql")
	if err := os.WriteFile(stmt, []byte(refNDJSONFiles(files, b.refOut("small-objects"))), 0o644); err != nil {
		return r.fail(err)
	}
	err = b.alternate(r, func(int) (sample, error) {
		dir, err := b.runDir("small-objects", p, landed)
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(dir)
		s, _, err := b.medallion(ctx, dir, nil, "run", "bronze")
		return s, err
	}, func(int) (sample, error) {
		return b.reference(ctx, "small-objects", b.rs, "@"+stmt)
	})
	return r.done(err)
}

// splitLines writes the lines of in as files of per lines each in dir and
// returns their paths and total size.
func splitLines(in, dir string, per int) ([]string, int64, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(in)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var files []string
	var size int64
	var buf []byte
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		p := filepath.Join(dir, fmt.Sprintf("o%06d.ndjson", len(files)))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return err
		}
		files = append(files, p)
		size += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	lines := 0
	for sc.Scan() {
		buf = append(append(buf, sc.Bytes()...), '\n')
		if lines++; lines%per == 0 {
			if err := flush(); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	return files, size, flush()
}
