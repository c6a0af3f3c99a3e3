package silver

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/medallion-dev/medallion/lake/delta"
)

// BronzeRefreshedError stops a silver run whose unread bronze versions
// hold a REFRESH commit (medallion refresh bronze.X): the commit replaced
// rows silver has already read, so reading its files as new rows would
// count them twice.
type BronzeRefreshedError struct {
	Table    string // the silver table (silver.<name>); "" when not known
	Bronze   string // the bronze table's directory (bronze/<source>)
	Version  int64  // the bronze version of the refresh commit
	Consumed int64  // the bronze version silver has read up to
}

// Error says what happened and the two ways forward.
func (e *BronzeRefreshedError) Error() string {
	table := e.Table
	if table == "" {
		table = "SILVER_TABLE"
	}
	return fmt.Sprintf("%s was refreshed at version %d, after the version %d this table has read: its rows were replaced in place, "+
		"so reading them as new rows would count them twice; rebuild this table with medallion refresh %s "+
		"(or refresh the bronze table with --downstream)", e.Bronze, e.Version, e.Consumed, table)
}

// bronzeFile is one data file of the bronze table that a batch reads.
type bronzeFile struct {
	Path            string                // relative to the bronze table root
	Key             string                // lake key
	PartitionValues delta.PartitionValues // Delta partition values (strings; nil is null)
	Size            int64
}

// newBronzeFiles returns the files that bronze versions (from, to] added
// with dataChange=true, in commit order (delta.Table.Changes). Files a
// later commit in the range removed again (a compaction) are still
// returned: their rows are new to silver, and the compacted copy carries
// dataChange=false.
//
// A silver table that has read nothing yet (from < 0) over a bronze table
// compacted since (`medallion optimize`) reads the files of version to
// instead, oldest first: every row of bronze is new to it, and the files
// the compaction replaced may be gone (`medallion vacuum`).
func newBronzeFiles(ctx context.Context, t *delta.Table, from, to int64) ([]bronzeFile, error) {
	ch, err := t.Changes(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("bronze log: silver cannot tell which rows are new: %w", err)
	}
	if len(ch.Refreshed) > 0 && from >= 0 {
		return nil, &BronzeRefreshedError{Bronze: t.Dir(), Version: ch.Refreshed[len(ch.Refreshed)-1], Consumed: from}
	}
	added := ch.Added
	if from < 0 && (ch.Rewritten || len(ch.Refreshed) > 0) {
		snap, err := t.SnapshotAt(ctx, to)
		if err != nil {
			return nil, fmt.Errorf("bronze version %d: %w", to, err)
		}
		added = slices.Clone(snap.Files)
		slices.SortStableFunc(added, func(x, y delta.Add) int { return cmp.Compare(x.ModificationTime, y.ModificationTime) })
	}
	out := make([]bronzeFile, 0, len(added))
	for _, a := range added {
		out = append(out, bronzeFile{Path: a.Path, Key: t.Key(a.Path), PartitionValues: a.PartitionValues, Size: a.Size})
	}
	return out, nil
}
