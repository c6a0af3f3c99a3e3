// Command bench is `make bench`: every figure of the medallion pipeline
// measured side by side with the engine's own limit on the same files, in
// the same run: DuckDB doing the same work directly (through our warehouse
// package, in a subprocess so its peak RSS is comparable) and `psql \copy`
// for the PostgreSQL mirror. Each case runs at least three times,
// alternating ours and the reference; each of our runs uses a fresh lake
// directory prepared outside the timing. It prints one markdown table and,
// with -out, writes it into BENCHMARKS.md between the bench markers,
// keeping the rest of the file (the profile findings).
//
//	go run ./bench -medallion .bin/medallion -out BENCHMARKS.md
//
// The bench re-executes itself with -reference NAME to run a reference.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
)

// config is what the flags set.
type config struct {
	medallion string // binary under test; "" builds ./cmd/medallion into the work dir
	minio     string // MinIO server binary; "" is $MINIO_BIN or .bin/minio
	workDir   string // "" is a fresh temp dir, removed at the end unless keep
	keep      bool
	out       string // BENCHMARKS.md to update; "" prints only
	runs      int
	cases     map[int]bool

	rowsCSV      int64 // case 1
	rowsNDJSON   int64 // cases 2, 3, 4
	rowsMirror   int64 // case 5
	rowsIncr     int64 // case 6 (the full run; the increment is 1% of it); 0 is rowsNDJSON
	rowsMemory   int64 // case 7
	rowsS3       int64 // case 8
	smallObjects int   // case 10: NDJSON objects of 5 rows
	growthSmall  int   // case 11: landed objects of the reference point
	growthLarge  int   // case 11: landed objects of our point
	growthRuns   int   // case 11: rounds at each point; 0 is runs

	streamBatches int // case 12: micro-batches of the compressed day

	streamRates    []int         // case 9: the rate ladder, events/s, ascending
	streamDuration time.Duration // case 9: how long each rate is held
	streamBatch    int           // case 9: events per POST
	streamPosters  int           // case 9: concurrent keep-alive posters

	memoryLimit  string // duckdb memory_limit for ours and the references; "" is the default
	threads      int    // duckdb threads; 0 is all cores
	memoryCase   string // memory_limit of case 7
	databaseURL  string
	timeout      time.Duration // per command
	progress     io.Writer
	startMinIO   minioStarter // nil: testenv.StartMinIO
	underLoadMsg string       // a note on the conditions, printed in BENCHMARKS.md
	resultsDir   string       // where the run's JSON goes; "" is bench/results of the repository
	render       string       // a results file to render instead of running
}

