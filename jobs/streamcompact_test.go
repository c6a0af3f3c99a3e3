package jobs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/medallion-dev/medallion/layers"
)

// TestWrittenTables: the tables stream mode looks at after a micro-batch
// are those whose job read rows, with bronze's quarantine and silver's
// _late beside them once each; failed, skipped and idle jobs and the
// mirror add none.
func TestWrittenTables(t *testing.T) {
	job := func(l layers.Layer, name string) Job { return Job{Table: layers.TableRef{Layer: l, Name: name}} }
	results := []Result{
		{Job: job(layers.Bronze, "a"), RowsIn: 3},
		{Job: job(layers.Bronze, "b"), RowsIn: 1},
		{Job: job(layers.Bronze, "c")},
		{Job: job(layers.Silver, "s"), RowsIn: 2},
		{Job: job(layers.Silver, "t"), RowsIn: 2, Err: errors.New("x")},
		{Job: job(layers.Gold, "g"), RowsIn: 2},
		{Job: job(layers.Gold, "h"), Skipped: true, Err: ErrUpstreamFailed},
		{Job: job(MirrorLayer, "m"), RowsIn: 2},
	}
	got := fmt.Sprint(written(results))
	want := fmt.Sprint([]layers.TableRef{{Layer: layers.Bronze, Name: "a"}, layers.Quarantine(), {Layer: layers.Bronze, Name: "b"},
		{Layer: layers.Silver, Name: "s"}, layers.Late(), {Layer: layers.Gold, Name: "g"}})
	if got != want {
		t.Fatalf("written: %s, want %s", got, want)
	}
}
