package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	pipelinefile "github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/maintenance"
	"github.com/medallion-dev/medallion/warehouse"
)

// streamDayTarget is the target for case 12: the last 100
// micro-batches take at most 1.2 times the first 100.
const streamDayTarget = 1.2

// streamDayWindow is how many micro-batches are timed at each end.
const streamDayWindow = 100

// streamDayExtra is what case 12's pipeline adds to the energy pipeline:
// retention short enough to act many times within a short run (txns, run
// history, lease generations, a maintenance pass every 10 simulated
// minutes); stream compaction at its defaults.
const streamDayExtra = `bronze:
  discovery_grace: 1m
  txn_retention: 10m
maintenance:
  runs_retain: 10m
  leases_retain: 10m
  every: 10m
`

// case 12: a day of streaming, compressed. The bench re-executes itself
// as `bench -stream-day DIR N` (streamDayMain), which runs stream mode
// in-process for N micro-batches of one energy reading per meter (8 rows)
// on a simulated clock (jobs.StepClock: each 1 s trigger fires at once),
// with stream-mode compaction and the maintenance pass every 10 simulated
// minutes, through bronze, silver and gold. Figures: the wall time of the
// last 100 micro-batches against the first 100 (target <= 1.2x), the
// files of each table at the end, and the process's peak RSS.
func (b *bench) caseStreamDay(ctx context.Context) *result {
	n := b.cfg.streamBatches
	r := &result{id: 12, kind: shareKind, maxShare: streamDayTarget, rows: int64(streamDayWindow * energyMeters),
		target: fmt.Sprintf("last 100 <= %.1fx first 100", streamDayTarget),
		figure: fmt.Sprintf("12. A day of streaming, compressed: %s micro-batches of %d rows (simulated 1 s trigger), stream compaction and retention on; last 100 micro-batches vs the first 100", count(int64(n)), energyMeters)}
	p := b.basePipeline()
	p.meters, p.trigger = true, "1s"
	dir, err := b.runDir("stream-day", p, "")
	if err != nil {
		return r.fail(err)
	}
	defer os.RemoveAll(dir)
	b.logf("case 12: %d micro-batches", n)
	// About 65 ms per micro-batch on a quiet 2-core machine, several times
	// that on a loaded one: the full day takes hours, more than -timeout's
	// limit for one command.
	limit := max(b.cfg.timeout, time.Duration(n)*2*time.Second)
	s, out, err := measure(ctx, limit, command{bin: b.self, args: []string{"-stream-day", dir, strconv.Itoa(n)}, dir: dir})
	if err != nil {
		return r.fail(err)
	}
	first, last, notes, err := parseStreamDay(out)
	if err != nil {
		return r.fail(fmt.Errorf("read the output of -stream-day: %w\n%s", err, tail(out, 2000)))
	}
	r.ours = []sample{{wall: last, rss: s.rss}}
	r.ref = []sample{{wall: first}}
	r.note = fmt.Sprintf("Case 12 (%s micro-batches in %s, peak RSS %s): the reference column is the first 100 micro-batches, ours the last 100, the ratio last/first. %s",
		count(int64(n)), secs(s.wall), mib(s.rss), strings.Join(notes, "; "))
	return r
}

// parseStreamDay reads streamDayMain's output: "first100 SECONDS",
// "last100 SECONDS" and "note TEXT" lines.
func parseStreamDay(out string) (first, last time.Duration, notes []string, err error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "first100", "last100":
			f, perr := strconv.ParseFloat(v, 64)
			if perr != nil {
				return 0, 0, nil, fmt.Errorf("%s %q: %w", k, v, perr)
			}
			d := time.Duration(f * float64(time.Second))
			if k == "first100" {
				first = d
			} else {
				last = d
			}
		case "note":
			notes = append(notes, v)
		}
	}
	if first <= 0 || last <= 0 {
		return 0, 0, nil, errors.New("no first100/last100 lines")
	}
	return first, last, notes, nil
}

