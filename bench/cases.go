package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// energyStart is the event time of the first generated energy row
// (medallion generate's default start).
var energyStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// energyMeters is how many meters the energy generator simulates: one
// reading per meter per second.
const energyMeters = 8

func (b *bench) basePipeline() pipeline {
	return pipeline{lake: "file://./lake", memoryLimit: b.cfg.memoryLimit, threads: b.cfg.threads}
}

func (b *bench) refOut(name string) string {
	dir := filepath.Join(b.work, "ref")
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, name+".parquet")
	os.Remove(p)
	return p
}

// case 1: CSV to bronze.
func (b *bench) caseCSV(ctx context.Context) *result {
	rows := b.cfg.rowsCSV
	r := &result{id: 1, kind: speedKind, minRatio: 0.8, rows: rows,
		figure: fmt.Sprintf("1. CSV to bronze, %s e-commerce events (`ingest` + `run bronze`, local lake) vs DuckDB `read_csv` -> Parquet", count(rows))}
	data, err := b.generate(ctx, "ecommerce", rows, "", 1)
	if err != nil {
		return r.fail(err)
	}
	r.bytes = data.bytes
	p := b.basePipeline()
	p.events = true
	err = b.alternate(r, func(int) (sample, error) {
		dir, err := b.runDir("csv", p, "")
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(dir)
		return b.ingestAndBronze(ctx, dir, nil, "events", data.path)
	}, func(int) (sample, error) {
		return b.reference(ctx, "csv", b.rs, refCSV(data.path, b.refOut("csv")))
	})
	return r.done(err)
}

// case 2: NDJSON to bronze. The lake of the last run is kept for cases 3
// and 4.
func (b *bench) caseNDJSON(ctx context.Context) *result {
	rows := b.cfg.rowsNDJSON
	r := &result{id: 2, kind: speedKind, minRatio: 0.7, rows: rows,
		figure: fmt.Sprintf("2. NDJSON to bronze, %s energy readings (`ingest` + `run bronze`) vs DuckDB `read_json` -> Parquet", count(rows))}
	data, err := b.generate(ctx, "energy", rows, "", 1)
	if err != nil {
		return r.fail(err)
	}
	r.bytes = data.bytes
	p := b.basePipeline()
	p.meters = true
	err = b.alternate(r, func(i int) (sample, error) {
		dir, err := b.runDir("ndjson", p, "")
		if err != nil {
			return sample{}, err
		}
		s, err := b.ingestAndBronze(ctx, dir, nil, "meters", data.path)
		if err != nil || i < b.cfg.runs-1 {
			os.RemoveAll(dir)
			return s, err
		}
		if b.bronzeTmpl != "" {
			os.RemoveAll(b.bronzeTmpl)
		}
		b.bronzeTmpl = dir
		return s, nil
	}, func(int) (sample, error) {
		return b.reference(ctx, "ndjson", b.rs, refNDJSON(data.path, b.refOut("ndjson")))
	})
	return r.done(err)
}

// bronzeTemplate returns a run dir with bronze.meters of rowsNDJSON rows,
// building it (untimed) when case 2 did not run.
func (b *bench) bronzeTemplate(ctx context.Context) (string, error) {
	if b.bronzeTmpl != "" {
		return b.bronzeTmpl, nil
	}
	data, err := b.generate(ctx, "energy", b.cfg.rowsNDJSON, "", 1)
	if err != nil {
		return "", err
	}
	p := b.basePipeline()
	p.meters = true
	dir, err := b.runDir("bronze-template", p, "")
	if err != nil {
		return "", err
	}
	if _, err := b.ingestAndBronze(ctx, dir, nil, "meters", data.path); err != nil {
		return "", fmt.Errorf("bronze template: %w", err)
	}
	b.bronzeTmpl = dir
	return dir, nil
}

