package silver

import (
	"context"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// An aggregate over event_date, bronze's partition column kept in the log
// only, reads it through the join to the file list (the files lack it),
// and late rows still get their lineage: the two ways loadInput and
// loadLineage find the files' columns.
func TestPartitionColumnInAggregate(t *testing.T) {
	forEachStore(t, func(t *testing.T, store lake.Store) {
		cfg := silverCfg("p", 10*time.Second, 0, 5*time.Second, "append",
			mkAgg("n", "count", "*"), mkAgg("dated", "count_if", "event_date IS NOT NULL"))
		le := newLakeEnv(t, store, cfg)
		le.appendBronze(e("00:00:01", "a"), e("00:00:08", "a"))
		le.run("p")
		le.appendBronze(e("00:00:15", "a"))
		if st := le.run("p"); st.RowsOut != 1 {
			t.Fatalf("second run: %+v, want one window written", st)
		}
		le.appendBronze(e("00:00:09", "a"), e("00:00:10", "a"))
		if st := le.run("p"); st.LatePairs != 1 {
			t.Fatalf("third run: %+v, want one late pair", st)
		}
		diffLines(t, "silver.p", silverRows(t, store, "p"), []string{"00:00:00 00:00:10 a 2 2"})
		diffLines(t, "silver._late", lateRows(t, store),
			[]string{`silver.p 00:00:09 00:00:00 00:00:10 00:00:10 1000 0 {"meter_id":"a"} 00000000000000000003`})
	})
}

// dropTemps drops every temporary table and view in its one call.
func TestDropTemps(t *testing.T) {
	ctx := context.Background()
	conn, err := openEngine(t).DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	j := &job{conn: conn}
	for _, tv := range []struct{ kind, name string }{{"VIEW", "s_a"}, {"TABLE", "s_b"}, {"VIEW", "s_c"}} {
		if err := j.temp(ctx, "make "+tv.name, tv.kind, tv.name, "SELECT 1 AS x"); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n int) {
		q := "SELECT (SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('s_a', 's_b', 's_c')) + (SELECT count(*) FROM duckdb_views() WHERE view_name IN ('s_a', 's_b', 's_c'))"
		if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 3 {
		t.Fatalf("%d temporary tables and views before dropTemps, want 3", n)
	}
	j.dropTemps(ctx)
	if n := count(); n != 0 || j.temps != nil {
		t.Fatalf("%d temporary tables and views after dropTemps (temps %v), want none", n, j.temps)
	}
}