// streamDayMain is the bench re-executed as `bench -stream-day DIR N`: N
// micro-batches of stream mode over the pipeline in DIR/medallion.yaml
// (plus streamDayExtra), in this process, on a simulated clock. It prints
// the wall time of the first and the last 100 micro-batches and notes.
func streamDayMain(args []string, stdout io.Writer) int {
	fs := flag.NewFlagSet("stream-day", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "bench -stream-day: want DIR N")
		return 2
	}
	n, err := strconv.Atoi(fs.Arg(1))
	if err != nil || n < 2*streamDayWindow {
		fmt.Fprintf(os.Stderr, "bench -stream-day: N %q: want at least %d micro-batches\n", fs.Arg(1), 2*streamDayWindow)
		return 2
	}
	if err := streamDay(context.Background(), fs.Arg(0), n, stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench -stream-day: %v\n", err)
		return 1
	}
	return 0
}

func streamDay(ctx context.Context, dir string, n int, stdout io.Writer) error {
	yaml, err := os.ReadFile(filepath.Join(dir, "medallion.yaml"))
	if err != nil {
		return err
	}
	text := strings.Replace(string(yaml), "file://./lake", "file://"+filepath.Join(dir, "lake"), 1) + streamDayExtra
	p, err := pipelinefile.Parse(filepath.Join(dir, "medallion.yaml"), []byte(text), nil)
	if err != nil {
		return err
	}
	store, err := lake.Open(ctx, p.Lake, lake.S3Options{})
	if err != nil {
		return err
	}
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: p.DuckDB.MemoryLimit, Threads: p.DuckDB.Threads})
	if err != nil {
		return err
	}
	defer eng.Close()
	outer := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	cache := &lake.Cache{Dir: filepath.Join(dir, "cache")}
	env := layers.Env{Store: store, DB: eng.DB(), Cache: cache, Log: log}
	runner := &jobs.Runner{Store: store, Pipeline: p, Engine: eng, Cache: cache, Log: log, Owner: "bench"}
	env.Tables = runner.TableCache() // as serve shares it with its stream compactor
	// Job time per table in the first and the last micro-batches, to say
	// where a slowdown is.
	var jobTime []map[string]time.Duration
	var mu sync.Mutex // independent jobs finish on their own goroutines
	runner.OnResult = func(r jobs.Result) {
		mu.Lock()
		defer mu.Unlock()
		if len(jobTime) > 0 {
			jobTime[len(jobTime)-1][r.Job.Table.String()] += r.Duration
		}
	}
	plan, err := jobs.Plan(p, nil)
	if err != nil {
		return err
	}
	// The simulated day ends before the wall clock's now: landing stamps
	// in the future would keep bronze's discovery cursor at the wall clock.
	start := time.Now().Add(-time.Duration(n+3600) * time.Second).Truncate(time.Hour)
	clock := jobs.NewStepClock(start)
	env.Now = clock.Now
	// Landings are stamped in the simulated clock too: in the wall clock,
	// bronze's one-minute grace window would hold hundreds of simulated
	// seconds of landings, more than its txn retention covers.
	defer raw.SetIndexClock(clock.Now)()
	m := p.Maintenance
	var (
		landed, passes int
		lastPass       = start
		passErr        error
		objects        = int64(0)
	)
	clock.OnStep = func(now time.Time) {
		if landed >= n {
			// The batch of the last object ran before this trigger.
			cancel()
			return
		}
		mu.Lock()
		jobTime = append(jobTime, map[string]time.Duration{})
		// Only the first and the last streamDayWindow are reported: the
		// ones between are dropped, so the bench's own bookkeeping does
		// not grow the measured process's heap with the day (86,400 maps
		// were tens of MiB for its GC to mark, every cycle).
		if w := streamDayWindow; len(jobTime) > 2*w+1 {
			jobTime = slices.Delete(jobTime, w, w+1)
		}
		mu.Unlock()
		if now.Sub(lastPass) >= m.Every {
			lastPass = now
			passes++
			if _, err := maintenance.Pass(ctx, env, p); err != nil && passErr == nil {
				passErr = err
			}
		}
		var b strings.Builder
		ts := now.UTC().Format("2006-01-02 15:04:05")
		for i := range energyMeters {
			fmt.Fprintf(&b, `{"timestamp":%q,"meter_id":"m%d","energy_usage":%.2f}`+"\n", ts, i, float64((landed*7+i*13)%120)+0.5)
		}
		if _, _, err := raw.Land(ctx, store, "meters", "reading.ndjson", "ndjson", strings.NewReader(b.String()), now); err != nil && passErr == nil {
			passErr = fmt.Errorf("land: %w", err)
		}
		landed++
		objects++
	}
	var (
		ends      []time.Time     // wall time at the end of each micro-batch
		cpus      []time.Duration // the process's CPU time (user+sys) then
		failed    int
		compacted int
		firstErr  error
	)
	began := time.Now()
	progress := openProgress(os.Getenv("BENCH_STREAMDAY_PROGRESS"))
	defer progress.Close()
	stopProfile, stopFirst := func() {}, func() {}
	defer func() { stopProfile(); stopFirst() }()
	st := &jobs.Stream{
		Runner: runner, Plan: plan, Trigger: time.Second, Owner: "bench", Lease: jobs.DefaultLeaseOptions(), Clock: clock, Log: log,
		History: true,
		Compact: &maintenance.StreamCompactor{Env: env, Options: maintenance.StreamCompactOptions{TargetSize: m.TargetFileSize, MaxFiles: m.StreamCompactFiles}},
		OnBatch: func(r jobs.BatchReport) {
			ends = append(ends, time.Now())
			cpus = append(cpus, processCPU())
			switch len(ends) {
			case 1:
				stopFirst = startTailProfile(os.Getenv("BENCH_STREAMDAY_CPUPROFILE_FIRST"))
			case streamDayWindow + 1:
				stopFirst()
				stopFirst = func() {}
			}
			progress.batch(ends, cpus, r.Compacted)
			if len(ends) == n-streamDayWindow {
				stopProfile = startTailProfile(os.Getenv("BENCH_STREAMDAY_CPUPROFILE"))
			}
			compacted += r.Compacted
			if r.Err != nil {
				failed++
				if firstErr == nil {
					firstErr = r.Err
				}
			}
		},
	}
	// OnBatch runs after the batch's compaction: ends[i] - ends[i-1] is a
	// whole micro-batch cycle (trigger check, batch, history, compaction,
	// and the maintenance pass when one was due).
	if err := st.Run(ctx); err != nil {
		return err
	}
	if firstErr != nil {
		return fmt.Errorf("%d micro-batches failed, the first: %w", failed, firstErr)
	}
	if passErr != nil {
		return passErr
	}
	if len(ends) < 2*streamDayWindow+1 {
		return fmt.Errorf("only %d micro-batches ran for %d landed objects", len(ends), landed)
	}
	w := streamDayWindow
	first := ends[w].Sub(ends[0])
	last := ends[len(ends)-1].Sub(ends[len(ends)-1-w])
	fmt.Fprintf(stdout, "first100 %.6f\nlast100 %.6f\n", first.Seconds(), last.Seconds())
	fmt.Fprintf(stdout, "note job time per table, first 100 -> last 100 micro-batches: %s\n", windowJobTimes(jobTime, w))
	// CPU time is what a loaded machine distorts least.
	cpuFirst, cpuLast := cpus[w]-cpus[0], cpus[len(cpus)-1]-cpus[len(cpus)-1-w]
	fmt.Fprintf(stdout, "note process CPU time (user+sys), first 100 -> last 100 micro-batches: %s -> %s (%.2fx)\n",
		secs(cpuFirst), secs(cpuLast), cpuLast.Seconds()/cpuFirst.Seconds())
	fmt.Fprintf(stdout, "note %d micro-batches for %d raw objects in %s (simulated %s), %d files replaced by stream compaction, %d maintenance passes\n",
		len(ends), objects, time.Since(began).Round(time.Second), clock.Now().Sub(start).Round(time.Minute), compacted, passes)
	var files []string
	for _, ref := range layers.Tables(p) {
		snap, err := delta.Open(store, ref.Dir()).Snapshot(outer)
		if errors.Is(err, delta.ErrNoTable) {
			continue
		}
		if err != nil {
			return err
		}
		rows, _ := snap.NumRecords()
		files = append(files, fmt.Sprintf("%s %d files (%d rows, v%d)", ref, len(snap.Files), rows, snap.Version))
	}
	fmt.Fprintf(stdout, "note files per table at the end: %s\n", strings.Join(files, ", "))
	// What of the peak RSS is Go's heap (the rest is DuckDB's, or freed).
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(stdout, "note Go heap in use at the end %s (%s obtained from the OS)\n", mib(int64(ms.HeapInuse)), mib(int64(ms.HeapSys)))
	if path := os.Getenv("BENCH_STREAMDAY_MEMPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
	return nil
}

