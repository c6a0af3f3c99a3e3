package delta_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// awkwardPartitions are string partition values that need escaping in a
// directory name, with the null partition.
var awkwardPartitions = []*string{
	delta.PartitionValue("a/b"), delta.PartitionValue("x=y"), delta.PartitionValue("50%"),
	delta.PartitionValue("a b"), delta.PartitionValue("é"), delta.PartitionValue("a%2Fb"), nil,
}

const partSchema = `{"type":"struct","fields":[{"name":"id","type":"long","nullable":false,"metadata":{}},{"name":"p","type":"string","nullable":true,"metadata":{}}]}`

// TestPartitionValuesProtocol: the log holds partition values raw (not
// escaped) and null as JSON null, and a checkpoint keeps both, as the
// protocol's "Partition Value Serialization" says.
func TestPartitionValuesProtocol(t *testing.T) {
	st, err := lake.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tbl := delta.Open(st, "bronze/parts")
	s, err := tbl.Create(ctx, delta.Metadata{Name: "parts", SchemaString: partSchema, PartitionColumns: []string{"p"}}, delta.CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	var adds []delta.Add
	for i, v := range awkwardPartitions {
		a := putFile(t, st, tbl, "f"+string(rune('0'+i))+".parquet")
		a.PartitionValues = delta.PartitionValues{"p": v}
		adds = append(adds, a)
	}
	if s, err = tbl.Commit(ctx, s, delta.Commit{Adds: adds}); err != nil {
		t.Fatal(err)
	}

	// The commit file: raw values, null as null.
	raw, err := readObject(t, st, "bronze/parts/_delta_log/00000000000000000001.json")
	if err != nil {
		t.Fatal(err)
	}
	var got []any
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var m map[string]map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if a, ok := m["add"]; ok {
			pv := a["partitionValues"].(map[string]any)
			v, present := pv["p"]
			if !present {
				t.Errorf("add %v: partitionValues has no p", a["path"])
			}
			got = append(got, v)
		}
	}
	want := []any{"a/b", "x=y", "50%", "a b", "é", "a%2Fb", nil}
	if len(got) != len(want) {
		t.Fatalf("partition values in the log: %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("partition value %d in the log = %#v, want %#v", i, got[i], want[i])
		}
	}

	// Replay and checkpoint read the same values.
	check := func(name string, s *delta.Snapshot) {
		t.Helper()
		byPath := map[string]delta.Add{}
		for _, f := range s.Files {
			byPath[f.Path] = f
		}
		for i, a := range adds {
			f := byPath[a.Path]
			v, ok := f.PartitionValues.Value("p")
			wantV, wantOK := "", awkwardPartitions[i] != nil
			if wantOK {
				wantV = *awkwardPartitions[i]
			}
			if v != wantV || ok != wantOK {
				t.Errorf("%s: %s partition p = %q, %v; want %q, %v", name, a.Path, v, ok, wantV, wantOK)
			}
			if p, present := f.PartitionValues["p"]; !present || (p == nil) != !wantOK {
				t.Errorf("%s: %s partitionValues %v: want p present, null=%v", name, a.Path, f.PartitionValues, !wantOK)
			}
		}
	}
	fresh, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("replay", fresh)
	if err := tbl.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	fromCP, err := delta.Open(st, "bronze/parts").Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("checkpoint", fromCP)

	// The checkpoint's partitionValues map has optional values, as Spark
	// writes it (map<string,string> with valueContainsNull).
	cp, err := readObject(t, st, "bronze/parts/_delta_log/00000000000000000001.checkpoint.parquet")
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(strings.NewReader(string(cp)), int64(len(cp)))
	if err != nil {
		t.Fatal(err)
	}
	schema := pf.Schema().String()
	if !strings.Contains(schema, "optional binary value (STRING)") {
		t.Errorf("checkpoint partitionValues values are not optional:\n%s", schema)
	}
}

// TestLegacyNullPartition: tables medallion wrote before partition values
// followed the protocol hold "__HIVE_DEFAULT_PARTITION__" for null; they
// read as null, from the log and from a checkpoint written after.
func TestLegacyNullPartition(t *testing.T) {
	st, err := lake.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tbl := delta.Open(st, "bronze/legacy")
	s, err := tbl.Create(ctx, delta.Metadata{Name: "legacy", SchemaString: partSchema, PartitionColumns: []string{"p"}}, delta.CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	line := `{"add":{"path":"p=__HIVE_DEFAULT_PARTITION__/a.parquet","partitionValues":{"p":"__HIVE_DEFAULT_PARTITION__"},"size":1,"modificationTime":1,"dataChange":true}}` + "\n"
	if _, err := st.PutIfAbsent(ctx, "bronze/legacy/_delta_log/00000000000000000001.json", strings.NewReader(line), int64(len(line))); err != nil {
		t.Fatal(err)
	}
	s, err = tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"log", "checkpoint"} {
		if name == "checkpoint" {
			if err := tbl.Checkpoint(ctx, s); err != nil {
				t.Fatal(err)
			}
			if s, err = delta.Open(st, "bronze/legacy").Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if len(s.Files) != 1 {
			t.Fatalf("%s: %d files", name, len(s.Files))
		}
		pv := s.Files[0].PartitionValues
		if v, ok := pv.Value("p"); ok {
			t.Errorf("%s: legacy null partition reads as %q, want null", name, v)
		}
		if p, present := pv["p"]; !present || p != nil {
			t.Errorf("%s: partitionValues %v, want p: null", name, pv)
		}
	}
}

func TestParseHivePartition(t *testing.T) {
	cases := []struct {
		seg  string
		col  string
		val  *string
		part bool
	}{
		{"p=a%2Fb", "p", delta.PartitionValue("a/b"), true},
		{"p=x%3Dy", "p", delta.PartitionValue("x=y"), true},
		{"p=50%25", "p", delta.PartitionValue("50%"), true},
		{"p=a%20b", "p", delta.PartitionValue("a b"), true},
		{"p=a b", "p", delta.PartitionValue("a b"), true}, // Spark leaves spaces alone
		{"p=%C3%A9", "p", delta.PartitionValue("é"), true},
		{"p=é", "p", delta.PartitionValue("é"), true},
		{"p=a+b", "p", delta.PartitionValue("a+b"), true},
		{"p=__HIVE_DEFAULT_PARTITION__", "p", nil, true},
		{"p=", "p", nil, true},
		{"part-1.parquet", "", nil, false},
	}
	for _, c := range cases {
		col, val, ok, err := delta.ParseHivePartition(c.seg)
		if err != nil {
			t.Errorf("%s: %v", c.seg, err)
			continue
		}
		if col != c.col || ok != c.part || (val == nil) != (c.val == nil) || (val != nil && *val != *c.val) {
			t.Errorf("%s = %q, %v, %v", c.seg, col, deref(val), ok)
		}
	}
	if _, _, _, err := delta.ParseHivePartition("p=%zz"); err == nil {
		t.Error("p=%zz: want an error")
	}
}

func readObject(t *testing.T, st lake.Store, key string) ([]byte, error) {
	rc, _, err := st.Get(t.Context(), key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func deref(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}
