package delta

import (
	"bytes"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestCheckpointRequiredPartitionValues: checkpoints written before
// partition values could be null have a required map value; they still
// read, with the legacy null partition read as null.
func TestCheckpointRequiredPartitionValues(t *testing.T) {
	type oldAdd struct {
		Path            *string           `parquet:"path,optional"`
		PartitionValues map[string]string `parquet:"partitionValues,optional"`
		Size            *int64            `parquet:"size,optional"`
	}
	type oldRow struct {
		Add *oldAdd `parquet:"add,optional"`
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[oldRow](&buf)
	rows := []oldRow{
		{Add: &oldAdd{Path: ptr("p=a%252Fb/x.parquet"), PartitionValues: map[string]string{"p": "a/b"}, Size: ptr(int64(3))}},
		{Add: &oldAdd{Path: ptr("p=__HIVE_DEFAULT_PARTITION__/y.parquet"), PartitionValues: map[string]string{"p": HiveNullPartition}, Size: ptr(int64(4))}},
	}
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []Add
	err := readCheckpointRows(buf.Bytes(), partAll, func(a action) {
		if a.Add != nil {
			got = append(got, *a.Add)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d adds, want 2", len(got))
	}
	if v, ok := got[0].PartitionValues.Value("p"); !ok || v != "a/b" || got[0].Path != "p=a%2Fb/x.parquet" {
		t.Errorf("first add: %s %q %v", got[0].Path, v, ok)
	}
	if p, present := got[1].PartitionValues["p"]; !present || p != nil {
		t.Errorf("second add: partitionValues %v, want p: null", got[1].PartitionValues)
	}
}