// progressEvery is how often (in micro-batches) the progress file gets a
// line.
const progressEvery = 1000

// progressFile is where a long case 12 run (the whole day takes hours)
// says how it is going while it runs, since the bench prints the case's
// figures only at its end: every progressEvery micro-batches, the wall and
// CPU time of the last 100 against the first 100. BENCH_STREAMDAY_PROGRESS
// names the file; without it nothing is written.
type progressFile struct {
	f         *os.File
	compacted int
}

func openProgress(path string) *progressFile {
	if path == "" {
		return &progressFile{}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench -stream-day: progress file: %v\n", err)
		return &progressFile{}
	}
	return &progressFile{f: f}
}

// batch records one micro-batch; ends and cpus hold every micro-batch's
// end so far.
func (p *progressFile) batch(ends []time.Time, cpus []time.Duration, compacted int) {
	p.compacted += compacted
	k, w := len(ends), streamDayWindow
	if p.f == nil || k <= w || k%progressEvery != 0 {
		return
	}
	first, last := ends[w].Sub(ends[0]), ends[k-1].Sub(ends[k-1-w])
	cpuFirst, cpuLast := cpus[w]-cpus[0], cpus[k-1]-cpus[k-1-w]
	fmt.Fprintf(p.f, "%s micro-batch %d: last 100 %s wall (%.2fx the first 100), %s CPU (%.2fx); %d files replaced by compaction so far\n",
		time.Now().UTC().Format(time.RFC3339), k, secs(last), last.Seconds()/first.Seconds(),
		secs(cpuLast), cpuLast.Seconds()/cpuFirst.Seconds(), p.compacted)
}

