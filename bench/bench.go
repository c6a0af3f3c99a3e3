package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
)

// minioStarter starts an S3 endpoint for case 8 and returns how to stop it.
type minioStarter func(bin string) (*testenv.MinIOServer, func(), error)

// bench is one run of the benchmarks.
type bench struct {
	cfg  config
	self string // this executable, re-executed for the references
	bin  string // the medallion binary under test
	work string
	rs   refSettings
	seq  int

	data        map[string]dataFile
	bronzeTmpl  string // a run dir whose lake has bronze.meters of rowsNDJSON rows (silver not run)
	silverTmpl  string // the same with silver.meter_usage_1m
	duckVersion string
}

// dataFile is a generated input.
type dataFile struct {
	path  string
	rows  int64
	bytes int64
}

// run runs the selected cases and returns the report.
func run(ctx context.Context, cfg config) (*report, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	work := cfg.workDir
	if work == "" {
		if work, err = os.MkdirTemp("", "medallion-bench-"); err != nil {
			return nil, err
		}
		if !cfg.keep {
			defer os.RemoveAll(work)
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	if work, err = filepath.Abs(work); err != nil {
		return nil, err
	}
	if cfg.rowsIncr == 0 {
		cfg.rowsIncr = cfg.rowsNDJSON
	}
	b := &bench{cfg: cfg, self: self, work: work, data: map[string]dataFile{},
		rs: refSettings{threads: cfg.threads, memoryLimit: cfg.memoryLimit}}
	began := time.Now()
	if b.bin, err = b.medallionBinary(ctx); err != nil {
		return nil, err
	}
	b.duckVersion = b.duckDBVersion(ctx)
	rep := newReport(cfg)
	rep.duckdb = b.duckVersion
	if cfg.medallion != "" {
		rep.commit = b.measuredCommit(ctx, rep.commit)
	}
	cases := []struct {
		id  int
		run func(context.Context) *result
	}{
		{1, b.caseCSV}, {2, b.caseNDJSON}, {3, b.caseSilver}, {4, b.caseGold}, {5, b.caseMirror},
		{6, b.caseIncremental}, {7, b.caseMemory}, {8, b.caseS3}, {9, b.caseStream},
		{10, b.caseSmallObjects}, {11, b.caseGrowth}, {12, b.caseStreamDay}, {13, b.caseMirrorIncremental},
	}
	for _, c := range cases {
		if !cfg.cases[c.id] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		b.logf("case %d: start", c.id)
		r := c.run(ctx)
		b.logf("case %d: done in %s: %s", c.id, time.Since(start).Round(time.Second), r.summary())
		rep.results = append(rep.results, r)
	}
	rep.elapsed = time.Since(began)
	rep.mach.LoadEnd = loadAvg()
	return rep, nil
}

func (b *bench) logf(format string, args ...any) {
	if b.cfg.progress != nil {
		fmt.Fprintf(b.cfg.progress, "bench: "+format+"\n", args...)
	}
}

// medallionBinary returns the binary to measure: -medallion, or a fresh
// build of ./cmd/medallion (so a stale .bin/medallion is never measured by
// accident).
func (b *bench) medallionBinary(ctx context.Context) (string, error) {
	if b.cfg.medallion != "" {
		p, err := filepath.Abs(b.cfg.medallion)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("medallion binary: %w (build it with make build)", err)
		}
		return p, nil
	}
	root, err := testenv.FindRepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(b.work, "medallion")
	b.logf("building ./cmd/medallion into %s", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/medallion")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build medallion: %v\n%s", err, msg)
	}
	return out, nil
}

// measuredCommit is the commit the -medallion binary was built from, so
// that a run measuring an older or newer build than the checkout (an A/B
// of two binaries) is recorded under the code it measured; head (the
// checkout's) when the binary does not say.
func (b *bench) measuredCommit(ctx context.Context, head string) string {
	_, out, err := measure(ctx, time.Minute, command{bin: b.bin, args: []string{"version"}})
	if err != nil {
		b.logf("%s version: %v; the results are named after the checkout (%s)", b.bin, err, head)
		return head
	}
	c, ok := binaryCommit(lastLine(out))
	if !ok {
		b.logf("%s does not name its commit (%q); the results are named after the checkout (%s)", b.bin, lastLine(out), head)
		return head
	}
	if c != head {
		b.logf("measuring %s, built at %s; the checkout is at %s", b.bin, c, head)
	}
	return c
}

