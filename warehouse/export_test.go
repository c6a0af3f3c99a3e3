package warehouse

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake/delta"
)

// TestReadFile reads a file that lacks a column the table has now, with a
// partition column from the file's partition values, a decimal, a struct
// and row positions.
func TestReadFile(t *testing.T) {
	ctx := context.Background()
	eng, err := Open(ctx, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	path := filepath.Join(t.TempDir(), "part.parquet")
	q := `COPY (SELECT i AS id, CAST(i / 4 AS DECIMAL(10,2)) AS amount, {'a': i, 'B': 'x'} AS "Nested"
		FROM range(3000) t(i)) TO '` + path + `' (FORMAT parquet, ROW_GROUP_SIZE 1000)`
	if _, err := eng.DB().ExecContext(ctx, q); err != nil {
		t.Fatal(err)
	}
	nested := delta.DataType{Name: "struct", Fields: []delta.Field{{Name: "a", Type: delta.Primitive("long")}, {Name: "B", Type: delta.Primitive("string")}}}
	schema := &delta.Schema{Fields: []delta.Field{
		{Name: "id", Type: delta.Primitive("long")},
		{Name: "amount", Type: delta.Primitive("decimal(10,2)")},
		{Name: "Nested", Type: nested},
		{Name: "added later", Type: delta.Primitive("integer")},
		{Name: "day", Type: delta.Primitive("date")},
	}}
	fr, err := eng.ReadFile(ctx, FileSpec{
		Schema: schema, PartitionColumns: []string{"day"}, Path: path,
		File: delta.Add{Path: "day=2024-05-01/part.parquet", PartitionValues: delta.PartitionStrings(map[string]string{"day": "2024-05-01"})},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	n := 0
	seen := make(map[int64]bool)
	for fr.Next() {
		v := fr.Values()
		id := v[0].(int64)
		if fr.Position() != id || seen[id] {
			t.Fatalf("row %d at position %d", id, fr.Position())
		}
		seen[id] = true
		if id == 5 {
			want := fmt.Sprint([]any{int64(5), "1.25", `{"a":5,"B":"x"}`, nil, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)})
			if got := fmt.Sprint(v); got != want {
				t.Errorf("row 5: %s, want %s", got, want)
			}
		}
		n++
	}
	if err := fr.Err(); err != nil || n != 3000 {
		t.Fatalf("%d rows, %v", n, err)
	}

	// Only the key columns.
	keys, err := eng.ReadFile(ctx, FileSpec{Schema: schema, PartitionColumns: []string{"day"}, Path: path, Columns: []string{"day", "id"},
		File: delta.Add{PartitionValues: delta.PartitionStrings(map[string]string{"day": ""})}})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	if !keys.Next() || len(keys.Values()) != 2 || keys.Values()[0] != nil {
		t.Fatalf("key columns: %v %v", keys.Values(), keys.Err())
	}
}
