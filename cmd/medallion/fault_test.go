package main

// The fault suite: the real binary against a real MinIO through the fault
// proxy of internal/testenv, in rounds, each ending with the invariant of
// issue 13: every acknowledged row is in bronze exactly once with the value
// it was sent, the PostgreSQL mirror equals the lake, and every refusal
// names what and why. The bad-value corpus (every type, with the expected
// reason for each value) is layers/bronze/corpus_test.go; it is not
// repeated here. See docs/faults.md.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

// faultSeedEnv overrides the suite's seed, to repeat a run's faults and
// values: MEDALLION_FAULT_SEED=1234 go test -run TestFaultSuite -v ./cmd/medallion
const faultSeedEnv = "MEDALLION_FAULT_SEED"

// faultSource has no dedupe key, so a row landed or promoted twice shows as
// a doubled id; s carries awkward text (kept untrimmed: the default trims,
// see docs/types.md), v a double whose every bit counts, and p partitions
// the table with values a directory name must escape, and NULL.
const faultSource = `sources:
  m:
    format: ndjson
    schema:
      id: {type: int64, required: true}
      v:  {type: double}
      s:  {type: string, trim: false}
      p:  {type: string}
    partition_by: p
`

// sentRow is what a client sent for one id.
type sentRow struct {
	v float64
	s string
	p *string // nil: sent without p, NULL
}

// same reports whether two rows hold the same values.
func (r sentRow) same(o sentRow) bool {
	return r.v == o.v && r.s == o.s && (r.p == nil) == (o.p == nil) && (r.p == nil || *r.p == *o.p)
}

func (r sentRow) String() string {
	p := "NULL"
	if r.p != nil {
		p = strconv.Quote(*r.p)
	}
	return fmt.Sprintf("v=%v s=%q p=%s", r.v, r.s, p)
}

// faultSuite holds what every round shares: the seeded generator, the one
// proxy in front of the test MinIO, and the figures.
type faultSuite struct {
	seed  uint64
	rng   *rand.Rand
	mu    sync.Mutex // rng is used by concurrent clients
	proxy *testenv.FaultProxy
	dsn   string
	short bool

	rounds   int
	own      map[string]int // faults the suite injects itself (signals, corruption)
	acked    int
	found    int
	doubled  int
	lost     int
	wrong    int
	refusals int
	nextID   int64
}

// faultSeed is $MEDALLION_FAULT_SEED, or one from the clock.
func faultSeed(t *testing.T) uint64 {
	if s := os.Getenv(faultSeedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: not an unsigned integer", faultSeedEnv, s)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// TestFaultSuite runs the fault rounds in order on fresh buckets of one
// MinIO, all through one fault proxy, and reports the figures. -short (and
// -race, see fault_race_on_test.go) runs only the ingest round, small.
func TestFaultSuite(t *testing.T) {
	start := time.Now()
	seed := faultSeed(t)
	t.Logf("fault suite seed %d (repeat with %s=%d)", seed, faultSeedEnv, seed)
	s := &faultSuite{
		seed:  seed,
		rng:   rand.New(rand.NewPCG(seed, seed^0x5eed)),
		proxy: testenv.StartFaultProxy(t, testenv.MinIO(t), seed),
		dsn:   testenv.PostgresURL(t),
		short: testing.Short() || faultSuiteRace,
		own:   map[string]int{},
	}
	rounds := []struct {
		name string
		fn   func(*testing.T, *faultSuite)
		long bool
	}{
		{"ingest-under-faults", roundIngest, false},
		{"concurrent-runs", roundConcurrentRuns, true},
		{"serve-stream-and-run", roundServeAndRun, true},
		{"two-serve-streams", roundTwoServes, true},
		{"stalled-lease-holder", roundStalledHolder, true},
		{"corrupt-lake-files", roundCorruptLake, true},
		{"corrupt-raw-objects", roundCorruptRaw, true},
	}
	for _, r := range rounds {
		if r.long && s.short {
			continue
		}
		if !t.Run(r.name, func(t *testing.T) { s.rounds++; r.fn(t, s) }) {
			t.Logf("round %s failed; repeat with %s=%d", r.name, faultSeedEnv, seed)
		}
	}
	s.report(t, time.Since(start))
}

// report logs the figures and writes them to .artifacts/faultsuite.txt (or
// $MEDALLION_ARTIFACTS/faultsuite.txt; faultsuite-short.txt for -short).
func (s *faultSuite) report(t *testing.T, took time.Duration) {
	faults := map[string]int{}
	for k, n := range s.proxy.Injected() {
		faults[string(k)] += n
	}
	for k, n := range s.own {
		faults[k] += n
	}
	kinds := make([]string, 0, len(faults))
	for k := range faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "fault suite: seed %d (%s=%d to repeat)\n", s.seed, faultSeedEnv, s.seed)
	fmt.Fprintf(&b, "rounds run:        %d\n", s.rounds)
	fmt.Fprintf(&b, "faults injected:   %d\n", sumInts(faults))
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %-18s %d\n", k, faults[k])
	}
	fmt.Fprintf(&b, "S3 requests:       %d\n", s.proxy.Requests())
	fmt.Fprintf(&b, "rows acknowledged: %d\n", s.acked)
	fmt.Fprintf(&b, "rows found:        %d\n", s.found)
	fmt.Fprintf(&b, "rows doubled:      %d (must be 0)\n", s.doubled)
	fmt.Fprintf(&b, "rows lost:         %d (must be 0)\n", s.lost)
	fmt.Fprintf(&b, "rows changed:      %d (must be 0)\n", s.wrong)
	fmt.Fprintf(&b, "refusals checked:  %d\n", s.refusals)
	fmt.Fprintf(&b, "duration:          %s\n", took.Round(time.Millisecond))
	t.Log("\n" + b.String())
	dir := os.Getenv("MEDALLION_ARTIFACTS")
	if dir == "" {
		root, err := testenv.FindRepoRoot()
		if err != nil {
			t.Logf("fault suite figures not written: %v", err)
			return
		}
		dir = filepath.Join(root, ".artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		name := "faultsuite.txt"
		if s.short {
			name = "faultsuite-short.txt" // make test's -race pass keeps the full run's figures
		}
		err = os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644)
		if err != nil {
			t.Logf("fault suite figures not written: %v", err)
		}
	}
}

