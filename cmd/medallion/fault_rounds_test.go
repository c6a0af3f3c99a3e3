package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake/delta"
)

// streamMode makes serve promote what it receives every trigger.
const streamMode = "stream:\n  trigger: 200ms\n"

// roundIngest: clients post to serve while the lake drops, cuts and refuses
// requests; then bronze runs twice under the same faults (each run may
// fail, saying why); then the faults stop and one run settles.
func roundIngest(t *testing.T, s *faultSuite) {
	l := s.newFaultLake(t, true, "")
	srv := startServe(t, l.testLake)
	c, reqs, per := 4, 25, 20
	if s.short {
		c, reqs, per = 2, 5, 10
	}
	// A burst first: the replies to a dozen manifest PUTs are lost after
	// MinIO stored them, more than the client's retries, so a batch's
	// outcome is unknown to serve (issue 13, item 1).
	s.proxy.Add(t, testenv.FaultRule{Method: "PUT", Key: regexp.MustCompile(`^raw/m/_manifest/`), Kind: testenv.DropReply, Count: 12})
	s.s3Faults(t, 0.08)
	s.clients(t, l, []string{srv.base}, c, reqs, per, nil).Wait()
	stopServe(t, srv)
	// Then the same for bronze's commits: its log entry lands but every
	// reply to it is lost.
	s.proxy.Clear()
	s.proxy.Add(t, testenv.FaultRule{Method: "PUT", Key: regexp.MustCompile(`^bronze/m/_delta_log/.*\.json$`), Kind: testenv.DropReply, Count: 12})
	s.s3Faults(t, 0.08)
	for range 2 {
		_ = s.runMay(t, l, nil, "run")
	}
	s.settle(t, l)
	s.check(t, l)
}

// roundConcurrentRuns: three `medallion run` processes at once over the
// same landed objects, first with latency only (which widens their races;
// errors would end some runs early), then under every fault.
func roundConcurrentRuns(t *testing.T, s *faultSuite) {
	l := s.newFaultLake(t, true, "")
	for _, faults := range []func(){func() { s.latency(t) }, func() { s.s3Faults(t, 0.03) }} {
		srv := startServe(t, l.testLake)
		s.clients(t, l, []string{srv.base}, 4, 10, 20, nil).Wait()
		stopServe(t, srv)
		faults()
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { _ = s.runMay(t, l, nil, "run", "--wait", "2m") })
		}
		wg.Wait()
		s.proxy.Clear()
	}
	s.settle(t, l)
	s.check(t, l)
}

// roundServeAndRun: serve in stream mode promotes what clients post while
// cron-like `medallion run bronze` processes run back to back, under
// latency and a few faults.
func roundServeAndRun(t *testing.T, s *faultSuite) {
	l := s.newFaultLake(t, true, streamMode)
	srv := startServe(t, l.testLake)
	s.latency(t)
	s.s3Faults(t, 0.01)
	wg := s.clients(t, l, []string{srv.base}, 3, 40, 20, nil)
	posting := make(chan struct{})
	go func() { wg.Wait(); close(posting) }()
	for runs := 0; runs < 3 || isOpen(posting); runs++ {
		_ = s.runMay(t, l, nil, "run", "bronze")
	}
	s.proxy.Clear()
	stopServe(t, srv)
	s.settle(t, l)
	s.check(t, l)
}

// roundTwoServes: two serve processes in stream mode on one lake, clients
// posting to both, under light faults.
func roundTwoServes(t *testing.T, s *faultSuite) {
	l := s.newFaultLake(t, false, streamMode)
	a, b := startServe(t, l.testLake), startServe(t, l.testLake)
	s.s3Faults(t, 0.02)
	s.clients(t, l, []string{a.base, b.base}, 4, 20, 20, nil).Wait()
	s.proxy.Clear()
	stopServe(t, a)
	stopServe(t, b)
	s.settle(t, l)
	s.check(t, l)
}

