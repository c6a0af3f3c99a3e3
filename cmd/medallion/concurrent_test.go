package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/layers"
)

// concurrentSource has no dedupe key: a raw object promoted twice shows
// as doubled ids.
const concurrentSource = `sources:
  m:
    format: ndjson
    schema:
      id: {type: int64, required: true}
      v:  {type: double}
`

// ingestObjects lands files raw objects of rows rows each, ids numbered
// from 0, and returns the number of rows.
func ingestObjects(t *testing.T, l *testLake, files, rows int) int {
	t.Helper()
	var paths []string
	for f := range files {
		var b strings.Builder
		for r := range rows {
			fmt.Fprintf(&b, `{"id":%d,"v":%d.5}`+"\n", f*rows+r, r)
		}
		p := filepath.Join(l.dir, fmt.Sprintf("in-%03d.ndjson", f))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	l.run(t, append([]string{"ingest", "m"}, paths...)...)
	return files * rows
}

// checkOnce asserts that bronze.m holds ids 0..n-1, each once.
func checkOnce(t *testing.T, l *testLake, n int) {
	t.Helper()
	got := l.query(t, "SELECT count(*) AS n, count(DISTINCT id) AS ids, min(id) AS lo, max(id) AS hi FROM bronze.m")
	want := fmt.Sprintf("n,ids,lo,hi\n%d,%d,0,%d\n", n, n, n-1)
	if got != want {
		t.Errorf("bronze.m: got\n%swant\n%s(every acknowledged row exactly once)", got, want)
	}
}

// TestConcurrentRunProcesses: two `medallion run bronze` at once (two cron
// entries, a cron and a person) promote each raw object once: the second
// waits for the first's table lease, then finds nothing new.
func TestConcurrentRunProcesses(t *testing.T) {
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			l := newTestLake(t, kind)
			l.writePipeline(t, concurrentSource)
			n := ingestObjects(t, l, 30, 50)
			var wg sync.WaitGroup
			outs := make([]string, 3)
			errs := make([]error, 3)
			for i := range outs {
				wg.Go(func() {
					var errOut string
					outs[i], errOut, errs[i] = l.exec(t, nil, "run", "bronze")
					outs[i] += errOut
				})
			}
			wg.Wait()
			for i := range outs {
				if errs[i] != nil {
					t.Errorf("run %d: %v\n%s", i, errs[i], outs[i])
				}
			}
			checkOnce(t, l, n)
		})
	}
}

// processState is the state letter of a process in /proc (T: stopped).
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// stallDiagnosis describes a stalled-holder test's lake for its failure
// message: where the stopped process is, what it said, the table's history
// and every lease object, so a failure under load says which of them was
// not where the test thought.
func stallDiagnosis(t *testing.T, l *testLake, pid int, out *bytes.Buffer) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "--- stopped process %d: state %q; its output so far:\n%s", pid, processState(pid), out.String())
	hist, herr, err := l.exec(t, nil, "history", "bronze.m")
	fmt.Fprintf(&b, "--- history bronze.m (%v):\n%s%s", err, hist, herr)
	ctx := t.Context()
	objs, err := l.store.List(ctx, jobs.LeasePrefix, "")
	fmt.Fprintf(&b, "--- lease objects (%v):\n", err)
	for _, o := range objs {
		rc, _, err := l.store.Get(ctx, o.Key)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", o.Key, err)
			continue
		}
		body, _ := io.ReadAll(rc)
		rc.Close()
		fmt.Fprintf(&b, "%s: %s\n", o.Key, bytes.TrimSpace(body))
	}
	fmt.Fprintf(&b, "--- now %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	return b.String()
}