func sumInts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// faultLake is a lake in a fresh bucket whose commands reach MinIO only
// through the proxy; store (direct) is for the suite's own reads and
// corruption. sent holds every row a client sent, acked the ids answered 2xx.
type faultLake struct {
	*testLake
	mu     sync.Mutex
	sent   map[int64]sentRow
	acked  map[int64]bool
	schema string // PostgreSQL schema of the mirror, "" for none
	conn   *pgx.Conn
}

// newFaultLake makes the lake and writes its pipeline: faultSource, extra,
// and a mirror of bronze.m when mirror is set.
func (s *faultSuite) newFaultLake(t *testing.T, mirror bool, extra string) *faultLake {
	t.Helper()
	l := &faultLake{testLake: newTestLake(t, "s3"), sent: map[int64]sentRow{}, acked: map[int64]bool{}}
	env := l.env[:0:0]
	for _, kv := range l.env {
		if !strings.HasPrefix(kv, "S3_") {
			env = append(env, kv)
		}
	}
	l.env = append(env, s.proxy.Server().Env()...)
	body := faultSource + extra
	if mirror {
		l.schema, l.conn = pgmirrortest.Schema(t, s.dsn, "faults")
		body = `postgres: "` + s.dsn + `"` + "\n" + body +
			"mirror:\n  - table: bronze.m\n    to: " + l.schema + ".m\n    key: [id]\n"
	}
	l.writePipeline(t, body)
	return l
}

// awkward are pieces of text a string column must keep byte for byte.
var awkward = []string{"plain", `quote " inside`, "comma, inside", "ünïcödé ✓", "tab\tinside", "  spaces  ", "", `back\slash`, "日本語"}

// partitions are p's values; "" stands for a row sent without p.
var partitions = []string{"", "plain", "a/b", "x=y", "50%", "ünï code", "#?&"}

// rows makes n new rows with the suite's generator and records them as sent.
func (s *faultSuite) rows(l *faultLake, n int) (ids []int64, body string) {
	s.mu.Lock()
	var b strings.Builder
	for range n {
		s.nextID++
		id := s.nextID
		r := sentRow{v: s.rng.NormFloat64() * math.Pow(10, float64(s.rng.IntN(30)-15)), s: awkward[s.rng.IntN(len(awkward))] + strconv.Itoa(s.rng.IntN(1000))}
		sj, _ := json.Marshal(r.s)
		pj := ""
		if p := partitions[s.rng.IntN(len(partitions))]; p != "" {
			r.p = &p
			q, _ := json.Marshal(p)
			pj = `,"p":` + string(q)
		}
		fmt.Fprintf(&b, `{"id":%d,"v":%s,"s":%s%s}`+"\n", id, strconv.FormatFloat(r.v, 'g', -1, 64), sj, pj)
		ids = append(ids, id)
		l.mu.Lock()
		l.sent[id] = r
		l.mu.Unlock()
	}
	s.mu.Unlock()
	return ids, b.String()
}

