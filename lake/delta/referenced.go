package delta

import (
	"context"
	"errors"
	"fmt"

	"github.com/medallion-dev/medallion/lake"
)

// AddedPaths is every file path the commits of versions (from, to] added,
// with dataChange true or false: with the files of the snapshot at from,
// they are every file any version from..to references, which is what
// vacuum must keep. It returns an error wrapping ErrChangesGone when one
// of those commit files is no longer in the log.
func (t *Table) AddedPaths(ctx context.Context, from, to int64) (map[string]bool, error) {
	out := map[string]bool{}
	for v := from + 1; v <= to; v++ {
		cm, err := t.readCommit(ctx, v)
		if errors.Is(err, lake.ErrNotExist) {
			return nil, fmt.Errorf("%s: log version %d is gone: %w: %w", t.name(), v, ErrChangesGone, err)
		}
		if err != nil {
			return nil, err
		}
		for _, a := range cm.actions {
			if a.Add != nil {
				out[a.Add.Path] = true
			}
		}
	}
	return out, nil
}
