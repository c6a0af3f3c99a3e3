package main

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

// TestServeMaintenance: `medallion serve` in stream mode runs the
// maintenance pass every maintenance.every: the small files the
// micro-batches write get compacted (an OPTIMIZE commit in bronze's
// history) while ingest goes on, and every acknowledged row is in bronze
// once, with PostgreSQL equal to the lake.
func TestServeMaintenance(t *testing.T) {
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "serve_maint")
	l := newTestLake(t, "local")
	l.writePipeline(t, `postgres: "`+dsn+`"`+"\n"+strings.ReplaceAll(servePipeline, "{schema}", schema)+
		"maintenance:\n  every: 2s\n  optimize_min_files: 3\n")
	srv := startServe(t, l)
	id := 0
	postBatch := func() {
		t.Helper()
		if n := post(srv.base, id, 10); n != 10 {
			t.Fatalf("post %d: %d rows acknowledged", id, n)
		}
		id += 10
	}
	for range 4 {
		postBatch()
		time.Sleep(700 * time.Millisecond) // a micro-batch each: one small file each
	}
	waitFor(t, "an OPTIMIZE commit in bronze.meters", func() bool {
		return strings.Contains(l.run(t, "history", "bronze.meters"), "OPTIMIZE")
	})
	for range 3 {
		postBatch()
		time.Sleep(700 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.out)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}
	if !strings.Contains(srv.out.String(), "maintenance: compaction and retention every 2s") {
		t.Errorf("serve did not say it runs maintenance:\n%s", srv.out)
	}
	l.run(t, "run")
	lines := strings.Split(strings.TrimSpace(l.query(t, "SELECT id FROM bronze.meters ORDER BY id")), "\n")[1:]
	if len(lines) != id {
		t.Fatalf("bronze holds %d rows, %d were acknowledged", len(lines), id)
	}
	for i, line := range lines {
		if line != strconv.Itoa(i) {
			t.Fatalf("bronze row %d is id %s, want %d", i, line, i)
		}
	}
	pgmirrortest.AssertEqual(t, l.store, warehouse.TableRef{Schema: "gold", Name: "usage_ma"}, warehouse.Latest(), conn, schema, "usage_ma")
}
