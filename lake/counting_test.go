package lake_test

import (
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/lake"
)

// TestCount: the counting wrapper counts each kind of call and the keys
// listed, tells read keys apart, and stays a LocalPather over a local
// store (DuckDB reads local lakes in place through it).
func TestCount(t *testing.T) {
	ctx := t.Context()
	local, err := lake.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var c lake.Counts
	st := lake.Count(local, &c)
	if _, ok := st.(lake.LocalPather); !ok {
		t.Fatal("the wrapper of a local store is not a LocalPather")
	}
	for _, k := range []string{"t/_delta_log/0.json", "t/_delta_log/1.json", "t/a.parquet"} {
		if _, err := st.Put(ctx, k, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.List(ctx, "t/", ""); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"t/_delta_log/0.json", "t/_delta_log/0.json", "t/a.parquet"} {
		rc, _, err := st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	if _, err := st.Stat(ctx, "t/a.parquet"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "t/a.parquet"); err != nil {
		t.Fatal(err)
	}
	want := lake.CountsSummary{Lists: 1, Listed: 3, Gets: 3, Puts: 3, Stats: 1, Deletes: 1}
	if got := c.Summary(); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	if n := c.ReadKeys("t/_delta_log/", ".json"); n != 1 {
		t.Fatalf("ReadKeys: %d distinct commit files read, want 1", n)
	}
	c.Reset()
	if got := c.Summary(); got != (lake.CountsSummary{}) || c.ReadKeys("", "") != 0 {
		t.Fatalf("after Reset: %+v", got)
	}
}