// roundStalledHolder: a `medallion run` stops (SIGSTOP, at its crash point
// after its files are uploaded) holding the table's lease; past its TTL a
// new run takes over; continued, the stale one must not commit.
func roundStalledHolder(t *testing.T, s *faultSuite) {
	l := s.newFaultLake(t, false, "")
	srv := startServe(t, l.testLake)
	s.clients(t, l, []string{srv.base}, 2, 10, 20, nil).Wait()
	stopServe(t, srv)
	const ttl = 3 * time.Second
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
	waitFor(t, "the run to stop at bronze.after-files", func() bool { return processState(stalled.Process.Pid) == "T" })
	s.mu.Lock()
	s.own["sigstop"]++
	s.mu.Unlock()

	time.Sleep(ttl + 500*time.Millisecond)
	s.s3Faults(t, 0.02)
	tOut, tErrOut, tErr := l.exec(t, leaseEnv, "run", "bronze")
	s.proxy.Clear()
	// Diagnostics, and whether the run taking over committed: it may have
	// failed under the faults after its commit landed (the reply to the
	// log PUT lost), and before the stalled run's continuation bronze.m
	// has no commit of anyone else. When it failed before committing,
	// history says the table has no commits yet, with exit 1.
	history, committed, hErr := l.history(t, "bronze.m")
	if hErr != nil {
		t.Error(hErr) // the faults are cleared: history must work
	}
	if err := stalled.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("the continued run did not finish")
	}
	s.refusals++
	t.Logf("the run taking over: %v %s; committed: %t", tErr, lastLine(tErrOut), committed)
	t.Logf("the continued stale holder: %v %s", err, lastLine(sOut.String()))
	stale := func(want string) {
		t.Errorf("the continued stale run: %v, want %s\n%s"+
			"the run that took over (%v):\n%s%s\nbronze.m's history after it:\n%s\nand now:\n%s",
			err, want, sOut.String(), tErr, tOut, tErrOut, history, l.historyText(t, "bronze.m"))
	}
	refused := exitCode(err) == 1 && strings.Contains(sOut.String(), "lease")
	switch {
	case tErr == nil || committed:
		// A newer holder committed: the stale one's lease is lost and its
		// commit fenced.
		if !refused {
			stale("exit 1 saying its lease was lost or its commit fenced")
		}
	default:
		// The run taking over failed before committing: no newer holder
		// committed, and the continued one may, unless it notices first
		// that its lease expired. Either way check() finds each row once.
		if err != nil && !refused {
			stale("exit 0, or exit 1 saying its lease was lost")
		}
	}
	if tErr != nil && !strings.Contains(tErrOut, "medallion run: ") {
		t.Errorf("the run taking over failed without saying what and why (%v):\n%s%s", tErr, tOut, tErrOut)
	}
	s.settle(t, l)
	s.check(t, l)
}

// historyText is `medallion history TABLE` for a failure message: its
// output, or what it printed when it failed (a table with no commits yet).
func (l *testLake) historyText(t *testing.T, table string) string {
	text, _, _ := l.history(t, table)
	return text
}

// history runs `medallion history TABLE`: its text (historyText), whether
// the table has commits, and its error unless it said the table has none.
func (l *testLake) history(t *testing.T, table string) (text string, committed bool, err error) {
	t.Helper()
	out, errOut, err := l.exec(t, nil, "history", table)
	switch {
	case err == nil:
		return out, true, nil
	case exitCode(err) == 1 && strings.Contains(errOut, "has no commits yet"):
		return fmt.Sprintf("(history %s: %v) %s%s", table, err, out, errOut), false, nil
	default:
		return fmt.Sprintf("(history %s: %v) %s%s", table, err, out, errOut), false, fmt.Errorf("medallion history %s: %w\n%s%s", table, err, out, errOut)
	}
}

// landInRuns posts n requests, each promoted by its own bronze run, so
// bronze.m has n data files.
func (s *faultSuite) landInRuns(t *testing.T, l *faultLake, n int) {
	srv := startServe(t, l.testLake)
	for range n {
		s.postRows(t, l, srv.base, 30)
		l.run(t, "run", "bronze")
	}
	stopServe(t, srv)
}