// postRows sends n new rows as one request, once (no retry: every id is
// sent in exactly one request, so any id found twice is a double). It
// records the ids as acknowledged on 2xx; a refusal must say why.
func (s *faultSuite) postRows(t *testing.T, l *faultLake, base string, n int) {
	ids, body := s.rows(l, n)
	resp, err := http.Post(base+"/v1/ingest/m", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		return // not acknowledged; its rows may or may not land
	}
	defer resp.Body.Close()
	var ans struct {
		Rows  int    `json:"rows"`
		Error string `json:"error"`
	}
	raw := new(bytes.Buffer)
	_, _ = raw.ReadFrom(resp.Body)
	_ = json.Unmarshal(raw.Bytes(), &ans)
	if resp.StatusCode/100 != 2 {
		t.Logf("ingest refused (%d): %s", resp.StatusCode, firstLine(raw.String()))
		s.mu.Lock()
		s.refusals++
		s.mu.Unlock()
		if len(strings.TrimSpace(raw.String())) < 20 || !strings.Contains(raw.String(), "source m") && !strings.Contains(raw.String(), "retry") {
			t.Errorf("refused ingest (%d) does not say what and why: %q", resp.StatusCode, raw.String())
		}
		return
	}
	if ans.Rows != n {
		t.Errorf("ingest answered %d with rows=%d, sent %d: %s", resp.StatusCode, ans.Rows, n, raw.String())
	}
	l.mu.Lock()
	for _, id := range ids {
		l.acked[id] = true
	}
	l.mu.Unlock()
}

