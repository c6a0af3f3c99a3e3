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

	"golang.org/x/term"

	"github.com/medallion-dev/medallion/internal/humanize"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/layers"
)

// envProgressEvery sets how often `run` and `ingest` report progress when
// stderr is not a terminal (a Go duration; default 5s).
const envProgressEvery = "MEDALLION_PROGRESS_EVERY"

// termRedraw is how often the status line is redrawn on a terminal.
const termRedraw = 250 * time.Millisecond

// progress shows what a long `medallion run` or `ingest` is doing, per job
// (a table of the run, the files of an ingest): on a terminal, a status
// line on stderr redrawn in place a few times a second; otherwise an info
// log line per running job every few seconds. Both carry the same figures:
// what the job is doing, how much is done of how much (bytes or files),
// rows read, the rate, the elapsed time and, where the total is known, an
// estimate of the time left. Summary lines on stdout clear the status line
// first, so the two never mix.
//
// Figures reported by a job never go backwards and never exceed the
// job's total, whatever the job reports (a retried commit starts its
// count again; a replan may shrink the work left).
type progress struct {
	mu      sync.Mutex
	out     io.Writer    // stderr, when it is a terminal; nil: log lines
	width   func() int   // the terminal's width (0: unknown)
	log     *slog.Logger // nil: no log lines
	total   int          // jobs planned
	done    int          // jobs finished
	rows    int64        // rows read by finished jobs
	running map[string]*jobProgress
	start   time.Time
	drawn   bool // a status line is on the terminal
	now     func() time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
}

// jobProgress is what one running job reported so far.
type jobProgress struct {
	started time.Time
	last    layers.Progress
}

// newProgress starts reporting for total jobs. every is the interval of
// log lines when stderr is not a terminal.
func newProgress(stderr io.Writer, log *slog.Logger, total int, every time.Duration) *progress {
	p := &progress{log: log, total: total, running: map[string]*jobProgress{}, now: time.Now, stop: make(chan struct{}),
		width: func() int { return 0 }}
	p.start = p.now()
	tick := every
	if fd, ok := terminalFd(stderr); ok {
		p.out, tick = stderr, termRedraw
		p.width = func() int {
			w, _, err := term.GetSize(fd)
			if err != nil {
				return 0
			}
			return w
		}
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

// started and finished follow the runner's jobs; advanced follows what a
// running job reports.
func (p *progress) started(j jobs.Job) { p.begin(j.Table.String()) }

func (p *progress) finished(r jobs.Result) { p.end(r.Job.Table.String(), r.RowsIn) }

func (p *progress) advanced(t layers.TableRef, lp layers.Progress) { p.set(t.String(), lp) }

// begin marks job name as running.
func (p *progress) begin(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[name] = &jobProgress{started: p.now()}
}

// set records what job name reports, kept monotonic (see mergeProgress).
// A report for a job not running (before begin, after end) is ignored.
func (p *progress) set(name string, lp layers.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if jp, ok := p.running[name]; ok {
		jp.last = mergeProgress(jp.last, lp)
	}
}

// end marks job name as finished, having read rows rows.
func (p *progress) end(name string, rows int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, name)
	p.done++
	p.rows += rows
}

// count counts one more job done without ending a running one (ingest:
// the files of one landing job).
func (p *progress) count() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
}

// mergeProgress is next as the display shows it after prev: Done and Rows
// never go backwards, and Done never exceeds a known Total (a total smaller
// than what is done already grows to it). A change of unit starts the
// count again.
func mergeProgress(prev, next layers.Progress) layers.Progress {
	if next.Unit != prev.Unit && prev.Unit != "" {
		return clampProgress(next)
	}
	next.Done = max(next.Done, prev.Done)
	next.Rows = max(next.Rows, prev.Rows)
	if next.Total == 0 {
		next.Total = prev.Total
	}
	return clampProgress(next)
}

func clampProgress(lp layers.Progress) layers.Progress {
	lp.Done = max(lp.Done, 0)
	if lp.Total > 0 && lp.Done > lp.Total {
		lp.Total = lp.Done
	}
	return lp
}

// logTo makes the log lines of progress go through l, the logger the jobs
// log with: one slog handler for both, so that their lines are written one
// at a time to the same stderr.
func (p *progress) logTo(l *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log != nil {
		p.log = l
	}
}

// logsTo is the writer log lines should go through while progress runs:
// on a terminal, w with the status line cleared before each write (it is
// drawn again at the next redraw), so a log line never lands after it;
// otherwise w itself.
func (p *progress) logsTo(w io.Writer) io.Writer {
	if p.out == nil {
		return w
	}
	return clearingWriter{p: p, w: w}
}

// clearingWriter writes to w after clearing p's status line.
type clearingWriter struct {
	p *progress
	w io.Writer
}

