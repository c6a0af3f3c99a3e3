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

// runModel builds an analyst SQL model: see the package doc.
func (r *runner) runModel(ctx context.Context) (Stats, error) {
	sqlText := modelSQL(r.gold.SQL)
	if sqlText == "" {
		return Stats{}, fmt.Errorf("%s: sql is empty", r.ref)
	}
	refs, err := r.modelInputs()
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Table: r.ref, Kind: KindModel, Inputs: map[string]int64{}, Version: -1}
	ins := make([]*input, len(refs))
	for i, ref := range refs {
		if ins[i], err = r.openInput(ctx, ref); err != nil {
			return st, err
		}
		st.Inputs[ref.String()] = ins[i].snap.Version
	}
	names := make([]string, len(refs))
	for i, ref := range refs {
		names[i] = ref.String()
	}
	b, _ := json.Marshal(map[string]any{"layout": modelLayout, "sql": sqlText, "inputs": names})
	h := sha256.Sum256(b)
	def := hex.EncodeToString(h[:])

	gsnap, err := snapshotOrNil(ctx, r.tbl)
	if err != nil {
		return st, fmt.Errorf("%s: read table: %w", r.ref, err)
	}
	var reason string
	switch {
	case gsnap == nil:
		reason = "first build"
	case gsnap.Metadata.Configuration[confDefinition] != def:
		reason = "the model's SQL or inputs changed"
	default:
		st.Version = gsnap.Version
		var changed []string
		for _, in := range ins {
			v, ok := gsnap.TxnVersion(modelAppID(r.gold.Name, in.ref))
			switch {
			case !ok:
				changed = append(changed, in.ref.String()+" (new)")
			case v != in.snap.Version && !onlyCompacted(ctx, in.tbl, v, in.snap.Version):
				changed = append(changed, fmt.Sprintf("%s %d->%d", in.ref, v, in.snap.Version))
			}
		}
		if len(changed) == 0 {
			st.Mode, st.Reason = ModeSkipped, "no input changed"
			return st, nil
		}
		reason = "inputs changed: " + strings.Join(changed, ", ")
	}
	st.Mode, st.Reason = ModeFull, reason
	r.log.Debug("gold model", "mode", st.Mode, "reason", reason)

	if err := r.attachInputs(ctx, ins); err != nil {
		return st, err
	}
	out := r.tempTable("model")
	if err := r.exec(ctx, "CREATE TEMP TABLE "+out+" AS SELECT * FROM ("+sqlText+"\n) AS model"); err != nil {
		return st, fmt.Errorf("%s: run the model's sql: %w", r.ref, err)
	}
	cols, err := r.describe(ctx, "SELECT * FROM "+out)
	if err != nil {
		return st, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	seen := map[string]bool{}
	for _, c := range cols {
		if seen[strings.ToLower(c.Name)] {
			return st, fmt.Errorf("%s: the model's sql returns two columns named %q: alias one of them", r.ref, c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
	}
	schema, sel, err := schemaOf(cols)
	if err != nil {
		return st, fmt.Errorf("%s: output schema: %w", r.ref, err)
	}
	var n int64
	if err := r.conn.QueryRowContext(ctx, "SELECT count(*) FROM "+out).Scan(&n); err != nil {
		return st, fmt.Errorf("%s: count rows: %w", r.ref, err)
	}
	now := r.deps.Now()
	var adds []delta.Add
	if n > 0 {
		rel := fmt.Sprintf("part-%s.parquet", randid.Hex(8))
		local := filepath.Join(r.scratch, rel)
		q := "COPY (SELECT " + strings.Join(sel, ", ") + " FROM " + out + " ORDER BY ALL) TO " + warehouse.QuoteString(local) +
			" (FORMAT parquet, COMPRESSION zstd)"
		if err := r.exec(ctx, q); err != nil {
			return st, fmt.Errorf("%s: write: %w", r.ref, err)
		}
		up, err := r.upload(ctx, local, rel)
		if err != nil {
			return st, err
		}
		_ = os.Remove(local)
		adds = append(adds, delta.Add{Path: rel, Size: up.Size, ModificationTime: now.UnixMilli(), DataChange: true, Stats: fileStats(n),
			Tags: delta.WithSHA256(nil, up.SHA256)})
	}
	var removes []delta.Remove
	if gsnap != nil {
		for _, f := range gsnap.Files {
			removes = append(removes, f.Remove(now.UnixMilli(), true))
		}
	}
	txns := make([]delta.Txn, len(ins))
	var rowsIn int64
	for i, in := range ins {
		txns[i] = delta.Txn{AppID: modelAppID(r.gold.Name, in.ref), Version: in.snap.Version, LastUpdated: now.UnixMilli()}
		if k, ok := in.snap.NumRecords(); ok {
			rowsIn += k
		}
	}
	meta := delta.Metadata{
		SchemaString: schema.String(),
		Configuration: map[string]string{
			confDefinition: def,
			confKind:       string(KindModel),
			confLayout:     modelLayout,
			confSource:     strings.Join(names, ","),
		},
	}
	snap, err := r.commit(ctx, gsnap, meta, delta.Commit{
		Adds:    adds,
		Removes: removes,
		Txns:    txns,
		Info: delta.CommitInfo{
			Operation:           "CREATE OR REPLACE TABLE AS SELECT",
			OperationParameters: map[string]any{"gold": string(st.Mode), "inputs": strings.Join(names, ",")},
			OperationMetrics: map[string]string{
				"numFiles":        strconv.Itoa(len(adds)),
				"numAddedFiles":   strconv.Itoa(len(adds)),
				"numRemovedFiles": strconv.Itoa(len(removes)),
				"numOutputRows":   strconv.FormatInt(n, 10),
			},
			Medallion: map[string]any{"rows_in": rowsIn, "mode": string(st.Mode), "reason": reason, "input_versions": st.Inputs},
		},
	})
	if err != nil {
		return st, err
	}
	st.Version = snap.Version
	st.Buckets = 1
	st.FilesAdded, st.FilesRemoved = len(adds), len(removes)
	st.RowsWritten, st.RowsIn = n, rowsIn
	return st, nil
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
