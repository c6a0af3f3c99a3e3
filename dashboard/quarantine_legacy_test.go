package dashboard

import (
	"context"
	"net/url"
	"testing"

	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
)

// TestQuarantineColumnName: a new lake's quarantine names the refused
// column column_name (no quotes needed); a quarantine table made before
// the rename keeps "column", goes on taking rows, and the page's column
// filter works on both.
func TestQuarantineColumnName(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		f := newFixture(t)
		ref := layers.Quarantine()
		tbl := delta.Open(f.store, ref.Dir())
		want := bronze.QuarantineColumn
		if legacy {
			want = bronze.LegacyQuarantineColumn
			str := func(n string) delta.Field {
				return delta.Field{Name: n, Type: delta.Primitive(delta.TypeString), Nullable: true}
			}
			schema := &delta.Schema{Fields: []delta.Field{str("source"), str("source_file"),
				{Name: "line", Type: delta.Primitive(delta.TypeLong), Nullable: true}, str("column"), str("reason"), str("raw"), str("batch_id"),
				{Name: "quarantined_at", Type: delta.Primitive(delta.TypeTimestamp), Nullable: true}}}
			if _, err := tbl.Create(context.Background(), delta.Metadata{Name: "_quarantine", SchemaString: schema.String(), PartitionColumns: []string{"source"}}, delta.CommitInfo{}); err != nil {
				t.Fatal(err)
			}
		}
		f.deliver(t)
		f.deliver(t)
		snap, err := tbl.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s, err := snap.Schema()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Field(want); !ok || quarantineColumn(s) != want {
			t.Fatalf("legacy %v: quarantine schema %s, want a %q column", legacy, s, want)
		}
		d := newDashboard(t, f, "")
		var pg struct{ Filter quarantineFilter }
		mustJSON(t, get(t, d, "/api/tables/bronze._quarantine").body, &pg)
		if len(pg.Filter.Columns) == 0 {
			t.Fatalf("legacy %v: no column choices: %+v", legacy, pg.Filter)
		}
		c := pg.Filter.Columns[0]
		n := f.count(t, ref, `SELECT count(*) FROM bronze._quarantine WHERE "`+want+`" = '`+c+`'`)
		mustJSON(t, get(t, d, "/api/tables/bronze._quarantine?column="+url.QueryEscape(c)).body, &pg)
		if n == 0 || pg.Filter.Matches != n {
			t.Errorf("legacy %v: column %q: %d matches, DuckDB counts %d", legacy, c, pg.Filter.Matches, n)
		}
		if body := get(t, d, "/quality").body; len(body) == 0 {
			t.Errorf("legacy %v: empty quality page", legacy)
		}
	}
}
