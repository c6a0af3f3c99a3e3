package delta

import "context"

type fenceKey struct{}

// WithFence returns a context under which every Table.Commit also records
// the txn {appID, version} and is refused with ErrFenced when the table
// already records a higher version for appID.
//
// It is how a lease holder fences its writes: appID names the lease and
// version is the lease's generation, which grows with every acquisition.
// A holder that stalled past its lease's expiry (a paused process, a long
// GC) and wakes up after a newer holder has committed to a table cannot
// commit to it any more. (A stale commit that lands before the newer
// holder's first one is not refused: the txn check of each input still
// keeps it from being applied twice, and the newer holder sees the commit.)
//
// Fences nest: an inner WithFence for the same appID replaces the outer.
// Create does not record fences.
func WithFence(ctx context.Context, appID string, version int64) context.Context {
	prev := fencesOf(ctx)
	out := make([]Txn, 0, len(prev)+1)
	for _, f := range prev {
		if f.AppID != appID {
			out = append(out, f)
		}
	}
	out = append(out, Txn{AppID: appID, Version: version})
	return context.WithValue(ctx, fenceKey{}, out)
}

func fencesOf(ctx context.Context) []Txn {
	f, _ := ctx.Value(fenceKey{}).([]Txn)
	return f
}

// EmptySnapshot is the state of a table before its first version: no
// files, no txns, version -1. Pass it as Commit.Read when the writer
// decided what to commit while the table did not exist yet.
func EmptySnapshot() *Snapshot {
	return &Snapshot{Version: -1}
}
