package layers

import (
	"testing"

	"github.com/medallion-dev/medallion/lake/delta"
)

func TestDiffColumns(t *testing.T) {
	f := func(name, typ string) delta.Field {
		return delta.Field{Name: name, Type: delta.Primitive(typ), Nullable: true}
	}
	have := &delta.Schema{Fields: []delta.Field{f("id", "string"), f("voltage", "double"), f("n", "long"), f("gone", "date")}}
	want := &delta.Schema{Fields: []delta.Field{f("ID", "string"), f("volts", "double"), f("n", "double"), f("pf", "double")}}
	got := DescribeChanges(DiffColumns(have, want, map[string]string{"volts": "voltage"}))
	if w := "renamed voltage -> volts; retyped column n long -> double; added column pf double; removed column gone date"; got != w {
		t.Errorf("changes:\n got %s\nwant %s", got, w)
	}
	// Without renamed_from, a rename is a removal and an addition.
	got = DescribeChanges(DiffColumns(have, want, nil))
	if w := "added column volts double; retyped column n long -> double; added column pf double; removed column voltage double; removed column gone date"; got != w {
		t.Errorf("changes without renamed_from:\n got %s\nwant %s", got, w)
	}
	// A rename already applied (the table has the new name) is no change.
	if cs := DiffColumns(want, want, map[string]string{"volts": "voltage"}); len(cs) != 0 {
		t.Errorf("same schema: %v", cs)
	}
}
