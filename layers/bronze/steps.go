package bronze

import (
	"log/slog"
	"time"
)

// stepClock times the steps of a bronze batch, wall and process CPU time
// (user + system of every thread, DuckDB's included), for the debug line
// "bronze batch steps": the profile docs/bronze-profile.md is built from.
// Process CPU counts whatever else the process does meanwhile; a bronze
// run types one batch at a time, so it is the batch's.
type stepClock struct {
	last    time.Time
	lastCPU time.Duration
	attrs   []any
}

func newStepClock() *stepClock {
	return &stepClock{last: time.Now(), lastCPU: processCPU()}
}

// mark ends the step called name: the time since the previous mark.
func (c *stepClock) mark(name string) {
	if c == nil {
		return
	}
	now, cpu := time.Now(), processCPU()
	c.attrs = append(c.attrs, slog.Group(name, "wall", now.Sub(c.last).Round(time.Millisecond), "cpu", (cpu-c.lastCPU).Round(time.Millisecond)))
	c.last, c.lastCPU = now, cpu
}

// log writes the steps marked so far as one debug line.
func (c *stepClock) log(l *slog.Logger, args ...any) {
	if c == nil || len(c.attrs) == 0 {
		return
	}
	l.Debug("bronze batch steps", append(args, c.attrs...)...)
}