func (c clearingWriter) Write(b []byte) (int, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.p.clear()
	return c.w.Write(b)
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

// report draws the status line on a terminal, or logs one line per
// running job.
func (p *progress) report() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.out != nil {
		fmt.Fprintf(p.out, "\r\033[K%s", fitWidth(p.line(now), p.width()))
		p.drawn = true
		return
	}
	if p.log == nil {
		return
	}
	for _, name := range p.runningNames() {
		f := figuresOf(p.running[name], now)
		attrs := []any{"job", name, "jobs_done", fmt.Sprintf("%d/%d", p.done, p.total)}
		if f.step != "" {
			attrs = append(attrs, "step", f.step)
		}
		if f.unit != "" {
			attrs = append(attrs, "done", f.amount(f.done))
			if f.total > 0 {
				attrs = append(attrs, "total", f.amount(f.total), "pct", f.done*100/f.total)
			}
			if f.moving() {
				attrs = append(attrs, "rate", f.rateText())
			}
		}
		if f.rows > 0 {
			attrs = append(attrs, "rows", f.rows)
		}
		attrs = append(attrs, "elapsed", f.elapsed.Round(time.Second))
		if f.etaKnown {
			attrs = append(attrs, "eta", f.eta.Round(time.Second))
		}
		p.log.Info("progress", attrs...)
	}
}

// line is the terminal status line:
// "[1/4] bronze.meters typing 45.0 MiB/180.0 MiB 25% 11.2 MiB/s 4s ETA 12s | silver.x reading 3/10 files … · 15s".
func (p *progress) line(now time.Time) string {
	parts := make([]string, 0, len(p.running))
	for _, name := range p.runningNames() {
		parts = append(parts, jobText(name, figuresOf(p.running[name], now)))
	}
	run := strings.Join(parts, " | ")
	if run == "" {
		run = "waiting"
	}
	return fmt.Sprintf("[%d/%d] %s · %s", p.done, p.total, run, now.Sub(p.start).Round(time.Second))
}

// runningNames lists the jobs under way, longest running first.
func (p *progress) runningNames() []string {
	names := make([]string, 0, len(p.running))
	for n := range p.running {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := p.running[names[i]].started, p.running[names[j]].started
		if !a.Equal(b) {
			return a.Before(b)
		}
		return names[i] < names[j]
	})
	return names
}

// figures are one running job's numbers as shown.
type figures struct {
	step        string
	unit        string
	done, total int64
	rows        int64
	rate        float64 // units per second since the job started
	elapsed     time.Duration
	eta         time.Duration
	etaKnown    bool
}

// figuresOf computes a job's figures at now: the rate is what was done
// since the job started over the time it took; the estimate is the work
// left at that rate, known once something but not all is done of a known
// total.
func figuresOf(jp *jobProgress, now time.Time) figures {
	lp := jp.last
	f := figures{step: lp.Step, unit: lp.Unit, done: lp.Done, total: lp.Total, rows: lp.Rows, elapsed: max(now.Sub(jp.started), 0)}
	if secs := f.elapsed.Seconds(); secs > 0 {
		f.rate = float64(f.done) / secs
	}
	if f.total > 0 && f.done > 0 && f.done < f.total && f.rate > 0 {
		f.eta = time.Duration(float64(f.total-f.done) / f.rate * float64(time.Second))
		f.etaKnown = true
	}
	return f
}

// moving reports whether the rate says something: once something is
// done, and until all of a known total is (then the job is in a step that
// does not count, and the rate would only fall).
func (f figures) moving() bool { return f.done > 0 && (f.total == 0 || f.done < f.total) }

// amount formats n units: "45.0 MiB", "3 files".
func (f figures) amount(n int64) string {
	if f.unit == layers.UnitBytes {
		return humanize.Bytes(n)
	}
	return fmt.Sprintf("%d %s", n, f.unit)
}

// rateText formats the rate: "11.2 MiB/s", "0.7 files/s".
func (f figures) rateText() string {
	if f.unit == layers.UnitBytes {
		return humanize.Bytes(int64(f.rate)) + "/s"
	}
	return fmt.Sprintf("%.1f %s/s", f.rate, f.unit)
}

// jobText is one job's part of the status line: "bronze.meters typing
// 45.0 MiB/180.0 MiB 25% 11.2 MiB/s 1200000 rows 4s ETA 12s". Figures not
// reported yet are left out, and so is the rate unless the count is moving.
func jobText(name string, f figures) string {
	parts := []string{name}
	if f.step != "" {
		parts = append(parts, f.step)
	}
	if f.unit != "" {
		switch {
		case f.total > 0 && f.unit == layers.UnitBytes:
			parts = append(parts, fmt.Sprintf("%s/%s %d%%", humanize.Bytes(f.done), humanize.Bytes(f.total), f.done*100/f.total))
		case f.total > 0:
			parts = append(parts, fmt.Sprintf("%d/%d %s", f.done, f.total, f.unit))
		default:
			parts = append(parts, f.amount(f.done))
		}
		if f.moving() {
			parts = append(parts, f.rateText())
		}
	}
	if f.rows > 0 {
		parts = append(parts, fmt.Sprintf("%d rows", f.rows))
	}
	parts = append(parts, f.elapsed.Round(100*time.Millisecond).String())
	if f.etaKnown {
		parts = append(parts, "ETA "+f.eta.Round(time.Second).String())
	}
	return strings.Join(parts, " ")
}

// fitWidth cuts line to width-1 columns (so the terminal does not wrap
// it, which would break the redraw in place); width 0 keeps it whole.
func fitWidth(line string, width int) string {
	if width <= 1 {
		return line
	}
	r := []rune(line)
	if len(r) < width {
		return line
	}
	return string(r[:width-2]) + "…"
}

// terminalFd is w's file descriptor when w is a terminal.
func terminalFd(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
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
