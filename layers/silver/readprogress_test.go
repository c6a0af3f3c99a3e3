package silver

import (
	"context"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// TestReadProgressReadsOnlyTheNewestCommits: the progress of a silver
// table with a long history, whose newest commits are other writers'
// (stream compaction, maintenance), comes from the newest silver commit at
// or before the snapshot read, reading only the commits from there to the
// snapshot. It read the whole history before, which made every micro-batch
// after a compaction cost more with every commit of the day.
func TestReadProgressReadsOnlyTheNewestCommits(t *testing.T) {
	ctx := context.Background()
	var counts lake.Counts
	store := lake.Count(testenv.LocalStore(t), &counts)
	tbl := delta.Open(store, "silver/s")
	snap, err := tbl.Create(ctx, delta.Metadata{SchemaString: bronzeSchema}, delta.CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	commit := func(med map[string]any) {
		t.Helper()
		if snap, err = tbl.Commit(ctx, snap, delta.Commit{Info: delta.CommitInfo{Operation: "WRITE", Medallion: med}}); err != nil {
			t.Fatal(err)
		}
	}
	silverAt := func(bronze int64) map[string]any {
		return map[string]any{mJob: "silver", mBronze: bronze, mState: "s" + formatMicros(bronze),
			mWatermark: formatMicros(bronze * 1_000_000), mFingerprint: "f"}
	}
	for b := range int64(60) {
		commit(silverAt(b))
		commit(map[string]any{mJob: "optimize"})
	}
	commit(silverAt(60))
	silverV := snap.Version
	for range 3 {
		commit(map[string]any{mJob: "optimize"})
	}
	commit(nil) // a commit with no medallion map (another engine)
	counts.Gets.Store(0)
	p, err := readProgress(ctx, tbl, snap.Version, 60)
	if err != nil {
		t.Fatal(err)
	}
	if want := "s" + formatMicros(60); p.state != want || p.watermark == nil || *p.watermark != 60_000_000 {
		t.Errorf("progress %+v, want the state %s and watermark of the newest silver commit (v%d)", p, want, silverV)
	}
	if got, want := counts.Gets.Load(), snap.Version-silverV+1; got != want {
		t.Errorf("read %d objects, want the %d commits from the newest silver commit to the snapshot", got, want)
	}

	// A snapshot read before the newest silver commit takes the progress
	// that snapshot's txn belongs to.
	if p, err = readProgress(ctx, tbl, silverV-1, 59); err != nil || p.state != "s"+formatMicros(59) {
		t.Errorf("at v%d: %+v, %v; want the progress of bronze version 59", silverV-1, p, err)
	}
	// A txn that does not match the newest silver commit is an error naming both.
	if _, err = readProgress(ctx, tbl, snap.Version, 59); err == nil || !strings.Contains(err.Error(), "records bronze version 60 but the table's txn says 59") {
		t.Errorf("mismatched txn: %v", err)
	}
}
