package silver

import (
	"context"
	"fmt"

	"github.com/medallion-dev/medallion/lake/delta"
)

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
func newBronzeFiles(ctx context.Context, t *delta.Table, from, to int64) ([]bronzeFile, error) {
	ch, err := t.Changes(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("bronze log: silver cannot tell which rows are new: %w", err)
	}
	out := make([]bronzeFile, 0, len(ch.Added))
	for _, a := range ch.Added {
		out = append(out, bronzeFile{Path: a.Path, Key: t.Key(a.Path), PartitionValues: a.PartitionValues, Size: a.Size})
	}
	return out, nil
}
