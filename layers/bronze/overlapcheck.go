package bronze

import (
	"github.com/medallion-dev/medallion/lake"
)

// A batch of one large object of a local lake is checked against its
// manifest while it is typed, not before: the check (a SHA-256 of every
// byte, single-threaded) and DuckDB's typing statement read the same file
// from the page cache and overlap. runBatch waits for the check before it
// writes anything of the batch to the lake (quarantine rows included), so
// an object that fails it commits nothing, as when it is checked first;
// the run then stops with the same error naming the object and its
// manifest. Only whole single-object batches take this way: the objects of
// a larger batch are checked in order (verify.go), and a small object's
// check is cheaper than the wait.

// overlapCheckBytes is the size from which a one-object batch is checked
// while it is typed (a variable so tests can lower it).
var overlapCheckBytes int64 = 32 << 20

// startCheck starts checking the object of a one-object batch in the
// background when the batch qualifies, recording the lake's file as the
// object's local file; it reports whether it did. awaitCheck returns the
// check's outcome.
func (j *job) startCheck(ms []manifest) bool {
	if len(ms) != 1 || ms[0].Size < overlapCheckBytes || ms[0].Ref != "" {
		return false
	}
	m := ms[0]
	if _, done := j.fetched[m.SHA256]; done {
		return false
	}
	lp, ok := j.d.Store.(lake.LocalPather)
	if !ok {
		return false
	}
	p := lp.LocalPath(m.Key)
	if p == "" {
		return false
	}
	if j.fetched == nil {
		j.fetched = map[string]string{}
		j.fetchedData = map[string][]byte{}
	}
	done := make(chan error, 1)
	go func() {
		// Above keepObjectBytes readLocal keeps no bytes: it only hashes.
		_, err := j.readLocal(m, p)
		done <- err
	}()
	j.fetched[m.SHA256] = p
	j.checking = done
	return true
}

// awaitCheck waits for the check startCheck started, if any, and returns
// its error (a *damagedError when the object does not match its
// manifest). Later calls return nil.
func (j *job) awaitCheck() error {
	if j.checking == nil {
		return nil
	}
	err := <-j.checking
	j.checking = nil
	return err
}
