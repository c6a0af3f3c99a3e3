package bronze

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
)

// smallObjYAML is the source of the many-small-objects tests.
const smallObjYAML = `lake: file://./lake
sources:
  m:
    format: ndjson
    schema:
      id:  {type: string, required: true}
      obj: {type: int64}
      v:   {type: double, min: 0}
    dedupe: [id]
`

// smallObject is the body of object i of the many-small-objects tests: 5
// lines whose id and obj name the object, so each row's _source_file can
// be checked. With bad set, some objects hold bad lines: a wrong type
// (line 2 of every 7th object), invalid JSON (line 4 of every 11th), an
// undeclared key (rescued, line 3 of every 5th) and a blank line (every
// 13th object). It returns the body and the bad lines as
// "line,column,reason".
func smallObject(i int, bad bool) (string, []string) {
	var b strings.Builder
	var want []string
	line := 0
	for r := range 5 {
		line++
		switch {
		case bad && i%7 == 0 && r == 1:
			fmt.Fprintf(&b, `{"id":"o%d-%d","obj":%d,"v":"x%d"}`+"\n", i, r, i, i)
			want = append(want, fmt.Sprintf("%d,v,\"\"\"x%d\"\" is not a double\"", line, i))
		case bad && i%11 == 0 && r == 3:
			fmt.Fprintf(&b, `{"id":"o%d-%d","obj":%d,`+"\n", i, r, i)
			want = append(want, fmt.Sprintf("%d,NULL,invalid JSON", line))
		case bad && i%5 == 0 && r == 2:
			fmt.Fprintf(&b, `{"id":"o%d-%d","obj":%d,"v":%d,"extra":"e%d"}`+"\n", i, r, i, r, i)
		default:
			fmt.Fprintf(&b, `{"id":"o%d-%d","obj":%d,"v":%d}`+"\n", i, r, i, r)
		}
		if bad && i%13 == 0 && r == 0 {
			b.WriteString("\n")
			line++
		}
	}
	return b.String(), want
}

// landSmallObjects lands n small objects on st and returns each object's
// raw key by object number.
func landSmallObjects(t *testing.T, st lake.Store, n int, bad bool) map[int]string {
	t.Helper()
	dir := t.TempDir()
	keys := map[int]string{}
	for i := range n {
		body, _ := smallObject(i, bad)
		p := filepath.Join(dir, fmt.Sprintf("o%05d.ndjson", i))
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		m, _, err := raw.LandFile(context.Background(), st, "m", "ndjson", p, received.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = m.Key
	}
	return keys
}

// smallObjCount is the number of objects of the many-small-objects tests;
// MEDALLION_SMALLOBJ_N raises it to profile a run (go test -cpuprofile).
func smallObjCount(t *testing.T, def int) int {
	if s := os.Getenv("MEDALLION_SMALLOBJ_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return def
}

// runManySmall runs bronze over n small objects (bad lines in some when
// bad is set) on st and checks every row's _source_file against the
// object its id names, and every quarantined line's object, line, column
// and reason.
func runManySmall(t *testing.T, st lake.Store, n int, bad bool, maxObjects int) Stats {
	t.Helper()
	e := newEngine(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(smallObjYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadCase(t, dir)
	keys := landSmallObjects(t, st, n, bad)
	start := time.Now()
	s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }},
		MaxLineBytes: testLineMax, MaxBatchObjects: maxObjects}, p.Sources["m"])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d objects: %s in %v", n, s, time.Since(start))
	if !s.Balanced() {
		t.Fatalf("accounting does not hold: %s", s)
	}
	var wantBad []string
	wantRows := 0
	for i := range n {
		_, b := smallObject(i, bad)
		for _, w := range b {
			wantBad = append(wantBad, keys[i]+","+w)
		}
		wantRows += 5 - len(b)
	}
	if s.Written != int64(wantRows) || s.Quarantined != int64(len(wantBad)) {
		t.Errorf("stats: %s; want %d written, %d quarantined", s, wantRows, len(wantBad))
	}
	got := tableCSV(t, st, e.DB(), "bronze/m", "CAST(obj AS VARCHAR), _source_file, CAST(epoch_ms(_ingested_at) AS VARCHAR), _rescued")
	lines := strings.Split(strings.TrimSpace(got), "\n")[1:]
	if len(lines) != wantRows {
		t.Fatalf("%d rows, want %d", len(lines), wantRows)
	}
	rescued := 0
	for _, l := range lines {
		f := strings.SplitN(l, ",", 4)
		i, err := strconv.Atoi(f[0])
		if err != nil || f[1] != keys[i] {
			t.Fatalf("row %q: _source_file is not the key of object %s (%s)", l, f[0], keys[i])
		}
		if want := fmt.Sprint(received.UnixMilli() + int64(i)); f[2] != want {
			t.Fatalf("row %q: _ingested_at %s ms, want object %d's received time %s ms", l, f[2], i, want)
		}
		if f[3] != "NULL" {
			rescued++
			if want := fmt.Sprintf(`"{""extra"":""e%d""}"`, i); f[3] != want {
				t.Errorf("row %q: _rescued %s, want %s", l, f[3], want)
			}
		}
	}
	if bad && rescued == 0 {
		t.Errorf("no row rescued an undeclared key")
	}
	q := tableCSV(t, st, e.DB(), "bronze/_quarantine", `source_file, line, "column", reason`)
	var wantQ string
	if len(wantBad) == 0 {
		wantQ = "(no table)\n"
	} else {
		wantQ = tableLines("source_file,line,column,reason", wantBad)
	}
	if q != wantQ {
		t.Errorf("quarantine\n--- got\n%s\n--- want\n%s", q, wantQ)
	}
	return s
}

