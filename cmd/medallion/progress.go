package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/medallion-dev/medallion/jobs"
)

// envProgressEvery sets how often `run` reports progress when stderr is
// not a terminal (a Go duration; default 5s).
const envProgressEvery = "MEDALLION_PROGRESS_EVERY"

// progress shows what a long `medallion run` is doing: on a terminal, a
// status line on stderr redrawn a few times a second (jobs running and for
// how long, jobs done, rows so far and their rate, elapsed); otherwise an
// info log line every few seconds. Summary lines on stdout clear the status
// line first, so the two never mix.
type progress struct {
	mu      sync.Mutex
	out     io.Writer // stderr, when it is a terminal; nil: log lines
	log     *slog.Logger
	total   int
	done    int
	rows    int64
	running map[string]time.Time
	start   time.Time
	drawn   bool // a status line is on the terminal
	now     func() time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
}

// newProgress starts reporting for a plan of total jobs. every is the
// interval of log lines when stderr is not a terminal.
func newProgress(stderr io.Writer, log *slog.Logger, total int, every time.Duration) *progress {
	p := &progress{log: log, total: total, running: map[string]time.Time{}, now: time.Now, stop: make(chan struct{})}
	p.start = p.now()
	tick := every
	if isTerminal(stderr) {
		p.out, tick = stderr, 200*time.Millisecond
	}
	p.wg.Add(1)
	go p.loop(tick)
	return p
}

func (p *progress) loop(tick time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.report()
		}
	}
}

// started and finished follow the runner's jobs.
func (p *progress) started(j jobs.Job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[j.Table.String()] = p.now()
}

func (p *progress) finished(r jobs.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, r.Job.Table.String())
	p.done++
	p.rows += r.RowsIn
}

// println prints a summary line on w, clearing the status line first.
func (p *progress) println(w io.Writer, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(w, line)
}

// close stops reporting and clears the status line.
func (p *progress) close() {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

func (p *progress) clear() {
	if p.out != nil && p.drawn {
		fmt.Fprint(p.out, "\r\033[K")
		p.drawn = false
	}
}

func (p *progress) report() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out != nil {
		fmt.Fprintf(p.out, "\r\033[K%s", p.line())
		p.drawn = true
		return
	}
	if len(p.running) > 0 {
		p.log.Info("progress", "jobs_done", fmt.Sprintf("%d/%d", p.done, p.total), "running", p.runningText(),
			"rows_in", p.rows, "rows_per_s", int64(p.rate()), "elapsed", p.now().Sub(p.start).Round(time.Second))
	}
}

// line is the terminal status line: "[2/6] silver.x 12s, gold.y 3s · 1200000 rows in (98000/s) · 15s".
func (p *progress) line() string {
	run := p.runningText()
	if run == "" {
		run = "waiting"
	}
	return fmt.Sprintf("[%d/%d] %s · %d rows in (%d/s) · %s", p.done, p.total, run, p.rows, int64(p.rate()),
		p.now().Sub(p.start).Round(time.Second))
}

// runningText lists the jobs under way, longest running first, with their
// elapsed time.
func (p *progress) runningText() string {
	names := make([]string, 0, len(p.running))
	for n := range p.running {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return p.running[names[i]].Before(p.running[names[j]]) })
	for i, n := range names {
		names[i] = fmt.Sprintf("%s %s", n, p.now().Sub(p.running[n]).Round(100*time.Millisecond))
	}
	return strings.Join(names, ", ")
}

func (p *progress) rate() float64 {
	secs := p.now().Sub(p.start).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(p.rows) / secs
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressEvery is the log interval from the environment (default 5s).
func progressEvery() (time.Duration, error) {
	v := os.Getenv(envProgressEvery)
	if v == "" {
		return 5 * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration like 5s", envProgressEvery, v)
	}
	return d, nil
}