func (b *bench) duckDBVersion(ctx context.Context) string {
	c := command{bin: b.self, args: []string{"-reference", "version", "-version"}}
	_, out, err := measure(ctx, time.Minute, c)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(lastLine(out))
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// generate writes sample data with `medallion generate` (once per kind,
// size, start and seed) and reads it once so it is in the page cache.
func (b *bench) generate(ctx context.Context, kind string, rows int64, start string, seed int) (dataFile, error) {
	key := fmt.Sprintf("%s-%d-%s-%d", kind, rows, strings.NewReplacer(":", "", "-", "").Replace(start), seed)
	if d, ok := b.data[key]; ok {
		return d, nil
	}
	ext := ".ndjson"
	if kind == "ecommerce" {
		ext = ".csv"
	}
	dir := filepath.Join(b.work, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dataFile{}, err
	}
	path := filepath.Join(dir, key+ext)
	args := []string{"generate", kind, "--rows", strconv.FormatInt(rows, 10), "--out", path, "--seed", strconv.Itoa(seed)}
	if start != "" {
		args = append(args, "--start", start)
	}
	b.logf("generating %d %s rows", rows, kind)
	if _, _, err := measure(ctx, b.cfg.timeout, command{bin: b.bin, args: args, dir: dir}); err != nil {
		return dataFile{}, fmt.Errorf("generate: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return dataFile{}, err
	}
	if err := warm(path); err != nil {
		return dataFile{}, err
	}
	d := dataFile{path: path, rows: rows, bytes: fi.Size()}
	b.data[key] = d
	return d, nil
}

// warm reads a file so that both sides find it in the page cache.
func warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// runDir creates a fresh run directory with a pipeline file; its lake is
// empty, or a hard-linked copy of from's lake (lake files are immutable:
// writers create new files, so links are safe and cost no copy).
func (b *bench) runDir(name string, p pipeline, from string) (string, error) {
	b.seq++
	dir := filepath.Join(b.work, "runs", fmt.Sprintf("%03d-%s", b.seq, name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if from != "" {
		if err := linkTree(filepath.Join(from, "lake"), filepath.Join(dir, "lake")); err != nil {
			return "", fmt.Errorf("copy lake: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(p.yaml()), 0o644); err != nil {
		return "", err
	}
	if local, ok := strings.CutPrefix(p.lake, "file://"); ok {
		// What `medallion init` writes: commands refuse a lake without it.
		marker := filepath.Join(dir, local, lakeMarker)
		if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(marker, []byte("{\"created_by\":\"medallion bench\"}\n"), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// lakeMarker is the object `medallion init` writes to mark a lake.
const lakeMarker = "_medallion/lake.json"

// linkTree recreates the tree src at dst with hard links (copies when a
// link is refused).
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if err := os.Link(path, target); err == nil {
			return nil
		}
		return copyFile(path, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// medallion runs one medallion command in dir and measures it.
func (b *bench) medallion(ctx context.Context, dir string, env []string, args ...string) (sample, string, error) {
	return measure(ctx, b.cfg.timeout, command{bin: b.bin, args: args, dir: dir, env: env})
}

// ingestAndBronze is `medallion ingest SRC FILE` then `medallion run bronze`
// in dir: one timed run of a CSV or NDJSON to bronze case.
func (b *bench) ingestAndBronze(ctx context.Context, dir string, env []string, source, file string) (sample, error) {
	s1, _, err := b.medallion(ctx, dir, env, "ingest", source, file)
	if err != nil {
		return sample{}, err
	}
	s2, _, err := b.medallion(ctx, dir, env, "run", "bronze")
	if err != nil {
		return sample{}, err
	}
	return s1.plus(s2), nil
}

// reference runs a reference subprocess.
func (b *bench) reference(ctx context.Context, name string, rs refSettings, stmts ...string) (sample, error) {
	s, _, err := measure(ctx, b.cfg.timeout, referenceCommand(b.self, name, rs, stmts...))
	return s, err
}

// alternate runs ours and the reference runs times each, alternating and
// swapping which goes first every round so neither side always finds a
// warmer machine.
func (b *bench) alternate(r *result, ours, ref func(i int) (sample, error)) error {
	for i := 0; i < b.cfg.runs; i++ {
		steps := []struct {
			name string
			f    func(int) (sample, error)
			dst  *[]sample
		}{{"ours", ours, &r.ours}, {"reference", ref, &r.ref}}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, s := range steps {
			smp, err := s.f(i)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", s.name, i+1, err)
			}
			b.logf("case %d: %s run %d: %s, peak RSS %s", r.id, s.name, i+1, smp.wall.Round(time.Millisecond), mib(smp.rss))
			*s.dst = append(*s.dst, smp)
		}
	}
	return nil
}

// parquetFiles lists the data files of a table directory (not its log, not
// silver's _state).
func parquetFiles(tableDir string) ([]string, int64, error) {
	var out []string
	var size int64
	err := filepath.WalkDir(tableDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), "_") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".parquet") {
			out = append(out, path)
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no parquet files under %s", tableDir)
	}
	return out, size, err
}

// queryInt runs a one-value query in a reference subprocess (setup only).
func (b *bench) queryInt(ctx context.Context, q string) (int64, error) {
	c := command{bin: b.self, args: []string{"-reference", "query", "-query", q}}
	_, out, err := measure(ctx, b.cfg.timeout, c)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(lastLine(out)), 10, 64)
}

// psql runs one psql command against the bench database.
func (b *bench) psql(ctx context.Context, sql string) (sample, error) {
	s, _, err := measure(ctx, b.cfg.timeout, command{bin: "psql", args: []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", b.cfg.databaseURL, "-c", sql}})
	return s, err
}