// Close closes the file, if any.
func (p *progressFile) Close() error {
	if p.f == nil {
		return nil
	}
	return p.f.Close()
}

// startTailProfile starts a Go CPU profile into path (none when path is
// empty) and returns the function that stops it: the bench sets
// BENCH_STREAMDAY_CPUPROFILE to profile the last micro-batches of case 12,
// and BENCH_STREAMDAY_CPUPROFILE_FIRST the first ones (the windows the
// ratio compares, so that what grows shows in a diff of the two).
func startTailProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench -stream-day: cpu profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "bench -stream-day: cpu profile: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// processCPU is the CPU time (user and system) this process has used,
// DuckDB's threads included; 0 when it cannot be read.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// windowJobTimes sums each table's job time over the first and the last w
// micro-batches of jobTime: "bronze.meters 12.1 s -> 13.0 s, ...".
func windowJobTimes(jobTime []map[string]time.Duration, w int) string {
	if len(jobTime) < 2*w {
		return "-"
	}
	sum := func(ms []map[string]time.Duration) map[string]time.Duration {
		out := map[string]time.Duration{}
		for _, m := range ms {
			for k, d := range m {
				out[k] += d
			}
		}
		return out
	}
	first, last := sum(jobTime[:w]), sum(jobTime[len(jobTime)-w:])
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(last)) {
		parts = append(parts, fmt.Sprintf("%s %s -> %s", k, secs(first[k]), secs(last[k])))
	}
	return strings.Join(parts, ", ")
}