// tableLines renders rows as tableCSV does: header, then sorted lines.
func tableLines(header string, rows []string) string {
	var s []string
	for _, r := range rows {
		if r != "" {
			s = append(s, r)
		}
	}
	sort.Strings(s)
	return header + "\n" + strings.Join(s, "\n") + "\n"
}

// TestManySmallObjectsClean: a batch of many clean small objects is
// promoted with each row's lineage.
func TestManySmallObjectsClean(t *testing.T) {
	runManySmall(t, testenv.LocalStore(t), smallObjCount(t, 120), false, 0)
}

// TestManySmallObjectsMixed: many small objects with bad lines among good
// ones: every bad line is quarantined with its object, line, column and
// reason, undeclared keys are rescued, and every good row keeps its
// object's key as _source_file, across several batches.
func TestManySmallObjectsMixed(t *testing.T) {
	runManySmall(t, testenv.LocalStore(t), smallObjCount(t, 150), true, 60)
}

// TestManySmallObjectsS3 is TestManySmallObjectsMixed on a MinIO lake.
func TestManySmallObjectsS3(t *testing.T) {
	st, _, _ := testenv.S3Store(t)
	runManySmall(t, st, smallObjCount(t, 80), true, 0)
}

// TestManySmallCSVObjects: a batch of many clean CSV objects, most with one
// header and some with the columns in another order and an undeclared
// one, is written by the fast path, one read_csv per kind of header: every
// row keeps its object's key, received time and rescued value.
func TestManySmallCSVObjects(t *testing.T) {
	e := newEngine(t)
	dir := t.TempDir()
	yaml := strings.Replace(smallObjYAML, "format: ndjson", "format: csv", 1)
	if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := loadCase(t, dir)
	st := testenv.LocalStore(t)
	n := smallObjCount(t, 45)
	keys := map[int]string{}
	for i := range n {
		var b strings.Builder
		if i%9 == 4 {
			b.WriteString("obj,id,v,extra\n")
			for r := range 3 {
				fmt.Fprintf(&b, "%d,o%d-%d,%d,e%d\n", i, i, r, r, i)
			}
		} else {
			b.WriteString("id,obj,v\n")
			for r := range 3 {
				fmt.Fprintf(&b, "o%d-%d,%d,%d\n", i, r, i, r)
			}
		}
		f := filepath.Join(dir, fmt.Sprintf("o%03d.csv", i))
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		m, _, err := raw.LandFile(context.Background(), st, "m", "csv", f, received.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = m.Key
	}
	s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}}, p.Sources["m"])
	if err != nil {
		t.Fatal(err)
	}
	if !s.Balanced() || s.Written != int64(3*n) || s.Quarantined != 0 {
		t.Fatalf("stats: %s; want %d rows written", s, 3*n)
	}
	got := tableCSV(t, st, e.DB(), "bronze/m", "CAST(obj AS VARCHAR), _source_file, CAST(epoch_ms(_ingested_at) AS VARCHAR), _rescued")
	lines := strings.Split(strings.TrimSpace(got), "\n")[1:]
	if len(lines) != 3*n {
		t.Fatalf("%d rows, want %d", len(lines), 3*n)
	}
	for _, l := range lines {
		f := strings.SplitN(l, ",", 4)
		i, err := strconv.Atoi(f[0])
		if err != nil || f[1] != keys[i] || f[2] != fmt.Sprint(received.UnixMilli()+int64(i)) {
			t.Fatalf("row %q: want object %s's key %s and received time", l, f[0], keys[i])
		}
		want := "NULL"
		if i%9 == 4 {
			want = fmt.Sprintf(`"{""extra"":""e%d""}"`, i)
		}
		if f[3] != want {
			t.Errorf("row %q: _rescued %s, want %s", l, f[3], want)
		}
	}
}