// clients runs c posting clients against base until stop closes or each
// has sent max requests.
func (s *faultSuite) clients(t *testing.T, l *faultLake, bases []string, c, max, per int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range c {
		wg.Go(func() {
			for k := range max {
				select {
				case <-stop:
					return
				default:
				}
				s.postRows(t, l, bases[(i+k)%len(bases)], per)
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	return &wg
}

// stopServe ends serve with SIGTERM (it lands what it holds) and waits.
func stopServe(t *testing.T, p *serveProc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, p.out)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}
}

// s3Faults are the rules of a round on the lake: the kinds of the proxy
// with the given probability on every object request, replies dropped or
// cut only after the server acted, and a little latency.
func (s *faultSuite) s3Faults(t *testing.T, p float64) {
	every := regexp.MustCompile(`.`)
	for _, r := range []testenv.FaultRule{
		{Method: "PUT", Key: every, Kind: testenv.DropReply, Probability: p},
		{Method: "PUT", Key: every, Kind: testenv.CutRequest, Probability: p / 2},
		{Key: every, Kind: testenv.ErrorStatus, Status: 500, Probability: p / 2},
		{Key: every, Kind: testenv.ErrorStatus, Status: 503, Probability: p / 2},
		{Method: "GET", Key: every, Kind: testenv.CutReply, Probability: p},
		{Method: "GET", Key: every, Kind: testenv.DropReply, Probability: p / 2},
		{Key: every, Kind: testenv.Latency, Delay: 30 * time.Millisecond, Probability: p},
	} {
		s.proxy.Add(t, r)
	}
}

// latency delays a third of the lake requests by 50 ms: concurrent runners
// then overlap longer.
func (s *faultSuite) latency(t *testing.T) {
	s.proxy.Add(t, testenv.FaultRule{Key: regexp.MustCompile(`.`), Kind: testenv.Latency, Delay: 50 * time.Millisecond, Probability: 0.3})
}

// runMay runs the binary under faults: it may fail, but then it must say
// what and why on stderr, in its one-line error form.
func (s *faultSuite) runMay(t *testing.T, l *faultLake, env []string, args ...string) error {
	t.Helper()
	out, errOut, err := l.exec(t, env, args...)
	if err != nil {
		s.mu.Lock()
		s.refusals++
		s.mu.Unlock()
		t.Logf("refused under faults: medallion %s: %s", strings.Join(args, " "), firstLine(errOut))
		if exitCode(err) != 1 || !strings.Contains(errOut, "medallion "+args[0]+": ") {
			t.Errorf("medallion %s failed without saying what and why (%v)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
		}
	}
	return err
}

// settle clears the faults and runs the whole pipeline once, as the next
// cron run would; it must succeed. A run the faults stopped may not have
// been able to release its table leases either: those hold until their
// TTL (30s), so the settling run waits past it for them.
func (s *faultSuite) settle(t *testing.T, l *faultLake) {
	t.Helper()
	s.proxy.Clear()
	l.run(t, "run", "--wait", "45s")
}

// check asserts the invariant on bronze.m and the mirror, and adds the
// round's figures.
func (s *faultSuite) check(t *testing.T, l *faultLake) {
	t.Helper()
	count, vals := l.bronzeRows(t)
	l.mu.Lock()
	defer l.mu.Unlock()
	var found, doubled, lost, wrong int
	for id, n := range count {
		r, ok := l.sent[id]
		switch {
		case !ok:
			t.Errorf("bronze.m has id %d, never sent", id)
		case n > 1:
			doubled += n - 1
			t.Errorf("id %d is in bronze.m %d times", id, n)
		}
		if ok && l.acked[id] {
			found++
			if got := vals[id]; !got.same(r) {
				wrong++
				t.Errorf("id %d: bronze has %s, was sent %s", id, got, r)
			}
		}
	}
	for id := range l.acked {
		if count[id] == 0 {
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged id %d is not in bronze.m", id)
			}
		}
	}
	if lost > 10 {
		t.Errorf("%d acknowledged rows are not in bronze.m", lost)
	}
	t.Logf("%d rows sent, %d acknowledged, %d found, %d doubled, %d lost, %d changed", len(l.sent), len(l.acked), found, doubled, lost, wrong)
	s.mu.Lock()
	s.acked += len(l.acked)
	s.found += found
	s.doubled += doubled
	s.lost += lost
	s.wrong += wrong
	s.mu.Unlock()
	if l.schema != "" {
		l.checkMirror(t, count, vals)
	}
}

// checkMirror asserts that the mirror of bronze.m holds the same rows as
// the lake table: each id as often, with the same values. It reads
// PostgreSQL directly, so it depends on no internal type.
func (l *faultLake) checkMirror(t *testing.T, count map[int64]int, vals map[int64]sentRow) {
	t.Helper()
	rows, err := l.conn.Query(context.Background(), fmt.Sprintf(`SELECT id, v, s, p FROM %s.m`, pgx.Identifier{l.schema}.Sanitize()))
	if err != nil {
		t.Fatalf("read the mirror %s.m: %v", l.schema, err)
	}
	defer rows.Close()
	pgCount, bad := map[int64]int{}, 0
	for rows.Next() {
		var (
			id   int64
			v    float64
			s, p *string
		)
		if err := rows.Scan(&id, &v, &s, &p); err != nil {
			t.Fatalf("read the mirror %s.m: %v", l.schema, err)
		}
		pgCount[id]++
		got := sentRow{v: v, p: p}
		if s != nil {
			got.s = *s
		}
		if want := vals[id]; !got.same(want) && bad < 10 {
			bad++
			t.Errorf("mirror %s.m id %d: %s, the lake has %s", l.schema, id, got, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read the mirror %s.m: %v", l.schema, err)
	}
	for id, n := range count {
		if pgCount[id] != n && bad < 10 {
			bad++
			t.Errorf("mirror %s.m has id %d %d times, the lake %d", l.schema, id, pgCount[id], n)
		}
	}
	for id, n := range pgCount {
		if count[id] == 0 && bad < 10 {
			bad++
			t.Errorf("mirror %s.m has id %d %d times, the lake none", l.schema, id, n)
		}
	}
}

// bronzeRows reads bronze.m through `medallion query`: how often each id is
// there, and its values.
func (l *faultLake) bronzeRows(t *testing.T) (map[int64]int, map[int64]sentRow) {
	t.Helper()
	out := l.query(t, "SELECT id, v, s, p IS NULL AS p_null, p FROM bronze.m")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("query output: %v\n%s", err, out)
	}
	count, vals := map[int64]int{}, map[int64]sentRow{}
	for _, r := range recs[1:] {
		id, err := strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			t.Fatalf("bronze.m id %q: %v", r[0], err)
		}
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			t.Fatalf("bronze.m id %d: v %q: %v", id, r[1], err)
		}
		count[id]++
		row := sentRow{v: v, s: r[2]}
		if r[3] == "false" {
			row.p = &r[4]
		}
		vals[id] = row
	}
	return count, vals
}

// firstLine is the first line of an error text, for the log.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// lastLine is the last line of an output, where a command's error is.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
