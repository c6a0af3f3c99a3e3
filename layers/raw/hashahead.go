package raw

import (
	"hash"
	"io"
)

// hashAheadMin is the object size from which landing hashes on a goroutine
// of its own: below it the handoff costs more than it saves. A variable so
// that tests can take the path with small objects.
var hashAheadMin int64 = 8 << 20

// hashAhead is a reader that hashes what it returns on another goroutine,
// so that landing a large file hashes it while the store writes it (one
// core each) instead of in turn: SHA-256 of case 2's 800 MB object is about
// half a second of the ingest's 1.5 s. It copies what Read returns into
// chunks the hasher takes in order; the hash therefore covers exactly the
// bytes handed to the store, as io.TeeReader's does. finish must be called
// once, after the last Read, whatever the outcome: it stops the hasher.
type hashAhead struct {
	r    io.Reader
	h    hash.Hash
	cur  []byte      // the chunk being filled; nil when none is taken
	full chan []byte // chunks to hash, in order
	free chan []byte // hashed chunks, to fill again
	done chan struct{}
}

const (
	hashAheadChunk  = 1 << 20
	hashAheadChunks = 4 // in flight at most: the hasher lags by 3 MiB at most
)

func newHashAhead(r io.Reader, h hash.Hash) *hashAhead {
	a := &hashAhead{r: r, h: h, full: make(chan []byte, hashAheadChunks),
		free: make(chan []byte, hashAheadChunks), done: make(chan struct{})}
	for range hashAheadChunks {
		a.free <- make([]byte, 0, hashAheadChunk)
	}
	go func() {
		defer close(a.done)
		for c := range a.full {
			a.h.Write(c)
			a.free <- c[:0]
		}
	}()
	return a
}

func (a *hashAhead) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	for b := p[:n]; len(b) > 0; {
		if a.cur == nil {
			a.cur = <-a.free
		}
		k := copy(a.cur[len(a.cur):cap(a.cur)], b)
		a.cur, b = a.cur[:len(a.cur)+k], b[k:]
		if len(a.cur) == cap(a.cur) {
			a.full <- a.cur
			a.cur = nil
		}
	}
	return n, err
}

// finish hands the hasher the last chunk, waits for it to hash everything
// read, and stops it; h then holds the hash of every byte Read returned.
func (a *hashAhead) finish() {
	if len(a.cur) > 0 {
		a.full <- a.cur
	}
	a.cur = nil
	close(a.full)
	<-a.done
}