// roundCorruptLake: a truncated, a flipped and a missing bronze data file;
// `medallion verify` exits 1 naming each; restored, the lake verifies and
// holds every row.
func roundCorruptLake(t *testing.T, s *faultSuite) {
	l := s.newFaultLake(t, false, "")
	s.landInRuns(t, l, 3)
	ctx := context.Background()
	snap, err := delta.Open(l.store, "bronze/m").Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Files) < 3 {
		t.Fatalf("bronze.m has %d data files, want 3", len(snap.Files))
	}
	keys := make([]string, 3)
	saved := map[string][]byte{}
	for i := range keys {
		keys[i] = "bronze/m/" + snap.Files[i].Path
		saved[keys[i]] = getObject(t, l.store, keys[i])
	}
	put := func(key string, b []byte) {
		if _, err := l.store.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	put(keys[0], saved[keys[0]][:len(saved[keys[0]])*2/3])
	flipped := bytes.Clone(saved[keys[1]])
	off := s.rng.IntN(len(flipped) - 16)
	for i := off; i < off+16; i++ {
		flipped[i] ^= 0xa5
	}
	put(keys[1], flipped)
	if err := l.store.Delete(ctx, keys[2]); err != nil {
		t.Fatal(err)
	}
	s.own["lake-truncated"]++
	s.own["lake-flipped"]++
	s.own["lake-missing"]++

	out, errOut, err := l.exec(t, nil, "verify", "bronze.m")
	s.refusals++
	t.Logf("verify over damaged files:\n%s%s", out, errOut)
	if exitCode(err) != 1 {
		t.Errorf("verify over damaged files: %v, want exit 1\n%s%s", err, out, errOut)
	}
	for i, what := range []string{"truncated", "flipped (at byte " + strconv.Itoa(off) + ")", "missing"} {
		if !strings.Contains(out+errOut, keys[i]) {
			t.Errorf("verify does not name the %s file %s:\n%s%s", what, keys[i], out, errOut)
		}
	}
	for _, k := range keys {
		put(k, saved[k])
	}
	l.run(t, "verify", "bronze.m")
	s.check(t, l)
}

// roundCorruptRaw: landed raw objects truncated or edited afterwards;
// bronze refuses, naming the object, and commits nothing of it; restored,
// every row is promoted once.
func roundCorruptRaw(t *testing.T, s *faultSuite) {
	l := s.newFaultLake(t, false, "")
	srv := startServe(t, l.testLake)
	for range 4 {
		s.postRows(t, l, srv.base, 25)
	}
	stopServe(t, srv)
	ctx := context.Background()
	objs, err := l.store.List(ctx, "raw/m/", "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		if !strings.Contains(o.Key, "/_") {
			keys = append(keys, o.Key)
		}
	}
	sort.Strings(keys)
	if len(keys) < 2 {
		t.Fatalf("%d raw objects, want at least 2: %v", len(keys), keys)
	}
	bad := []string{keys[0], keys[len(keys)-1]}
	saved := map[string][]byte{}
	for _, k := range bad {
		saved[k] = getObject(t, l.store, k)
	}
	cut := saved[bad[0]][:len(saved[bad[0]])/2]
	edited := bytes.Clone(saved[bad[1]])
	edited[len(edited)/2] ^= 0x01 // same size, one bit
	for k, b := range map[string][]byte{bad[0]: cut, bad[1]: edited} {
		if _, err := l.store.Put(ctx, k, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	s.own["raw-truncated"]++
	s.own["raw-flipped"]++

	out, errOut, err := l.exec(t, nil, "run", "bronze")
	s.refusals++
	t.Logf("bronze over damaged raw objects: %s", firstLine(errOut))
	if exitCode(err) != 1 || (!strings.Contains(errOut, bad[0]) && !strings.Contains(errOut, bad[1])) {
		t.Errorf("bronze over damaged raw objects: %v, want exit 1 naming %s or %s\nstdout:\n%s\nstderr:\n%s", err, bad[0], bad[1], out, errOut)
	}
	count := map[int64]int{}
	if out, errOut, err := l.exec(t, nil, "tables"); err != nil || !strings.Contains(out+errOut, "bronze.m") {
		t.Fatalf("medallion tables: %v\n%s%s", err, out, errOut)
	} else if !strings.HasSuffix(tableLine(t, out, "bronze.m"), "yet") {
		count, _ = l.bronzeRows(t) // bronze committed the good objects
	}
	for _, k := range bad {
		for _, id := range idsIn(t, saved[k]) {
			if count[id] > 0 {
				t.Errorf("id %d of the damaged raw object %s was promoted", id, k)
			}
		}
	}
	for k, b := range saved {
		if _, err := l.store.Put(ctx, k, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	s.settle(t, l)
	s.check(t, l)
}

var idField = regexp.MustCompile(`"id":(\d+)`)

// idsIn lists the ids of an NDJSON object's rows.
func idsIn(t *testing.T, b []byte) []int64 {
	t.Helper()
	var ids []int64
	for _, m := range idField.FindAllSubmatch(b, -1) {
		id, err := strconv.ParseInt(string(m[1]), 10, 64)
		if err != nil {
			t.Fatal(fmt.Errorf("raw id %q: %w", m[1], err))
		}
		ids = append(ids, id)
	}
	return ids
}

// isOpen reports whether ch is not closed yet.
func isOpen(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return false
	default:
		return true
	}
}
