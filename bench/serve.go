package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serveProc is a `medallion serve` subprocess on a loopback port.
type serveProc struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT
	log  string // its combined output
	done chan struct{}
	err  error // of Wait, once done is closed
}

// startServe starts `medallion serve` in dir and waits until /readyz
// answers 200.
func (b *bench) startServe(ctx context.Context, dir string) (*serveProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.bin, "serve", "--addr", "127.0.0.1:"+strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start medallion serve: %w", err)
	}
	s := &serveProc{cmd: cmd, base: "http://127.0.0.1:" + strconv.Itoa(port), log: logPath, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("medallion serve exited at start: %v\n%s", s.err, s.output())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := http.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("medallion serve not ready after a minute\n%s", s.output())
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *serveProc) output() string {
	b, _ := os.ReadFile(s.log)
	return tail(string(b), 2000)
}

// stop sends SIGTERM (serve lands what it acknowledged and finishes the
// batch under way), kills it after a minute, and returns its peak RSS.
func (s *serveProc) stop() (int64, error) {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			_ = s.cmd.Process.Kill()
			<-s.done
			return 0, fmt.Errorf("medallion serve did not stop within a minute of SIGTERM\n%s", s.output())
		}
	}
	var rss int64
	if ru, ok := s.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = int64(ru.Maxrss) * 1024
	}
	if s.err != nil {
		return rss, fmt.Errorf("medallion serve: %v\n%s", s.err, s.output())
	}
	return rss, nil
}

// cpu is the CPU time serve has used so far (user + system), from
// /proc/PID/stat.
func (s *serveProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	_, after, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(after) // f[0] is field 3 (state); utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

// selfCPU is this process's CPU time (the load generator's, while a step
// runs: the bench does nothing else then).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// promText is one scrape of /metrics: series (name and labels exactly as
// written) to value.
type promText map[string]float64

func (s *serveProc) scrape(ctx context.Context) (promText, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: HTTP %d", resp.StatusCode)
	}
	return parseProm(resp.Body)
}

func parseProm(r io.Reader) (promText, error) {
	out := promText{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /metrics: %w", err)
	}
	return out, nil
}

// Series the stream case reads (names from layers/raw/receiver/metrics.go
// and jobs/stream.go).
const (
	seriesLanded     = `medallion_ingest_flushes_total{source="meters",result="landed"}`
	seriesRowsLanded = `medallion_ingest_rows_landed_total{source="meters"}`
	seriesPending    = `medallion_ingest_pending_bytes{source="meters"}`
	seriesGoldCount  = `medallion_stream_latency_seconds_count{stage="gold"}`
	seriesLag        = `medallion_stream_lag_objects{source="meters"}`
	seriesBronzeRows = `medallion_job_rows_out_total{table="bronze.meters",layer="bronze"}`
	seriesBatchFail  = `medallion_stream_batches_total{result="failed"}`
	seriesBatchOK    = `medallion_stream_batches_total{result="ok"}`
	goldBucketPrefix = `medallion_stream_latency_seconds_bucket{stage="gold",le="`
)

// backlog is the raw objects landed but not yet through gold: the latency
// histogram counts an object once its micro-batch has committed gold.
func (p promText) backlog() float64 { return p[seriesLanded] - p[seriesGoldCount] }

// bucket is one cumulative histogram bucket.
type bucket struct {
	le    float64
	count float64
}

// goldBuckets returns the gold latency buckets of after minus before,
// sorted by bound (+Inf last).
func goldBuckets(before, after promText) []bucket {
	var out []bucket
	for k, v := range after {
		rest, ok := strings.CutPrefix(k, goldBucketPrefix)
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64)
		if err != nil {
			continue
		}
		out = append(out, bucket{le: le, count: v - before[k]})
	}
	slices.SortFunc(out, func(a, b bucket) int {
		switch {
		case a.le < b.le:
			return -1
		case a.le > b.le:
			return 1
		}
		return 0
	})
	return out
}

// quantile is the q-quantile of cumulative buckets, interpolated linearly
// inside the bucket it falls in (as Prometheus' histogram_quantile does).
// It returns an error when there are no observations, and the largest
// finite bound with over=true when the quantile is past it.
func quantile(q float64, bs []bucket) (v float64, over bool, err error) {
	if len(bs) == 0 || bs[len(bs)-1].count <= 0 {
		return 0, false, errors.New("no latency observations")
	}
	total := bs[len(bs)-1].count
	rank := q * total
	lo, below := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lo, true, nil
			}
			if b.count == below {
				return b.le, false, nil
			}
			return lo + (b.le-lo)*(rank-below)/(b.count-below), false, nil
		}
		lo, below = b.le, b.count
	}
	return lo, true, nil
}
