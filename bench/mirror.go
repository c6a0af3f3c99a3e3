package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// mirrorColumns are the columns of bronze.meters as the mirror creates
// them, without the key.
const mirrorColumns = `("timestamp" timestamptz NOT NULL, meter_id text NOT NULL, energy_usage double precision, anomaly boolean, ` +
	`_rescued text, _source_file text, _ingested_at timestamptz, _batch_id text, event_date date)`

// mirrorKey is bronze.meters' key in the mirror.
const mirrorKey = `(meter_id, "timestamp")`

// mirrorLoadScript is psql's best path for a first full load, the
// reference of case 5: one transaction that creates the table without its
// key, loads it with `\copy ... FREEZE` (allowed because the table is new
// in this transaction: no per-row visibility work later) and adds the key
// after, so the index is built once from sorted input instead of row by
// row.
func mirrorLoadScript(table, csvPath string) string {
	return "BEGIN;\n" +
		"CREATE TABLE " + table + " " + mirrorColumns + ";\n" +
		`\copy ` + table + " FROM " + sqlString(csvPath) + " WITH (FORMAT csv, FREEZE)\n" +
		"ALTER TABLE " + table + " ADD PRIMARY KEY " + mirrorKey + ";\n" +
		"COMMIT;\n"
}

// mirrorUpsertScript is the reference of case 13: what a psql user does
// to apply a change file to a keyed table: stage it with `\copy` into a
// temporary table and upsert from there, in one transaction.
func mirrorUpsertScript(table, csvPath string) string {
	var set []string
	for _, c := range []string{"energy_usage", "anomaly", "_rescued", "_source_file", "_ingested_at", "_batch_id", "event_date"} {
		set = append(set, c+" = EXCLUDED."+c)
	}
	return "BEGIN;\n" +
		"CREATE TEMP TABLE stage (LIKE " + table + ") ON COMMIT DROP;\n" +
		`\copy stage FROM ` + sqlString(csvPath) + " WITH (FORMAT csv)\n" +
		"INSERT INTO " + table + " SELECT * FROM stage ON CONFLICT " + mirrorKey + " DO UPDATE SET " + strings.Join(set, ", ") + ";\n" +
		"COMMIT;\n"
}

