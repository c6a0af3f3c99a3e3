package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/bronze"
)

// binDir holds the medallion binary built for this test binary (see
// medallionBin); TestMain removes it.
var binDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "medallion-bin-") })

// builtBin builds the real binary once per test binary, on first use, so
// that tests which do not need it (most of package main) do not pay for the
// link.
var builtBin = sync.OnceValues(func() (string, error) {
	dir, err := binDir()
	if err != nil {
		return "", err
	}
	root, err := testenv.FindRepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "medallion")
	cmd := exec.Command("go", "build", "-tags", "crashpoints", "-o", bin, "./cmd/medallion")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/medallion: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := binDir(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// medallionBin returns the path of the real medallion binary.
func medallionBin(t *testing.T) string {
	t.Helper()
	bin, err := builtBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// testLake is one lake (a local directory or a fresh MinIO bucket) and a
// working directory whose medallion.yaml points at it, for running the real
// binary.
type testLake struct {
	kind  string // "local" or "s3"
	dir   string // working directory of the commands
	url   string // lake URL
	store lake.Store
	env   []string // environment of the commands
}

// s3Block is the s3: section of a pipeline file on MinIO; the values come
// from the environment (testenv's MinIOServer.Env). In a YAML flow mapping
// "${" must be quoted: '{' is a flow indicator.
const s3Block = `s3: {endpoint: "${S3_ENDPOINT}", access_key: "${S3_ACCESS_KEY}", secret_key: "${S3_SECRET_KEY}"}` + "\n"

// newTestLake makes an empty lake of the given kind and a working directory
// for it; it writes no pipeline file (see writePipeline, or `medallion init`).
func newTestLake(t *testing.T, kind string) *testLake {
	t.Helper()
	dir := t.TempDir()
	l := &testLake{kind: kind, dir: dir}
	env := []string{"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "TMPDIR=" + t.TempDir()}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MEDALLION_") || strings.HasPrefix(k, "S3_") || k == "XDG_CACHE_HOME" || k == "TMPDIR" || k == "DATABASE_URL" {
			continue
		}
		env = append(env, kv)
	}
	switch kind {
	case "local":
		st, err := lake.NewLocal(filepath.Join(dir, "lake"))
		if err != nil {
			t.Fatal(err)
		}
		l.store, l.url = st, "file://"+filepath.Join(dir, "lake")
	case "s3":
		srv := testenv.MinIO(t)
		l.store, _, l.url = testenv.S3Store(t)
		env = append(env, srv.Env()...)
	default:
		t.Fatalf("unknown lake kind %q", kind)
	}
	l.env = env
	markLake(t, l.store)
	return l
}

// writePipeline writes medallion.yaml in the lake's directory: the lake
// line, the s3 section on MinIO, then body.
func (l *testLake) writePipeline(t *testing.T, body string) {
	t.Helper()
	y := "lake: " + l.url + "\n"
	if l.kind == "s3" {
		y += s3Block
	}
	if err := os.WriteFile(filepath.Join(l.dir, "medallion.yaml"), []byte(y+body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// exec runs the binary in the lake's directory with extra environment
// variables; it returns stdout, stderr and the wait error.
func (l *testLake) exec(t *testing.T, extraEnv []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, medallionBin(t), args...)
	cmd.Dir = l.dir
	cmd.Env = append(append([]string(nil), l.env...), extraEnv...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// run runs the binary and fails the test unless it exits 0.
func (l *testLake) run(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := l.exec(t, nil, args...)
	if err != nil {
		t.Fatalf("medallion %s (%s lake): %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), l.kind, err, out, errOut)
	}
	return out
}

// query runs `medallion query --format csv`.
func (l *testLake) query(t *testing.T, sql string) string {
	t.Helper()
	return l.run(t, "query", "--format", "csv", sql)
}

// cloneTo copies every object of the lake into an empty lake of the same
// kind and writes the same pipeline body there: both then hold the same raw
// objects with the same manifests (received times included).
func (l *testLake) cloneTo(t *testing.T, body string) *testLake {
	t.Helper()
	c := newTestLake(t, l.kind)
	ctx := context.Background()
	objs, err := l.store.List(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		rc, info, err := l.store.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.store.Put(ctx, o.Key, rc, info.Size)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	c.writePipeline(t, body)
	return c
}

// tableLine returns the `medallion tables` fields of one table that do not
// depend on when or how the files were written: table, layer, rows, files
// and version (not the bytes: DuckDB may order rows differently within a
// file, which changes its compressed size; not the last commit time).
func tableLine(t *testing.T, tablesOut, table string) string {
	t.Helper()
	for _, line := range strings.Split(tablesOut, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == table {
			if f[len(f)-1] == "yet" || len(f) < 8 {
				return strings.Join(f, " ")
			}
			// table layer rows files N UNIT version time
			return strings.Join([]string{f[0], f[1], f[2], f[3], "v" + f[len(f)-2]}, " ")
		}
	}
	t.Fatalf("no %s in `medallion tables`:\n%s", table, tablesOut)
	return ""
}

// lineStarting returns the first line of out starting with prefix.
func lineStarting(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no line starting with %q in:\n%s", prefix, out)
	return ""
}

// crashSource is the bronze-only pipeline of the crash tests: the starter's
// meters source (dedupe, a derived column, quarantine).
const crashSource = `sources:
  meters:
    format: ndjson
    schema:
      timestamp:    {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id:     {type: string, required: true}
      energy_usage: {type: double, min: 0}
    dedupe: [meter_id, timestamp]
    derive:
      anomaly: energy_usage > 100
    on_error: quarantine
`

// crashInputs writes three NDJSON files from generated energy readings with
// bad rows: the second repeats lines of the first (duplicates against rows
// already in bronze or in the same batch) and the third repeats lines of
// the second (duplicates within a batch).
func crashInputs(t *testing.T, l *testLake) [3]string {
	t.Helper()
	gen := filepath.Join(l.dir, "all.ndjson")
	l.run(t, "generate", "energy", "--rows", "1500", "--bad-fraction", "0.05", "--seed", "3", "--out", gen)
	b, err := os.ReadFile(gen)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	n := len(lines) / 3
	parts := [3][]string{lines[:n], lines[n : 2*n], lines[2*n:]}
	parts[1] = append(parts[1], parts[0][:20]...)
	parts[2] = append(parts[2], parts[1][:10]...)
	var files [3]string
	for i, p := range parts {
		files[i] = filepath.Join(l.dir, fmt.Sprintf("part-%d.ndjson", i+1))
		if err := os.WriteFile(files[i], []byte(strings.Join(p, "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// crashQueries are the contents compared between a crashed-and-rerun lake
// and an uninterrupted one. Every bronze column is compared, lineage
// (_source_file, _ingested_at, _batch_id) included; quarantined_at is the
// wall-clock time of the run that quarantined the row, so it is left out.
var crashQueries = []string{
	"SELECT * FROM bronze.meters ORDER BY ALL",
	"SELECT * EXCLUDE (quarantined_at) FROM bronze._quarantine ORDER BY ALL",
}

// crashLeaseEnv gives the runs of a crash test short leases: the lease of
// a killed run blocks its tables until it expires (the rerun waits for it).
var crashLeaseEnv = []string{"MEDALLION_LEASE_TTL=4s", "MEDALLION_LEASE_MAX_SKEW=100ms"}

// TestBronzeCrash kills `medallion run bronze` with SIGKILL at each kill
// point, on a local lake and on MinIO, on a first run (no table yet) and on
// a later run (the bronze table holds an earlier batch, so dedupe reads it),
// then reruns it: bronze.meters and bronze._quarantine must hold exactly
// what an uninterrupted run on a copy of the same lake holds, and the
// rerun's accounting line must be the uninterrupted run's.
func TestBronzeCrash(t *testing.T) {
	points := []string{"bronze.before-files", "bronze.after-files", "bronze.after-quarantine", "bronze.after-commit"}
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			for _, scenario := range []string{"first-run", "later-run"} {
				t.Run(scenario, func(t *testing.T) {
					base := newTestLake(t, kind)
					base.writePipeline(t, crashSource)
					files := crashInputs(t, base)
					if scenario == "first-run" {
						base.run(t, "ingest", "meters", files[0], files[1], files[2])
					} else {
						base.run(t, "ingest", "meters", files[0])
						base.run(t, "run", "bronze")
						base.run(t, "ingest", "meters", files[1], files[2])
					}

					ref := base.cloneTo(t, crashSource)
					refOut := ref.run(t, "run", "bronze")
					refLine := lineStarting(t, refOut, "bronze.meters: ")
					if !strings.Contains(refLine, " quarantined + 0 dropped + ") || strings.Contains(refLine, " 0 quarantined") ||
						strings.Contains(refLine, "+ 0 duplicates") {
						t.Fatalf("the input should give quarantined rows and duplicates: %s", refLine)
					}
					var want []string
					for _, q := range crashQueries {
						want = append(want, ref.query(t, q))
					}
					refTables := ref.run(t, "tables")

					for _, point := range points {
						t.Run(point, func(t *testing.T) {
							t.Parallel()
							l := base.cloneTo(t, crashSource)
							// The killed run's table lease outlives it until
							// its TTL: short, so the rerun waits briefly.
							l.env = append(l.env, crashLeaseEnv...)
							out, errOut, err := l.exec(t, []string{bronze.CrashEnv + "=" + point}, "run", "bronze")
							var ee *exec.ExitError
							if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
								t.Fatalf("run with %s=%s: %v, want death by SIGKILL\nstdout:\n%s\nstderr:\n%s", bronze.CrashEnv, point, err, out, errOut)
							}
							afterCrash := l.run(t, "tables")

							rerun := l.run(t, "run", "bronze")
							line := lineStarting(t, rerun, "bronze.meters: ")
							if point == "bronze.after-commit" {
								// Everything was committed before the kill:
								// the rerun finds nothing new and commits nothing.
								if line != "bronze.meters: nothing new" {
									t.Errorf("rerun after a crash after the commit: %q, want nothing new", line)
								}
								after := l.run(t, "tables")
								for _, tbl := range []string{"bronze.meters", "bronze._quarantine"} {
									if a, b := tableLine(t, afterCrash, tbl), tableLine(t, after, tbl); a != b {
										t.Errorf("the rerun committed to %s: %q -> %q", tbl, a, b)
									}
								}
							} else if line != refLine {
								t.Errorf("rerun accounting:\n  %s\nuninterrupted run:\n  %s", line, refLine)
							}
							for i, q := range crashQueries {
								if got := l.query(t, q); got != want[i] {
									t.Errorf("%s differs from an uninterrupted run\n--- uninterrupted\n%s\n--- crashed at %s and rerun\n%s", q, want[i], point, got)
								}
							}
							tables := l.run(t, "tables")
							for _, tbl := range []string{"bronze.meters", "bronze._quarantine"} {
								if a, b := tableLine(t, refTables, tbl), tableLine(t, tables, tbl); a != b {
									t.Errorf("tables: %q, uninterrupted run %q", b, a)
								}
							}
						})
					}
				})
			}
		})
	}
}