// silverTemplate returns a run dir with bronze and silver done.
func (b *bench) silverTemplate(ctx context.Context) (string, error) {
	if b.silverTmpl != "" {
		return b.silverTmpl, nil
	}
	from, err := b.bronzeTemplate(ctx)
	if err != nil {
		return "", err
	}
	p := b.basePipeline()
	p.meters = true
	dir, err := b.runDir("silver-template", p, from)
	if err != nil {
		return "", err
	}
	if _, _, err := b.medallion(ctx, dir, nil, "run", "silver"); err != nil {
		return "", fmt.Errorf("silver template: %w", err)
	}
	b.silverTmpl = dir
	return dir, nil
}

// case 3: silver windows over the bronze files of case 2.
func (b *bench) caseSilver(ctx context.Context) *result {
	rows := b.cfg.rowsNDJSON
	r := &result{id: 3, kind: speedKind, minRatio: 0.8, rows: rows,
		figure: fmt.Sprintf("3. Silver 1-minute windows over %s bronze rows (`run silver`) vs DuckDB `GROUP BY time_bucket` -> Parquet", count(rows))}
	tmpl, err := b.bronzeTemplate(ctx)
	if err != nil {
		return r.fail(err)
	}
	files, size, err := parquetFiles(filepath.Join(tmpl, "lake", "bronze", "meters"))
	if err != nil {
		return r.fail(err)
	}
	r.bytes = size
	p := b.basePipeline()
	p.meters = true
	err = b.alternate(r, func(i int) (sample, error) {
		dir, err := b.runDir("silver", p, tmpl)
		if err != nil {
			return sample{}, err
		}
		s, _, err := b.medallion(ctx, dir, nil, "run", "silver")
		if err != nil || i < b.cfg.runs-1 || b.silverTmpl != "" {
			os.RemoveAll(dir)
			return s, err
		}
		b.silverTmpl = dir
		return s, nil
	}, func(int) (sample, error) {
		return b.reference(ctx, "silver", b.rs, refSilver(files, b.refOut("silver")))
	})
	return r.done(err)
}

// case 4: gold moving average over the silver files of case 3.
func (b *bench) caseGold(ctx context.Context) *result {
	r := &result{id: 4, kind: speedKind, minRatio: 0.8}
	tmpl, err := b.silverTemplate(ctx)
	if err != nil {
		return r.fail(err)
	}
	files, size, err := parquetFiles(filepath.Join(tmpl, "lake", "silver", "meter_usage_1m"))
	if err != nil {
		return r.fail(err)
	}
	r.bytes = size
	if r.rows, err = b.queryInt(ctx, "SELECT count(*) FROM read_parquet("+sqlStrings(files)+")"); err != nil {
		return r.fail(err)
	}
	r.figure = fmt.Sprintf("4. Gold 15-row moving average + flag over %s silver windows (`run gold`) vs DuckDB window function -> Parquet", count(r.rows))
	p := b.basePipeline()
	p.meters = true
	err = b.alternate(r, func(int) (sample, error) {
		dir, err := b.runDir("gold", p, tmpl)
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(dir)
		s, _, err := b.medallion(ctx, dir, nil, "run", "gold")
		return s, err
	}, func(int) (sample, error) {
		return b.reference(ctx, "gold", b.rs, refGold(files, b.refOut("gold")))
	})
	return r.done(err)
}