// leaseExpiry is the recorded expiry of the newest generation of lease
// name.
func leaseExpiry(t *testing.T, l *testLake, name string) time.Time {
	t.Helper()
	objs, err := l.store.List(t.Context(), jobs.LeasePrefix+name+"/", "")
	if err != nil || len(objs) == 0 {
		t.Fatalf("lease %s: %d objects, %v", name, len(objs), err)
	}
	rc, _, err := l.store.Get(t.Context(), objs[len(objs)-1].Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var rec struct {
		Expires time.Time `json:"expires"`
	}
	if err := json.NewDecoder(rc).Decode(&rec); err != nil {
		t.Fatalf("lease %s: %v", objs[len(objs)-1].Key, err)
	}
	return rec.Expires
}

// TestStalledLeaseHolder: a `medallion run` that stalls (SIGSTOP) with its
// files written but not committed keeps its table from other runners until
// its lease expires; then a new run takes over and commits; when the
// stalled one continues, it must not commit: its lease is lost and its
// commits are fenced by the newer generation.
func TestStalledLeaseHolder(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to see a stopped process")
	}
	l := newTestLake(t, "local")
	l.writePipeline(t, concurrentSource)
	n := ingestObjects(t, l, 5, 100)
	const ttl = 4 * time.Second
	leaseEnv := []string{"MEDALLION_LEASE_TTL=" + ttl.String(), "MEDALLION_LEASE_MAX_SKEW=100ms"}

	stalled := exec.Command(medallionBin(t), "run", "bronze")
	stalled.Dir = l.dir
	stalled.Env = append(append(append([]string(nil), l.env...), leaseEnv...), crashpoint.StopEnv+"=bronze.after-files")
	var sOut bytes.Buffer
	stalled.Stdout, stalled.Stderr = &sOut, &sOut
	if err := stalled.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stalled.Process.Kill() })
	done := make(chan error, 1)
	go func() { done <- stalled.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for processState(stalled.Process.Pid) != "T" {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not stop at bronze.after-files\n%s", sOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stoppedAt := time.Now()

	// While its lease is valid, another run fails at once naming it. The
	// lease's recorded expiry, not the time the test saw the stop, says
	// whether it was valid: under load its last renewal may be well before
	// the stop.
	expires := leaseExpiry(t, l, jobs.TableLease(layers.TableRef{Layer: layers.Bronze, Name: "m"}))
	out, errOut, err := l.exec(t, leaseEnv, "run", "bronze", "--wait", "0s")
	var ee *exec.ExitError
	if time.Now().Before(expires) {
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(errOut, "lease held by another runner") ||
			!strings.Contains(errOut, fmt.Sprintf("-%d-", stalled.Process.Pid)) {
			t.Fatalf("run while the table's lease is held: %v, want exit 1 naming the holder (pid %d)\nstdout:\n%s\nstderr:\n%s\n%s",
				err, stalled.Process.Pid, out, errOut, stallDiagnosis(t, l, stalled.Process.Pid, &sOut))
		}
	}

	// Past the TTL, a new run takes over and promotes everything.
	time.Sleep(time.Until(stoppedAt.Add(ttl + 500*time.Millisecond)))
	out, errOut, err = l.exec(t, leaseEnv, "run", "bronze")
	if err != nil {
		t.Fatalf("run after the stalled holder's lease expired: %v\n%s%s", err, out, errOut)
	}
	versions := l.run(t, "history", "bronze.m")
	t.Logf("the run that took over said:\n%s%s\nhistory then:\n%s", out, errOut, versions)

	if err := stalled.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the continued run did not finish")
	}
	t.Logf("the continued stale run said:\n%s", sOut.String())
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(sOut.String(), "lease") {
		t.Errorf("the continued stale run: %v, want exit 1 saying its lease was lost or its commit fenced\n%s", err, stallDiagnosis(t, l, stalled.Process.Pid, &sOut))
	}
	if after := l.run(t, "history", "bronze.m"); after != versions {
		t.Errorf("the stale run committed after the new holder:\nbefore:\n%s\nafter:\n%s", versions, after)
	}
	checkOnce(t, l, n)
}

// TestServeStreamAndRun: `serve` in stream mode promotes what it receives
// every trigger while a cron `medallion run bronze` runs too: every
// acknowledged row is in bronze exactly once.
func TestServeStreamAndRun(t *testing.T) {
	l := newTestLake(t, "local")
	l.writePipeline(t, concurrentSource+"stream:\n  trigger: 100ms\n")
	s := startServe(t, l)
	const requests, per = 60, 40
	acked := make(chan int, 1)
	go func() {
		n := 0
		for i := range requests {
			body := new(strings.Builder)
			for r := range per {
				fmt.Fprintf(body, `{"id":%d,"v":1.5}`+"\n", i*per+r)
			}
			resp, err := httpPost(s.base+"/v1/ingest/m", body.String())
			if err == nil && resp/100 == 2 {
				n += per
			}
			time.Sleep(30 * time.Millisecond)
		}
		acked <- n
	}()
	for range 4 {
		out, errOut, err := l.exec(t, nil, "run", "bronze")
		// A run may give up waiting for the table while serve keeps it busy;
		// then it must say so. Either way nothing may be doubled.
		if err != nil && !strings.Contains(errOut, "lease held by another runner") {
			t.Errorf("run during serve: %v\n%s%s", err, out, errOut)
		}
	}
	n := <-acked
	if n != requests*per {
		t.Fatalf("%d of %d rows acknowledged", n, requests*per)
	}
	waitFor(t, "every acknowledged row in bronze", func() bool {
		return strings.HasSuffix(l.query(t, "SELECT count(*) >= "+fmt.Sprint(n)+" AS done FROM bronze.m"), "true\n")
	})
	checkOnce(t, l, n)
}

// httpPost posts an NDJSON body and returns the status code.
func httpPost(url, body string) (int, error) {
	resp, err := http.Post(url, "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
