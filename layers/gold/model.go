package gold

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/medallion-dev/medallion/internal/randid"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// modelLayout names how models are built and written; changing it rebuilds
// existing models.
const modelLayout = "gold-sql-v1"

// modelSQL is the model's SELECT without surrounding space and trailing
// semicolons.
func modelSQL(s string) string {
	s = strings.TrimSpace(s)
	for strings.HasSuffix(s, ";") {
		s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
	}
	return s
}

// modelInputs lists the tables a model reads, sorted: the loader's
// DependsOn, or the layer.table names found in the SQL (config.TableRefs).
func (r *runner) modelInputs() ([]layers.TableRef, error) {
	names := r.gold.DependsOn
	if len(names) == 0 {
		names = config.TableRefs(r.gold.SQL)
	}
	seen := map[string]bool{}
	var refs []layers.TableRef
	for _, n := range names {
		ref, err := layers.ParseTableRef(n, "")
		if err != nil {
			return nil, fmt.Errorf("%s: sql reads %w", r.ref, err)
		}
		if ref == r.ref {
			return nil, fmt.Errorf("%s: sql reads the table it builds", r.ref)
		}
		if !seen[ref.String()] {
			seen[ref.String()] = true
			refs = append(refs, ref)
		}
	}
	slices.SortFunc(refs, func(a, b layers.TableRef) int { return strings.Compare(a.String(), b.String()) })
	return refs, nil
}

// modelAppID is the txn appId recording the version of input ref a model
// was built from.
func modelAppID(name string, ref layers.TableRef) string { return "gold/" + name + "/" + ref.String() }

// modelRun is one run of an SQL model as it moves through its steps.
type modelRun struct {
	sql   string
	ins   []*input
	names []string // the inputs' names
	def   string   // the definition recorded in the table's configuration
	gsnap *delta.Snapshot
	st    Stats
}

// runModel builds an analyst SQL model: see the package doc.
func (r *runner) runModel(ctx context.Context) (Stats, error) {
	m, err := r.openModel(ctx)
	if err != nil {
		return m.st, err
	}
	if r.modelUpToDate(ctx, m) {
		return m.st, nil
	}
	r.log.Debug("gold model", "mode", m.st.Mode, "reason", m.st.Reason)
	if err := r.attachInputs(ctx, m.ins); err != nil {
		return m.st, err
	}
	out, schema, sel, n, err := r.modelOutput(ctx, m.sql)
	if err != nil {
		return m.st, err
	}
	adds, err := r.writeModelFile(ctx, out, sel, n)
	if err != nil {
		return m.st, err
	}
	return m.st, r.commitModel(ctx, m, schema, adds, n)
}

// openModel opens the model's inputs and reads the table's snapshot.
func (r *runner) openModel(ctx context.Context) (*modelRun, error) {
	m := &modelRun{sql: modelSQL(r.gold.SQL), st: Stats{Table: r.ref, Kind: KindModel, Inputs: map[string]int64{}, Version: -1}}
	if m.sql == "" {
		return m, fmt.Errorf("%s: sql is empty", r.ref)
	}
	refs, err := r.modelInputs()
	if err != nil {
		return m, err
	}
	m.ins = make([]*input, len(refs))
	m.names = make([]string, len(refs))
	for i, ref := range refs {
		if m.ins[i], err = r.openInput(ctx, ref); err != nil {
			return m, err
		}
		m.st.Inputs[ref.String()] = m.ins[i].snap.Version
		m.names[i] = ref.String()
	}
	b, _ := json.Marshal(map[string]any{"layout": modelLayout, "sql": m.sql, "inputs": m.names})
	h := sha256.Sum256(b)
	m.def = hex.EncodeToString(h[:])
	if m.gsnap, err = layers.SnapshotOrNil(ctx, r.tbl); err != nil {
		return m, fmt.Errorf("%s: read table: %w", r.ref, err)
	}
	return m, nil
}