// case 5: first full load of bronze.meters into PostgreSQL by the mirror,
// against psql's best path for the same rows: one script creating the
// table without its key, \copy ... FREEZE, then the key (mirrorLoadScript).
func (b *bench) caseMirror(ctx context.Context) *result {
	rows := b.cfg.rowsMirror
	r := &result{id: 5, kind: speedKind, minRatio: 0.8, rows: rows,
		figure: fmt.Sprintf("5. PostgreSQL mirror, first full load of %s bronze rows (`run mirror`) vs `psql -f`: one transaction of `CREATE TABLE` (no key), `\\copy ... FREEZE` of the same rows as CSV, `ADD PRIMARY KEY`", count(rows))}
	schema := fmt.Sprintf("medallion_bench_%d", os.Getpid())
	p := b.basePipeline()
	p.meters = true
	p.mirrorTo = schema + "_probe.meters"
	env := []string{"DATABASE_URL=" + b.cfg.databaseURL}
	// Is the mirror step there? A usage error (exit 2) says `run mirror`
	// is not known to this build.
	probe, err := b.runDir("mirror-probe", p, "")
	if err != nil {
		return r.fail(err)
	}
	_, _, err = b.medallion(ctx, probe, env, "run", "mirror")
	os.RemoveAll(probe)
	b.psql(ctx, "DROP SCHEMA IF EXISTS "+schema+"_probe CASCADE")
	var ce *commandError
	if errors.As(err, &ce) && ce.code == 2 {
		r.skip = "not measured yet: `medallion run mirror` is not in this build"
		return r
	}
	if _, err := b.psql(ctx, "SELECT 1"); err != nil {
		return r.fail(fmt.Errorf("PostgreSQL at %s: %w", b.cfg.databaseURL, err))
	}
	// The table to mirror: bronze.meters of rowsMirror rows.
	tmpl := b.bronzeTmpl
	if tmpl == "" || rows != b.cfg.rowsNDJSON {
		data, err := b.generate(ctx, "energy", rows, "", 1)
		if err != nil {
			return r.fail(err)
		}
		bp := b.basePipeline()
		bp.meters = true
		if tmpl, err = b.runDir("mirror-template", bp, ""); err != nil {
			return r.fail(err)
		}
		defer os.RemoveAll(tmpl)
		if _, err := b.ingestAndBronze(ctx, tmpl, nil, "meters", data.path); err != nil {
			return r.fail(fmt.Errorf("mirror template: %w", err))
		}
	}
	files, _, err := parquetFiles(filepath.Join(tmpl, "lake", "bronze", "meters"))
	if err != nil {
		return r.fail(err)
	}
	csvPath := filepath.Join(b.work, "ref", "mirror.csv")
	os.MkdirAll(filepath.Dir(csvPath), 0o755)
	if _, err := b.reference(ctx, "mirror-export", b.rs, refExportCSV(files, csvPath)); err != nil {
		return r.fail(err)
	}
	defer os.Remove(csvPath)
	if fi, err := os.Stat(csvPath); err == nil {
		r.bytes = fi.Size()
	}
	err = b.alternate(r, func(i int) (sample, error) {
		s := fmt.Sprintf("%s_ours_%d", schema, i)
		if _, err := b.psql(ctx, "CREATE SCHEMA "+s); err != nil {
			return sample{}, err
		}
		defer b.psql(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
		mp := p
		mp.mirrorTo = s + ".meters"
		dir, err := b.runDir("mirror", mp, tmpl)
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(dir)
		smp, _, err := b.medallion(ctx, dir, env, "run", "mirror")
		return smp, err
	}, func(i int) (sample, error) {
		s := fmt.Sprintf("%s_ref_%d", schema, i)
		if _, err := b.psql(ctx, "CREATE SCHEMA "+s); err != nil {
			return sample{}, err
		}
		defer b.psql(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
		return b.psqlScript(ctx, "mirror-load", mirrorLoadScript(s+".meters", csvPath))
	})
	return r.done(err)
}

// case 6: after a full run of the whole pipeline over the full pipeline
// run's data (-rows-ndjson by default, the file case 2 reads), 1% new data
// and a second run; the second run's time as a share of the first's. After
// the first round, a hard-linked copy of the lake as the full run left it
// takes the same 1% one layer per process, and then a run with nothing new,
// so the table's note shows where the 1% run's time goes and how much of it
// is fixed cost.
func (b *bench) caseIncremental(ctx context.Context) *result {
	rows := b.cfg.rowsIncr
	inc := max(rows/100, 1)
	r := &result{id: 6, kind: shareKind, maxShare: 0.05, rows: inc,
		figure: fmt.Sprintf("6. Incremental: `ingest` + `run` (all layers) of 1%% new data (%s rows) after a full run of %s rows; reference = the full run", count(inc), count(rows))}
	full, err := b.generate(ctx, "energy", rows, "", 1)
	if err != nil {
		return r.fail(err)
	}
	// The new data continues in time where the full data ends.
	start := energyStart.Add(time.Duration(rows/energyMeters) * time.Second).Format(time.RFC3339)
	more, err := b.generate(ctx, "energy", inc, start, 2)
	if err != nil {
		return r.fail(err)
	}
	r.bytes = more.bytes
	p := b.basePipeline()
	p.meters = true
	var fullRuns []sample
	for i := 0; i < b.cfg.runs; i++ {
		dir, err := b.runDir("incremental", p, "")
		if err != nil {
			return r.fail(err)
		}
		s1, err := b.ingestAndRun(ctx, dir, full.path)
		if err != nil {
			os.RemoveAll(dir)
			return r.fail(fmt.Errorf("full run %d: %w", i+1, err))
		}
		copyDir := ""
		if i == 0 {
			if copyDir, err = b.runDir("incremental-layers", p, dir); err != nil {
				os.RemoveAll(dir)
				return r.fail(err)
			}
		}
		s2, err := b.ingestAndRun(ctx, dir, more.path)
		os.RemoveAll(dir)
		if err != nil {
			os.RemoveAll(copyDir)
			return r.fail(fmt.Errorf("incremental run %d: %w", i+1, err))
		}
		b.logf("case 6: run %d: full %s, 1%% %s", i+1, s1.wall.Round(time.Millisecond), s2.wall.Round(time.Millisecond))
		fullRuns = append(fullRuns, s1)
		r.ours = append(r.ours, s2)
		if copyDir != "" {
			note, err := b.incrementalBreakdown(ctx, copyDir, more.path)
			os.RemoveAll(copyDir)
			if err != nil {
				return r.fail(fmt.Errorf("1%% run by layer: %w", err))
			}
			r.note = note
		}
	}
	r.ref = fullRuns
	return r.done(nil)
}

// incrementalBreakdown runs the 1% increment in dir one step per process
// (ingest, then each layer), then `run` once more with nothing new, and
// describes the times.
func (b *bench) incrementalBreakdown(ctx context.Context, dir, file string) (string, error) {
	steps := []struct {
		name string
		args []string
	}{
		{"`ingest`", []string{"ingest", "meters", file}},
		{"`run bronze`", []string{"run", "bronze"}},
		{"`run silver`", []string{"run", "silver"}},
		{"`run gold`", []string{"run", "gold"}},
		{"`run` with nothing new", []string{"run"}},
		{"`version` (process start)", []string{"version"}},
	}
	var parts []string
	for _, s := range steps {
		smp, _, err := b.medallion(ctx, dir, nil, s.args...)
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s %s", s.name, secs(smp.wall)))
	}
	b.logf("case 6: 1%% by layer: %s", strings.Join(parts, ", "))
	return "Case 6, the 1% run one step per process (first round, on a copy of the lake after the full run): " +
		strings.Join(parts, ", ") + ". A run that finds nothing new is the fixed cost every run pays (process start, DuckDB, " +
		"each table's Delta log and state).", nil
}

func (b *bench) ingestAndRun(ctx context.Context, dir, file string) (sample, error) {
	s1, _, err := b.medallion(ctx, dir, nil, "ingest", "meters", file)
	if err != nil {
		return sample{}, err
	}
	s2, _, err := b.medallion(ctx, dir, nil, "run")
	if err != nil {
		return sample{}, err
	}
	return s1.plus(s2), nil
}

// case 7: peak RSS of the bronze run on a big input with a small memory
// setting; the reference is DuckDB's CSV -> Parquet with the same setting.
func (b *bench) caseMemory(ctx context.Context) *result {
	rows := b.cfg.rowsMemory
	limit, _ := parseSize(b.cfg.memoryCase) // validated by parseFlags
	r := &result{id: 7, kind: memoryKind, rssLimit: limit + 256<<20, rows: rows,
		figure: fmt.Sprintf("7. Memory: CSV to bronze of %s e-commerce events with `duckdb: {memory_limit: %s}` vs DuckDB `read_csv` -> Parquet with the same limit", count(rows), b.cfg.memoryCase)}
	data, err := b.generate(ctx, "ecommerce", rows, "", 1)
	if err != nil {
		return r.fail(err)
	}
	r.bytes = data.bytes
	r.figure = fmt.Sprintf("7. Memory: CSV to bronze of %s e-commerce events (%s) with `duckdb: {memory_limit: %s}` vs DuckDB `read_csv` -> Parquet with the same limit",
		count(rows), human(data.bytes), b.cfg.memoryCase)
	p := b.basePipeline()
	p.events = true
	p.memoryLimit = b.cfg.memoryCase
	rs := b.rs
	rs.memoryLimit = b.cfg.memoryCase
	err = b.alternate(r, func(int) (sample, error) {
		dir, err := b.runDir("memory", p, "")
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(dir)
		return b.ingestAndBronze(ctx, dir, nil, "events", data.path)
	}, func(int) (sample, error) {
		return b.reference(ctx, "memory", rs, refCSV(data.path, b.refOut("memory")))
	})
	return r.done(err)
}

// case 8: case 1 on a MinIO lake against case 1 on a local directory.
func (b *bench) caseS3(ctx context.Context) *result {
	rows := b.cfg.rowsS3
	r := &result{id: 8, kind: s3Kind, rows: rows,
		figure: fmt.Sprintf("8. S3 overhead: case 1 with %s events on a MinIO lake; reference = the same on a local lake", count(rows))}
	start := b.cfg.startMinIO
	if start == nil {
		start = startOwnMinIO
	}
	srv, stop, err := start(b.cfg.minio)
	if err != nil {
		return r.fail(err)
	}
	defer stop()
	data, err := b.generate(ctx, "ecommerce", rows, "", 1)
	if err != nil {
		return r.fail(err)
	}
	r.bytes = data.bytes
	local := b.basePipeline()
	local.events = true
	err = b.alternate(r, func(i int) (sample, error) {
		bucket := fmt.Sprintf("medallion-bench-%d-%d", os.Getpid(), i)
		opts := srv.Options(bucket)
		opts.CreateBucket = true
		st, err := lake.NewS3(ctx, opts)
		if err != nil {
			return sample{}, fmt.Errorf("bucket %s: %w", bucket, err)
		}
		defer emptyBucket(st)
		marker := []byte("{\"created_by\":\"medallion bench\"}\n")
		if _, err := st.Put(ctx, lakeMarker, bytes.NewReader(marker), int64(len(marker))); err != nil {
			return sample{}, fmt.Errorf("bucket %s: %w", bucket, err)
		}
		p := local
		p.lake = "s3://" + bucket
		p.s3 = true
		p.cache = "./cache"
		dir, err := b.runDir("s3", p, "")
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(dir)
		return b.ingestAndBronze(ctx, dir, srv.Env(), "events", data.path)
	}, func(int) (sample, error) {
		dir, err := b.runDir("s3-local", local, "")
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(dir)
		return b.ingestAndBronze(ctx, dir, nil, "events", data.path)
	})
	return r.done(err)
}

// emptyBucket deletes what a run left in its bucket (the bucket itself
// goes with the server's data directory).
func emptyBucket(st lake.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, err := st.List(ctx, "", "")
	if err != nil {
		return
	}
	for _, o := range objs {
		if st.Delete(ctx, o.Key) != nil {
			return
		}
	}
}
