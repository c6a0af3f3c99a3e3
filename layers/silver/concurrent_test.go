package silver

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// Two runs of one silver table that overlap (no lease between them) plan
// the same bronze versions; the one that commits second must not add the
// batch again. It plans again and finds nothing new. Both orders of the
// first run (table missing, created by the other run) and of a later run
// are covered.
func TestOverlappingRunsCommitOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, store lake.Store) {
		for _, later := range []bool{false, true} {
			t.Run(fmt.Sprintf("later=%v", later), func(t *testing.T) {
				name := fmt.Sprintf("ov%v", later)
				store := prefixed(store, name)
				cfg := silverCfg(name, 10*time.Second, 0, 0, "append")
				le := newLakeEnv(t, store, cfg)
				ref := newLakeEnv(t, prefixed(store, "ref"), cfg)
				var rows [][]ev
				for r := range 2 {
					var part []ev
					for i := range 20 {
						s := r*20 + i
						part = append(part, e(fmt.Sprintf("00:%02d:%02d", s/60, s%60), string(rune('a'+i%2))))
					}
					rows = append(rows, part)
				}
				le.appendBronze(rows[0]...)
				ref.appendBronze(rows[0]...)
				if later {
					le.run(name)
					ref.run(name)
					le.appendBronze(rows[1]...)
					ref.appendBronze(rows[1]...)
				}
				ref.run(name)
				// The second run starts and finishes while the first has
				// written its files and not committed.
				interleaved := false
				_, err := le.runWith(name, func(p string) error {
					if p == pointFilesWritten && !interleaved {
						interleaved = true
						le.run(name)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("the overlapped run: %v", err)
				}
				if !interleaved {
					t.Fatal("the hook did not run")
				}
				got, want := silverRows(t, store, name), silverRows(t, prefixed(store, "ref"), name)
				if !slices.Equal(got, want) {
					t.Errorf("overlapping runs:\n%v\nwant (one run):\n%v", got, want)
				}
			})
		}
	})
}
