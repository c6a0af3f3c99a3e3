package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// sample is one measured run: wall time and the peak RSS of the
// subprocess(es) doing the work.
type sample struct {
	wall time.Duration
	rss  int64 // bytes
}

// plus is a run made of two commands one after the other: times add, the
// peak is the larger one.
func (s sample) plus(o sample) sample {
	return sample{wall: s.wall + o.wall, rss: max(s.rss, o.rss)}
}

// medianWall is the median wall time of samples (the mean of the middle two
// for an even count).
func medianWall(ss []sample) time.Duration {
	if len(ss) == 0 {
		return 0
	}
	w := make([]time.Duration, len(ss))
	for i, s := range ss {
		w[i] = s.wall
	}
	slices.Sort(w)
	n := len(w)
	if n%2 == 1 {
		return w[n/2]
	}
	return (w[n/2-1] + w[n/2]) / 2
}

// peakRSS is the largest peak RSS of samples.
func peakRSS(ss []sample) int64 {
	var m int64
	for _, s := range ss {
		m = max(m, s.rss)
	}
	return m
}

// command is one subprocess to measure.
type command struct {
	bin  string
	args []string
	dir  string
	env  []string // added to os.Environ()
}

// commandError is a command that failed: its exit code and output tail.
type commandError struct {
	cmd    string
	code   int
	output string
	err    error
}

func (e *commandError) Error() string {
	return fmt.Sprintf("%s: %v\n%s", e.cmd, e.err, e.output)
}

func (e *commandError) Unwrap() error { return e.err }

// measure runs c, timing it from start to exit, and reads its peak RSS
// from the kernel's rusage of the child. It returns the combined output.
func measure(ctx context.Context, timeout time.Duration, c command) (sample, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, c.args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var s sample
	s.wall = wall
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.rss = int64(ru.Maxrss) * 1024 // Linux reports KiB
		}
	}
	if err != nil {
		code := -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return s, out.String(), &commandError{cmd: describe(c), code: code, output: tail(out.String(), 2000), err: err}
	}
	return s, out.String(), nil
}

func describe(c command) string {
	parts := append([]string{c.bin}, c.args...)
	for i, p := range parts {
		if len(p) > 120 {
			parts[i] = p[:117] + "..."
		}
	}
	return strings.Join(parts, " ")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
