package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
)

func startOwnMinIO(bin string) (*testenv.MinIOServer, func(), error) {
	return testenv.StartMinIO(bin)
}

// kind says how a case's ratio reads.
type kind int

const (
	speedKind   kind = iota // reference time / our time: >= 1 means we are faster
	shareKind               // our time / reference time, as a percentage (case 6)
	memoryKind              // speed ratio, but the target is our peak RSS (case 7)
	s3Kind                  // local-lake time / S3-lake time (case 8)
	streamKind              // sustained events/s and latency against the target (case 9)
	compareKind             // speed ratio with no target set (case 13)
)

// result is one row of the table.
type result struct {
	id       int
	figure   string
	kind     kind
	ours     []sample
	ref      []sample
	rows     int64 // processed per run of ours
	bytes    int64 // input bytes per run of ours
	minRatio float64
	maxShare float64
	rssLimit int64
	target   string // overrides the target text
	skip     string // not measured: why
	err      error
	note     string         // a footnote under the table (how the figure was read, its breakdown)
	extra    []keyValue     // the case's own facts (objects listed, files per table), kept in the results file
	stream   *streamFigures // case 9
}

func (r *result) fail(err error) *result {
	r.err = err
	return r
}

func (r *result) done(err error) *result {
	if err != nil {
		r.err = err
	}
	return r
}

// ratio is the case's ratio (see kind); 0 when not measured.
func (r *result) ratio() float64 {
	o, f := medianWall(r.ours), medianWall(r.ref)
	if o <= 0 || f <= 0 {
		return 0
	}
	if r.kind == shareKind {
		return o.Seconds() / f.Seconds()
	}
	return f.Seconds() / o.Seconds()
}

func (r *result) measured() bool {
	if r.kind == streamKind {
		return r.skip == "" && r.err == nil && r.stream != nil
	}
	return r.skip == "" && r.err == nil && len(r.ours) > 0 && len(r.ref) > 0
}

// targetText is the target and whether it was met.
func (r *result) targetText() string {
	t := r.target
	switch {
	case t != "":
	case r.kind == speedKind:
		t = fmt.Sprintf(">= %.1f", r.minRatio)
	case r.kind == shareKind:
		t = fmt.Sprintf("<= %.0f%%", r.maxShare*100)
	case r.kind == memoryKind:
		t = "peak RSS <= " + mib(r.rssLimit)
	default:
		return "none set"
	}
	if !r.measured() {
		return t
	}
	if r.kind == streamKind {
		return r.stream.targetText()
	}
	met := false
	switch r.kind {
	case speedKind:
		met = r.ratio() >= r.minRatio
	case shareKind:
		met = r.ratio() <= r.maxShare
	case memoryKind:
		met = peakRSS(r.ours) <= r.rssLimit
	}
	if met {
		return t + ": met"
	}
	return t + ": **missed**"
}

func (r *result) summary() string {
	switch {
	case r.skip != "":
		return r.skip
	case r.err != nil:
		return "FAILED: " + oneLine(r.err.Error())
	case !r.measured():
		return "no runs"
	case r.kind == streamKind:
		return r.stream.ours()
	}
	return fmt.Sprintf("ours %s, reference %s, ratio %s", secs(medianWall(r.ours)), secs(medianWall(r.ref)), r.ratioText())
}

func (r *result) ratioText() string {
	if !r.measured() {
		return "-"
	}
	if r.kind == shareKind {
		return fmt.Sprintf("%.1f%%", r.ratio()*100)
	}
	return fmt.Sprintf("%.2f", r.ratio())
}

// report is the whole run.
type report struct {
	cfg     config
	date    time.Time
	commit  string
	mach    machineRecord
	duckdb  string
	elapsed time.Duration
	results []*result
}

func newReport(cfg config) *report {
	commit := "unknown"
	if root, err := testenv.FindRepoRoot(); err == nil {
		commit = gitCommit(root)
	}
	return &report{cfg: cfg, date: time.Now().UTC(), commit: commit, mach: machineFacts()}
}

// machine describes cores and memory (from /proc/meminfo).
func machine() string {
	m := fmt.Sprintf("%d cores (%s/%s)", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					m += fmt.Sprintf(", %.1f GiB memory", float64(kb)/(1<<20))
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m += ", " + strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Markers delimit the generated part of BENCHMARKS.md; the rest of the
// file (method, findings) is kept when the bench rewrites it.
const (
	beginMarker = "<!-- bench:begin (written by go run ./bench; edit outside the markers) -->"
	endMarker   = "<!-- bench:end -->"
)

// writeMarkdown puts md, the generated part, into path between the
// markers, creating the file when it does not exist.
func writeMarkdown(path, md string) error {
	gen := beginMarker + "\n" + md + endMarker + "\n"
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return os.WriteFile(path, []byte("# Benchmarks\n\n`make bench` (go run ./bench): each figure beside DuckDB or psql doing the same work in the same run.\n\n"+gen), 0o644)
	}
	if err != nil {
		return err
	}
	i := bytes.Index(old, []byte(beginMarker))
	j := bytes.Index(old, []byte(endMarker))
	var out []byte
	if i < 0 || j < i {
		out = append(append(old, '\n'), gen...)
	} else {
		out = append(append(append([]byte{}, old[:i]...), gen...), bytes.TrimPrefix(old[j+len(endMarker):], []byte("\n"))...)
	}
	return os.WriteFile(path, out, 0o644)
}

func secs(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func mib(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

func human(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.0f kB", float64(n)/1e3)
}

// count writes 10000000 as 10M, 2500 as 2.5k.
func count(n int64) string {
	f := float64(n)
	switch {
	case n >= 1e6:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", f/1e6), "0"), ".0") + "M"
	case n >= 1e3:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", f/1e3), "0"), ".0") + "k"
	}
	return strconv.FormatInt(n, 10)
}

func escape(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
