package bronze

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// MigrateQuarantine renames the legacy "column" column of bronze._quarantine
// to column_name (and adds the replay columns) by rewriting every file of
// the table in one commit: readers see the old table or the new one. It
// reports whether it changed anything (false: no table, or already
// renamed). Bronze runs must not write the quarantine meanwhile: a file
// they wrote with the old name and committed after the rename would read
// NULL for it (the CLI holds every bronze table's lease around it).
func MigrateQuarantine(ctx context.Context, d Deps) (bool, error) {
	if d.Store == nil || d.DB == nil {
		return false, errors.New("bronze: missing store or database")
	}
	d.Env = d.WithDefaults()
	if d.ScratchDir == "" {
		d.ScratchDir = os.TempDir()
	}
	opts, err := d.tableOptions()
	if err != nil {
		return false, err
	}
	qtable, _ := delta.OpenWith(d.Store, layers.Quarantine().Dir(), opts)
	j := &job{d: d, qtable: qtable, log: d.Log.With("table", layers.Quarantine().String()), cacheDir: filepath.Join(d.ScratchDir, "medallion-bronze-cache")}
	if d.Cache != nil && d.Cache.Dir != "" {
		j.cacheDir = d.Cache.Dir
	}
	conn, err := d.DB.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate bronze._quarantine: duckdb connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
		return false, fmt.Errorf("migrate bronze._quarantine: %w", err)
	}
	dir, err := os.MkdirTemp(d.ScratchDir, "bronze-migrate-")
	if err != nil {
		return false, fmt.Errorf("migrate bronze._quarantine: scratch dir: %w", err)
	}
	defer os.RemoveAll(dir)
	for attempt := 1; ; attempt++ {
		qsnap, err := layers.SnapshotOrNil(ctx, qtable)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", qtable.Dir(), err)
		}
		legacy := legacyQuarantine(qsnap)
		if legacy == nil {
			return false, nil
		}
		schema := &delta.Schema{}
		for _, f := range legacy.Fields {
			if f.Name == LegacyQuarantineColumn {
				f.Name = QuarantineColumn
			}
			schema.Fields = append(schema.Fields, f)
		}
		snapWith := *qsnap
		m := qsnap.Metadata
		m.SchemaString = schema.String()
		snapWith.Metadata = m
		if schema, _, err = replaySchema(&snapWith); err != nil {
			return false, err
		}
		m.SchemaString = schema.String()

		var locals []string
		var removes []delta.Remove
		ts := j.d.Now().UnixMilli()
		for _, f := range qsnap.Files {
			p, err := j.existingFile(ctx, qtable.Key(f.Path))
			if err != nil {
				return false, fmt.Errorf("read %s: %w", qtable.Dir(), err)
			}
			if err := delta.CheckLocalFile("bronze._quarantine", qsnap.Version, f, p); err != nil {
				return false, err
			}
			locals = append(locals, p)
			removes = append(removes, f.Remove(ts, true))
		}
		var adds []delta.Add
		out := filepath.Join(dir, fmt.Sprintf("v%d", qsnap.Version))
		if len(locals) > 0 {
			// The partition value is in each file's path (hive layout).
			sel := "SELECT source, source_file, line, COALESCE(column_name, \"column\") AS " + warehouse.QuoteIdent(QuarantineColumn) +
				", reason, raw, batch_id, quarantined_at, replayed_at, replay_batch FROM (" +
				"SELECT CAST(NULL AS VARCHAR) AS source, CAST(NULL AS VARCHAR) AS source_file, CAST(NULL AS BIGINT) AS line, CAST(NULL AS VARCHAR) AS column_name, " +
				"CAST(NULL AS VARCHAR) AS \"column\", CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS VARCHAR) AS raw, CAST(NULL AS VARCHAR) AS batch_id, " +
				"CAST(NULL AS TIMESTAMPTZ) AS quarantined_at, CAST(NULL AS TIMESTAMPTZ) AS replayed_at, CAST(NULL AS VARCHAR) AS replay_batch WHERE false " +
				"UNION ALL BY NAME SELECT * FROM read_parquet(" + fileList(locals) + ", union_by_name = true, hive_partitioning = true, hive_types = {'source': 'VARCHAR'}))"
			if adds, err = j.writeParquet(ctx, conn, sel, out, "source", schema); err != nil {
				return false, fmt.Errorf("migrate bronze._quarantine: %w", err)
			}
			want, _ := delta.NumRecords(qsnap.Files)
			if got := addedRows(adds); got != want {
				return false, fmt.Errorf("migrate bronze._quarantine: wrote %d rows of %d (a bug)", got, want)
			}
			if err := j.upload(ctx, qtable.Dir(), out, adds); err != nil {
				return false, err
			}
		}
		_, err = qtable.Commit(ctx, qsnap, delta.Commit{Adds: adds, Removes: removes, Metadata: &m,
			Info: delta.CommitInfo{Operation: "RENAME COLUMN", OperationParameters: map[string]any{"oldColumnPath": LegacyQuarantineColumn, "newColumnPath": QuarantineColumn},
				Medallion: map[string]any{"job": "replay-migrate"}}})
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, delta.ErrCommitConflict) || attempt >= layers.MaxCommitAttempts {
			return false, fmt.Errorf("commit %s: %w", qtable.Dir(), err)
		}
	}
}