// psqlScript runs script with `psql -f` against the bench database and
// measures psql only (the script file is written before the clock starts).
func (b *bench) psqlScript(ctx context.Context, name, script string) (sample, error) {
	dir := filepath.Join(b.work, "ref")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sample{}, err
	}
	path := filepath.Join(dir, name+".sql")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		return sample{}, fmt.Errorf("write psql script: %w", err)
	}
	defer os.Remove(path)
	s, _, err := measure(ctx, b.cfg.timeout, command{bin: "psql", args: []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", b.cfg.databaseURL, "-f", path}})
	return s, err
}

// case 13: the incremental mirror. After a first full load of
// bronze.meters (-rows-mirror rows) by each side, 1% more rows land in
// bronze and each side applies them: ours `medallion run mirror` (the
// staged upsert of the new files), the reference psql staging the same
// rows as CSV with `\copy` and upserting them (mirrorUpsertScript). Bronze
// keeps the first row of a key, so what changes in bronze.meters is new
// keys: the upsert inserts on both sides. The full loads are outside the
// timing.
func (b *bench) caseMirrorIncremental(ctx context.Context) *result {
	rows := b.cfg.rowsMirror
	inc := max(rows/100, 1)
	r := &result{id: 13, kind: compareKind, rows: inc,
		figure: fmt.Sprintf("13. PostgreSQL mirror, incremental: 1%% new rows (%s) in a mirrored bronze table of %s (`run mirror`) vs `psql -f`: `\\copy` into a staging table + `INSERT ... ON CONFLICT DO UPDATE`, one transaction", count(inc), count(rows))}
	if _, err := b.psql(ctx, "SELECT 1"); err != nil {
		return r.fail(fmt.Errorf("PostgreSQL at %s: %w", b.cfg.databaseURL, err))
	}
	schema := fmt.Sprintf("medallion_bench13_%d", os.Getpid())
	bp := b.basePipeline()
	bp.meters = true
	base, err := b.runDir("mirror-incr-base", bp, "")
	if err != nil {
		return r.fail(err)
	}
	defer os.RemoveAll(base)
	full, err := b.generate(ctx, "energy", rows, "", 1)
	if err != nil {
		return r.fail(err)
	}
	if _, err := b.ingestAndBronze(ctx, base, nil, "meters", full.path); err != nil {
		return r.fail(fmt.Errorf("base lake: %w", err))
	}
	start := energyStart.Add(time.Duration(rows/energyMeters) * time.Second).Format(time.RFC3339)
	more, err := b.generate(ctx, "energy", inc, start, 2)
	if err != nil {
		return r.fail(err)
	}
	// The rows of each side's input as CSV, exported from bronze's files:
	// the base's, and those the increment added.
	after, err := b.runDir("mirror-incr-after", bp, base)
	if err != nil {
		return r.fail(err)
	}
	defer os.RemoveAll(after)
	if _, err := b.ingestAndBronze(ctx, after, nil, "meters", more.path); err != nil {
		return r.fail(fmt.Errorf("increment: %w", err))
	}
	baseFiles, _, err := parquetFiles(filepath.Join(base, "lake", "bronze", "meters"))
	if err != nil {
		return r.fail(err)
	}
	afterFiles, _, err := parquetFiles(filepath.Join(after, "lake", "bronze", "meters"))
	if err != nil {
		return r.fail(err)
	}
	old := map[string]bool{}
	for _, f := range baseFiles {
		rel, _ := filepath.Rel(base, f)
		old[rel] = true
	}
	var newFiles []string
	for _, f := range afterFiles {
		if rel, _ := filepath.Rel(after, f); !old[rel] {
			newFiles = append(newFiles, f)
		}
	}
	if len(newFiles) == 0 {
		return r.fail(fmt.Errorf("the increment of %d rows added no bronze file", inc))
	}
	fullCSV, incCSV := filepath.Join(b.work, "ref", "mirror13-full.csv"), filepath.Join(b.work, "ref", "mirror13-inc.csv")
	os.MkdirAll(filepath.Dir(fullCSV), 0o755)
	defer os.Remove(fullCSV)
	defer os.Remove(incCSV)
	if _, err := b.reference(ctx, "mirror-export", b.rs, refExportCSV(baseFiles, fullCSV)); err != nil {
		return r.fail(err)
	}
	if _, err := b.reference(ctx, "mirror-export", b.rs, refExportCSV(newFiles, incCSV)); err != nil {
		return r.fail(err)
	}
	if fi, err := os.Stat(incCSV); err == nil {
		r.bytes = fi.Size()
	}
	r.extra = append(r.extra, keyValue{"new bronze files", fmt.Sprint(len(newFiles))})
	env := []string{"DATABASE_URL=" + b.cfg.databaseURL}
	err = b.alternate(r, func(i int) (sample, error) {
		s := fmt.Sprintf("%s_ours_%d", schema, i)
		if _, err := b.psql(ctx, "CREATE SCHEMA "+s); err != nil {
			return sample{}, err
		}
		defer b.psql(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
		mp := bp
		mp.mirrorTo = s + ".meters"
		dir, err := b.runDir("mirror-incr", mp, base)
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(dir)
		if _, _, err := b.medallion(ctx, dir, env, "run", "mirror"); err != nil {
			return sample{}, fmt.Errorf("first load: %w", err)
		}
		if _, err := b.ingestAndBronze(ctx, dir, nil, "meters", more.path); err != nil {
			return sample{}, fmt.Errorf("increment: %w", err)
		}
		smp, _, err := b.medallion(ctx, dir, env, "run", "mirror")
		return smp, err
	}, func(i int) (sample, error) {
		s := fmt.Sprintf("%s_ref_%d", schema, i)
		if _, err := b.psql(ctx, "CREATE SCHEMA "+s); err != nil {
			return sample{}, err
		}
		defer b.psql(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
		if _, err := b.psqlScript(ctx, "mirror13-load", mirrorLoadScript(s+".meters", fullCSV)); err != nil {
			return sample{}, fmt.Errorf("first load: %w", err)
		}
		return b.psqlScript(ctx, "mirror13-upsert", mirrorUpsertScript(s+".meters", incCSV))
	})
	return r.done(err)
}
