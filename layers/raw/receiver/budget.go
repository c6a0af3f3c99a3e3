package receiver

import "sync"

// budget bounds the request-body bytes the receiver holds in memory across
// all HTTP requests and sources: the arrays a body is read into, the copy
// framing makes, and the framed rows a batch keeps until they are landed.
// A request takes its share before it reads (admission by bytes) and never
// waits for room: when the budget is spent it gets 429, so a flood of large
// bodies costs at most the budget, however many connections carry it.
type budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	peak  int64 // highest used so far (tests and the metric read it)
	onSet func(used int64)
}

// take reserves n bytes if they fit, and reports whether they did.
func (b *budget) take(n int64) bool {
	if n <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	b.set()
	return true
}

// give returns n bytes taken earlier.
func (b *budget) give(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.used < 0 {
		panic("receiver: memory budget given back more than was taken")
	}
	b.set()
}

func (b *budget) set() {
	if b.onSet != nil {
		b.onSet(b.used)
	}
}

// stats returns the bytes in use and the highest use so far.
func (b *budget) stats() (used, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}

// share is one request's part of the budget. It is not safe for concurrent
// use: one handler owns it until it hands the bytes to a batch.
type share struct {
	b *budget
	n int64
}

// grow takes n more bytes for this request.
func (s *share) grow(n int64) bool {
	if !s.b.take(n) {
		return false
	}
	s.n += n
	return true
}

// shrinkTo gives back everything above n.
func (s *share) shrinkTo(n int64) {
	if n < s.n {
		s.b.give(s.n - n)
		s.n = n
	}
}

// release gives back the whole share (idempotent).
func (s *share) release() { s.shrinkTo(0) }

// detach hands the share's bytes to a new owner (a batch, which gives them
// back once landed) and returns how many they are.
func (s *share) detach() int64 {
	n := s.n
	s.n = 0
	return n
}
