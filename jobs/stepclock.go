package jobs

import (
	"sync"
	"time"
)

// StepClock is a simulated Clock for driving stream mode and the scheduler
// in-process without sleeping: After(d) moves the time forward by d at
// once and delivers it, so a Stream with a 1 s trigger runs one micro-batch
// per call as fast as the work allows, its clock saying a second passed
// each time. OnStep, if set, is called with the new time on each step,
// before the time is delivered: the place to land what arrived meanwhile.
// It is safe for concurrent use; OnStep runs on the caller's goroutine.
type StepClock struct {
	OnStep func(now time.Time)

	mu  sync.Mutex
	now time.Time
}

// NewStepClock returns a StepClock at start.
func NewStepClock(start time.Time) *StepClock { return &StepClock{now: start} }

// Now returns the simulated time.
func (c *StepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After moves the simulated time forward by d (nothing for d <= 0), calls
// OnStep, and returns a channel that already holds the new time.
func (c *StepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(max(d, 0))
	now := c.now
	c.mu.Unlock()
	if c.OnStep != nil {
		c.OnStep(now)
	}
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

var _ Clock = (*StepClock)(nil)
