package delta

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
)

// AddedPaths is every file path the commits of versions (from, to] added,
// with dataChange true or false: with the files of the snapshot at from,
// they are every file any version from..to references, which is what
// vacuum must keep. The commits are read in parallel. It returns an error
// wrapping ErrChangesGone when one of them is no longer in the log.
func (t *Table) AddedPaths(ctx context.Context, from, to int64) (map[string]bool, error) {
	if to <= from {
		return map[string]bool{}, nil
	}
	added := make([][]string, to-from)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for v := from + 1; v <= to; v++ {
		g.Go(func() error {
			cm, err := t.readCommit(gctx, v)
			if errors.Is(err, lake.ErrNotExist) {
				return fmt.Errorf("%s: log version %d is gone: %w: %w", t.name(), v, ErrChangesGone, err)
			}
			if err != nil {
				return err
			}
			for _, a := range cm.actions {
				if a.Add != nil {
					added[v-from-1] = append(added[v-from-1], a.Add.Path)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, paths := range added {
		for _, p := range paths {
			out[p] = true
		}
	}
	return out, nil
}
