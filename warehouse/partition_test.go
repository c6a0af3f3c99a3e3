package warehouse

import (
	"testing"

	"github.com/medallion-dev/medallion/lake/delta"
)

func TestPartitionLiteral(t *testing.T) {
	str := delta.DataType{Name: delta.TypeString}
	ts := delta.DataType{Name: delta.TypeTimestamp}
	date := delta.DataType{Name: delta.TypeDate}
	legacyNull := delta.HiveNullPartition
	cases := []struct {
		pv   delta.PartitionValues
		typ  delta.DataType
		want string
	}{
		{delta.PartitionValues{"p": delta.PartitionValue("a/b")}, str, "'a/b'"},
		{delta.PartitionValues{"p": delta.PartitionValue("it's")}, str, "'it''s'"},
		{delta.PartitionValues{"p": delta.PartitionValue("50%25")}, str, "'50%25'"}, // a string is taken as it is
		{delta.PartitionValues{"p": nil}, str, "NULL"},
		{delta.PartitionValues{}, str, "NULL"},
		{delta.PartitionValues{"P": delta.PartitionValue("x")}, str, "'x'"},
		{delta.PartitionValues{"p": &legacyNull}, date, "NULL"},
		{delta.PartitionValues{"p": delta.PartitionValue("2024-01-01%2010%3A00%3A00%2B00")}, ts, "'2024-01-01 10:00:00+00'"},
		{delta.PartitionValues{"p": delta.PartitionValue("0045-03-15%20%28BC%29")}, date, "'0045-03-15 (BC)'"},
		{delta.PartitionValues{"p": delta.PartitionValue("-0044-03-15")}, date, "'-0044-03-15'"},
	}
	for _, c := range cases {
		if got := PartitionLiteral(c.pv, "p", c.typ); got != c.want {
			t.Errorf("PartitionLiteral(%v, %s) = %s, want %s", c.pv, c.typ.Name, got, c.want)
		}
	}
}