// TestManySmallObjectsReaderRejects: among many NDJSON objects, one holds
// a line of invalid UTF-8 and one an over-long line (reader rejects, which
// the key query cannot read past): each is quarantined at its object and
// line, and the other objects' rows are all written.
func TestManySmallObjectsReaderRejects(t *testing.T) {
	for _, precise := range []bool{false, true} {
		t.Run(fmt.Sprintf("precise=%v", precise), func(t *testing.T) {
			e := newEngine(t)
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "medallion.yaml"), []byte(smallObjYAML), 0o644); err != nil {
				t.Fatal(err)
			}
			p := loadCase(t, dir)
			st := testenv.LocalStore(t)
			const n = 24
			want := map[string]bool{}
			for i := range n {
				body := fmt.Sprintf(`{"id":"o%d-0","obj":%d,"v":1}`+"\n", i, i)
				switch i {
				case 5:
					body += "{\"id\":\"bad\xff\",\"obj\":5}\n"
				case 9:
					body += `{"id":"long","obj":9,"s":"` + strings.Repeat("x", 2*testLineMax) + `"}` + "\n"
				}
				body += fmt.Sprintf(`{"id":"o%d-2","obj":%d,"v":2}`+"\n", i, i)
				f := filepath.Join(dir, fmt.Sprintf("o%02d.ndjson", i))
				if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				m, _, err := raw.LandFile(context.Background(), st, "m", "ndjson", f, received)
				if err != nil {
					t.Fatal(err)
				}
				switch i {
				case 5:
					want[m.Key+",2,NULL,invalid UTF-8"] = true
				case 9:
					want[fmt.Sprintf("%s,2,NULL,line longer than %d bytes", m.Key, testLineMax)] = true
				}
			}
			s, err := Run(context.Background(), Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }},
				MaxLineBytes: testLineMax, precise: precise}, p.Sources["m"])
			if err != nil {
				t.Fatal(err)
			}
			if !s.Balanced() || s.Written != 2*n || s.Quarantined != 2 {
				t.Errorf("stats: %s; want %d written, 2 quarantined", s, 2*n)
			}
			checkCorpusQuarantine(t, "rejects", tableCSV(t, st, e.DB(), "bronze/_quarantine", `source_file, line, "column", reason`), want)
		})
	}
}