func defaultConfig() config {
	return config{
		runs:         3,
		cases:        allCases(),
		rowsCSV:      10_000_000,
		rowsNDJSON:   10_000_000,
		rowsMirror:   1_000_000,
		rowsIncr:     0, // the full pipeline run's size: -rows-ndjson
		rowsMemory:   3_000_000,
		rowsS3:       1_000_000,
		smallObjects: 10_000,
		growthSmall:  1_000,
		growthLarge:  100_000,
		growthRuns:   15,
		memoryCase:   "1GB",

		streamBatches: 1_200, // 20 simulated minutes; -stream-batches 86400 is the whole day (about 1.5 hours on a quiet 2-core machine)

		streamRates:    []int{25_000, 50_000, 100_000, 150_000, 200_000},
		streamDuration: 25 * time.Second,
		streamBatch:    5000,
		streamPosters:  32,

		timeout:  30 * time.Minute,
		progress: os.Stderr,
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-reference" {
		os.Exit(referenceMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "-stream-day" {
		os.Exit(streamDayMain(os.Args[2:], os.Stdout))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	cfg.progress = stderr
	if cfg.render != "" {
		return renderMain(cfg, stdout, stderr)
	}
	rep, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	dir := cfg.resultsDir
	if dir == "" {
		root, err := testenv.FindRepoRoot()
		if err != nil {
			fmt.Fprintf(stderr, "bench: find the repository for bench/results: %v (pass -results DIR)\n", err)
			return 1
		}
		dir = filepath.Join(root, "bench", "results")
	}
	path, err := rep.record().writeJSON(dir)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "bench: wrote %s\n", path)
	cfg.render = path
	return renderMain(cfg, stdout, stderr)
}

// renderMain renders the table from the results file cfg.render (and the
// committed run before it), prints it and, with -out, writes it into
// that file between the markers.
func renderMain(cfg config, stdout, stderr io.Writer) int {
	md, err := renderFile(cfg.render)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, md)
	if cfg.out != "" {
		if err := writeMarkdown(cfg.out, md); err != nil {
			fmt.Fprintf(stderr, "bench: write %s: %v\n", cfg.out, err)
			return 1
		}
		fmt.Fprintf(stderr, "bench: wrote %s\n", cfg.out)
	}
	return 0
}

// renderFile renders the results file at path; the table names it by its
// path from the repository root when it is inside one.
func renderFile(path string) (string, error) {
	rec, err := loadRun(path)
	if err != nil {
		return "", err
	}
	prevs := previousCommitted(path, rec)
	for i := range prevs {
		prevs[i].name = repoPath(prevs[i].name)
	}
	return renderMarkdown(rec, repoPath(path), prevs), nil
}

// repoPath is path relative to the repository root holding it, with
// slashes; path itself when it is outside one.
func repoPath(path string) string {
	if path == "" {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	out, err := exec.Command("git", "-C", filepath.Dir(abs), "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(strings.TrimSpace(string(out)), abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return filepath.ToSlash(rel)
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs, casesFlag, ratesFlag := newFlagSet(&cfg, stderr)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.runs < 1 {
		return cfg, fmt.Errorf("-runs %d: want at least 1", cfg.runs)
	}
	cases, err := parseCases(*casesFlag)
	if err != nil {
		return cfg, err
	}
	cfg.cases = cases
	if cfg.streamRates, err = parseRates(*ratesFlag); err != nil {
		return cfg, err
	}
	switch {
	case cfg.streamDuration < time.Second:
		return cfg, fmt.Errorf("-stream-duration %s: want at least 1s", cfg.streamDuration)
	case cfg.streamBatch < 1:
		return cfg, fmt.Errorf("-stream-batch %d: want at least 1 event", cfg.streamBatch)
	case cfg.streamPosters < 1:
		return cfg, fmt.Errorf("-stream-posters %d: want at least 1", cfg.streamPosters)
	case cfg.growthRuns < 0:
		return cfg, fmt.Errorf("-growth-runs %d: want 0 (as -runs) or more", cfg.growthRuns)
	case cfg.growthSmall < 1 || cfg.growthLarge <= cfg.growthSmall:
		return cfg, fmt.Errorf("-growth-small %d, -growth-large %d: want 1 <= small < large", cfg.growthSmall, cfg.growthLarge)
	case cfg.streamBatches < 2*streamDayWindow:
		return cfg, fmt.Errorf("-stream-batches %d: want at least %d (the first and the last %d are compared)", cfg.streamBatches, 2*streamDayWindow, streamDayWindow)
	case cfg.rowsIncr == 0:
		cfg.rowsIncr = cfg.rowsNDJSON
	}
	for name, n := range map[string]int64{"rows-csv": cfg.rowsCSV, "rows-ndjson": cfg.rowsNDJSON, "rows-mirror": cfg.rowsMirror,
		"rows-incr": cfg.rowsIncr, "rows-memory": cfg.rowsMemory, "rows-s3": cfg.rowsS3} {
		if n < 100 {
			return cfg, fmt.Errorf("-%s %d: want at least 100 rows", name, n)
		}
	}
	if _, err := parseSize(cfg.memoryCase); err != nil {
		return cfg, fmt.Errorf("-memory-case-limit: %w", err)
	}
	return cfg, nil
}

// newFlagSet defines the bench's flags on cfg, each defaulting to cfg's
// current value; the -cases and -stream-rates strings are parsed by the
// caller. flagRecords uses it too, so the flags recorded with a run are
// exactly these.
func newFlagSet(cfg *config, stderr io.Writer) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	if stderr == nil {
		stderr = io.Discard
	}
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.medallion, "medallion", cfg.medallion, "medallion binary to measure (default: build ./cmd/medallion into the work dir)")
	fs.StringVar(&cfg.minio, "minio", cfg.minio, "MinIO server binary for case 8 (default: $MINIO_BIN, else .bin/minio)")
	fs.StringVar(&cfg.workDir, "work", cfg.workDir, "work directory for data and lakes (default: a fresh temp dir)")
	fs.BoolVar(&cfg.keep, "keep", cfg.keep, "keep the work directory")
	fs.StringVar(&cfg.out, "out", cfg.out, "write the table into this markdown file (BENCHMARKS.md), between the bench markers")
	fs.IntVar(&cfg.runs, "runs", cfg.runs, "runs of ours and of the reference per case (at least 3 for published figures)")
	casesFlag := fs.String("cases", casesText(cfg.cases), "cases to run, comma-separated")
	fs.Int64Var(&cfg.rowsCSV, "rows-csv", cfg.rowsCSV, "case 1: e-commerce CSV rows (10M is about 1.3 GB)")
	fs.Int64Var(&cfg.rowsNDJSON, "rows-ndjson", cfg.rowsNDJSON, "cases 2-4: energy NDJSON rows (10M is about 760 MB)")
	fs.Int64Var(&cfg.rowsMirror, "rows-mirror", cfg.rowsMirror, "case 5: rows of the mirrored table")
	fs.Int64Var(&cfg.rowsIncr, "rows-incr", cfg.rowsIncr, "case 6: energy rows of the full run, the increment is 1% of it (default: -rows-ndjson, the full pipeline run's data)")
	fs.Int64Var(&cfg.rowsMemory, "rows-memory", cfg.rowsMemory, "case 7: e-commerce CSV rows (37000000 is about 5 GB)")
	fs.Int64Var(&cfg.rowsS3, "rows-s3", cfg.rowsS3, "case 8: e-commerce CSV rows")
	fs.IntVar(&cfg.smallObjects, "small-objects", cfg.smallObjects, "case 10: NDJSON objects of 5 energy rows each")
	fs.IntVar(&cfg.growthSmall, "growth-small", cfg.growthSmall, "case 11: landed objects before the reference point's runs")
	fs.IntVar(&cfg.growthLarge, "growth-large", cfg.growthLarge, "case 11: landed objects before our point's runs")
	fs.IntVar(&cfg.growthRuns, "growth-runs", cfg.growthRuns, "case 11: rounds at each point (a run takes about 0.1-0.2 s, so a median needs more of them than -runs; 0 is -runs)")
	fs.IntVar(&cfg.streamBatches, "stream-batches", cfg.streamBatches, "case 12: micro-batches of the compressed day of streaming, one per simulated second (86400: the whole day, about 1.5 hours on a quiet 2-core machine; BENCH_STREAMDAY_PROGRESS=FILE logs its progress)")
	ratesFlag := fs.String("stream-rates", joinInts(cfg.streamRates), "case 9: events/s to try, ascending, comma-separated; the ladder stops at the first rate not sustained")
	fs.DurationVar(&cfg.streamDuration, "stream-duration", cfg.streamDuration, "case 9: how long each rate is held (after a warm-up)")
	fs.IntVar(&cfg.streamBatch, "stream-batch", cfg.streamBatch, "case 9: events per POST")
	fs.IntVar(&cfg.streamPosters, "stream-posters", cfg.streamPosters, "case 9: concurrent keep-alive HTTP posters")
	fs.StringVar(&cfg.memoryLimit, "memory-limit", cfg.memoryLimit, "duckdb memory_limit for ours and the references (default: the engine default, 2GB)")
	fs.IntVar(&cfg.threads, "threads", cfg.threads, "duckdb threads for ours and the references (default: all cores)")
	fs.StringVar(&cfg.memoryCase, "memory-case-limit", cfg.memoryCase, "case 7: duckdb memory_limit")
	fs.StringVar(&cfg.databaseURL, "database-url", cmp.Or(cfg.databaseURL, envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")), "PostgreSQL for case 5")
	fs.DurationVar(&cfg.timeout, "timeout", cfg.timeout, "limit per command")
	fs.StringVar(&cfg.underLoadMsg, "conditions", cfg.underLoadMsg, "a note on the machine's conditions for BENCHMARKS.md (e.g. \"taken under load\")")
	fs.StringVar(&cfg.resultsDir, "results", cfg.resultsDir, "write the run's raw output (JSON) into this directory (default: bench/results of the repository)")
	fs.StringVar(&cfg.render, "render", cfg.render, "render BENCHMARKS.md's table from this results file (JSON) instead of running; with -out, write it there")
	return fs, casesFlag, ratesFlag
}

// caseNumbers are the cases the bench knows, in the order they run.
var caseNumbers = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}

func allCases() map[int]bool {
	m := map[int]bool{}
	for _, n := range caseNumbers {
		m[n] = true
	}
	return m
}

// casesText is the -cases value selecting cases.
func casesText(cases map[int]bool) string {
	var ns []int
	for _, n := range caseNumbers {
		if cases[n] {
			ns = append(ns, n)
		}
	}
	return joinInts(ns)
}

func parseCases(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || !slices.Contains(caseNumbers, n) {
			return nil, fmt.Errorf("-cases: %q is not one of the case numbers %s", f, joinInts(caseNumbers))
		}
		out[n] = true
	}
	if len(out) == 0 {
		return nil, errors.New("-cases: no case selected")
	}
	return out, nil
}

// parseRates reads the -stream-rates ladder: positive events/s, ascending.
func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-stream-rates: %q is not a positive number of events/s", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("-stream-rates: %d after %d: want the rates ascending", n, out[len(out)-1])
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("-stream-rates: no rate given")
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// parseSize reads a DuckDB memory setting ("1GB", "512MiB") in bytes.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || f <= 0 {
				break
			}
			return int64(f * float64(u.mult)), nil
		}
	}
	return 0, fmt.Errorf("%q is not a memory size like 1GB or 512MiB", s)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