// modelUpToDate reports whether the table was built from the inputs as
// they are; otherwise it sets the reason for a full rebuild in m.st.
func (r *runner) modelUpToDate(ctx context.Context, m *modelRun) bool {
	var reason string
	switch {
	case m.gsnap == nil:
		reason = "first build"
	case r.deps.refresh:
		reason = "refresh"
	case m.gsnap.Metadata.Configuration[confDefinition] != m.def:
		reason = "the model's SQL or inputs changed"
	default:
		m.st.Version = m.gsnap.Version
		var changed []string
		for _, in := range m.ins {
			v, ok := m.gsnap.TxnVersion(modelAppID(r.gold.Name, in.ref))
			switch {
			case !ok:
				changed = append(changed, in.ref.String()+" (new)")
			case v != in.snap.Version && !onlyCompacted(ctx, in.tbl, v, in.snap.Version):
				changed = append(changed, fmt.Sprintf("%s %d->%d", in.ref, v, in.snap.Version))
			}
		}
		if len(changed) == 0 {
			m.st.Mode, m.st.Reason = ModeSkipped, "no input changed"
			return true
		}
		reason = "inputs changed: " + strings.Join(changed, ", ")
	}
	m.st.Mode, m.st.Reason = ModeFull, reason
	return false
}

// modelOutput runs the model's SQL into a temporary table and returns it
// with its schema, the select list that writes it and its row count.
func (r *runner) modelOutput(ctx context.Context, sqlText string) (out string, schema *delta.Schema, sel []string, n int64, err error) {
	out = r.tempTable("model")
	if err := r.exec(ctx, "CREATE TEMP TABLE "+out+" AS SELECT * FROM ("+sqlText+"\n) AS model"); err != nil {
		return "", nil, nil, 0, fmt.Errorf("%s: run the model's sql: %w", r.ref, err)
	}
	cols, err := r.describe(ctx, "SELECT * FROM "+out)
	if err != nil {
		return "", nil, nil, 0, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	seen := map[string]bool{}
	for _, c := range cols {
		if seen[strings.ToLower(c.Name)] {
			return "", nil, nil, 0, fmt.Errorf("%s: the model's sql returns two columns named %q: alias one of them", r.ref, c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
	}
	if schema, sel, err = schemaOf(cols); err != nil {
		return "", nil, nil, 0, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	if err := r.conn.QueryRowContext(ctx, "SELECT count(*) FROM "+out).Scan(&n); err != nil {
		return "", nil, nil, 0, fmt.Errorf("%s: count rows: %w", r.ref, err)
	}
	return out, schema, sel, n, nil
}

// writeModelFile writes the n rows of out to one file and uploads it; no
// rows: no file.
func (r *runner) writeModelFile(ctx context.Context, out string, sel []string, n int64) ([]delta.Add, error) {
	if n == 0 {
		return nil, nil
	}
	rel := fmt.Sprintf("part-%s.parquet", randid.Hex(8))
	local := filepath.Join(r.scratch, rel)
	q := "COPY (SELECT " + strings.Join(sel, ", ") + " FROM " + out + " ORDER BY ALL) TO " + warehouse.QuoteString(local) +
		" (FORMAT parquet, COMPRESSION zstd)"
	if err := r.exec(ctx, q); err != nil {
		return nil, fmt.Errorf("%s: write: %w", r.ref, err)
	}
	up, err := r.upload(ctx, local, rel)
	if err != nil {
		return nil, err
	}
	_ = os.Remove(local)
	return []delta.Add{{Path: rel, Size: up.Size, ModificationTime: r.deps.Now().UnixMilli(), DataChange: true, Stats: fileStats(n),
		Tags: delta.WithSHA256(nil, up.SHA256)}}, nil
}

// commitModel replaces the table's files with adds, recording the input
// versions read, and fills m.st.
func (r *runner) commitModel(ctx context.Context, m *modelRun, schema *delta.Schema, adds []delta.Add, n int64) error {
	now := r.deps.Now().UnixMilli()
	var removes []delta.Remove
	if m.gsnap != nil {
		for _, f := range m.gsnap.Files {
			removes = append(removes, f.Remove(now, true))
		}
	}
	txns := make([]delta.Txn, len(m.ins))
	var rowsIn int64
	for i, in := range m.ins {
		txns[i] = delta.Txn{AppID: modelAppID(r.gold.Name, in.ref), Version: in.snap.Version, LastUpdated: now}
		if k, ok := in.snap.NumRecords(); ok {
			rowsIn += k
		}
	}
	meta := delta.Metadata{
		SchemaString: schema.String(),
		Configuration: map[string]string{
			confDefinition: m.def,
			confKind:       string(KindModel),
			confLayout:     modelLayout,
			confSource:     strings.Join(m.names, ","),
		},
	}
	st := &m.st
	params := map[string]any{"gold": string(st.Mode), "inputs": strings.Join(m.names, ",")}
	if r.deps.refresh {
		params["range"] = "full"
	}
	snap, err := r.commit(ctx, m.gsnap, meta, delta.Commit{
		Adds:    adds,
		Removes: removes,
		Txns:    txns,
		Info: delta.CommitInfo{
			Operation:           map[bool]string{false: "CREATE OR REPLACE TABLE AS SELECT", true: opRefresh}[r.deps.refresh],
			OperationParameters: params,
			OperationMetrics: map[string]string{
				"numFiles":        strconv.Itoa(len(adds)),
				"numAddedFiles":   strconv.Itoa(len(adds)),
				"numRemovedFiles": strconv.Itoa(len(removes)),
				"numOutputRows":   strconv.FormatInt(n, 10),
			},
			Medallion: map[string]any{"rows_in": rowsIn, "mode": string(st.Mode), "reason": st.Reason, "input_versions": st.Inputs},
		},
	})
	if err != nil {
		return err
	}
	st.Version = snap.Version
	st.Buckets = 1
	st.FilesAdded, st.FilesRemoved = len(adds), len(removes)
	st.RowsWritten, st.RowsIn = n, rowsIn
	return nil
}

// attachInputs makes the model's inputs queryable by name: through
// Deps.Attach, or as views over exactly the snapshots in ins, in a private
// in-memory database that this connection USEs until the run ends.
func (r *runner) attachInputs(ctx context.Context, ins []*input) error {
	if r.deps.Attach != nil {
		refs := make([]layers.TableRef, len(ins))
		for i, in := range ins {
			refs[i] = in.ref
		}
		if err := r.deps.Attach(ctx, refs); err != nil {
			return fmt.Errorf("%s: attach inputs: %w", r.ref, err)
		}
		return nil
	}
	var cur string
	if err := r.conn.QueryRowContext(ctx, "SELECT current_database()").Scan(&cur); err != nil {
		return fmt.Errorf("%s: current database: %w", r.ref, err)
	}
	db := "__gold_" + r.gold.Name + "_" + r.id
	if err := r.exec(ctx, "ATTACH ':memory:' AS "+warehouse.QuoteIdent(db)); err != nil {
		return fmt.Errorf("%s: attach inputs: %w", r.ref, err)
	}
	r.attached = db
	schemas := map[layers.Layer]bool{}
	for _, in := range ins {
		if !schemas[in.ref.Layer] {
			if err := r.exec(ctx, "CREATE SCHEMA "+warehouse.QuoteIdent(db)+"."+warehouse.QuoteIdent(string(in.ref.Layer))); err != nil {
				return fmt.Errorf("%s: attach inputs: %w", r.ref, err)
			}
			schemas[in.ref.Layer] = true
		}
		rel, err := r.relation(ctx, in, in.snap.Files)
		if err != nil {
			return err
		}
		q := "CREATE VIEW " + warehouse.QuoteIdent(db) + "." + warehouse.QuoteIdent(string(in.ref.Layer)) + "." + warehouse.QuoteIdent(in.ref.Name) + " AS " + rel
		if err := r.exec(ctx, q); err != nil {
			return fmt.Errorf("%s: view over %s: %w", r.ref, in.ref, err)
		}
	}
	if err := r.exec(ctx, "USE "+warehouse.QuoteIdent(db)); err != nil {
		return fmt.Errorf("%s: attach inputs: %w", r.ref, err)
	}
	r.restore = cur
	return nil
}

// onlyCompacted says the commits of tbl after version from up to to
// changed no rows: only compactions (`medallion optimize`, dataChange
// false), so a model computed from version from is still current. Any
// doubt (a range that cannot be read) says no.
func onlyCompacted(ctx context.Context, tbl *delta.Table, from, to int64) bool {
	if from >= to {
		return false
	}
	ch, err := tbl.Changes(ctx, from, to)
	return err == nil && len(ch.Added) == 0 && len(ch.Removed) == 0 && !ch.MetadataChanged
}
