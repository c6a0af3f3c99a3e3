package generate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func gen(t testing.TB, o Options) ([]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Write(context.Background(), &buf, o)
	if err != nil {
		t.Fatalf("Write(%+v): %v", o, err)
	}
	if st.Bytes != int64(buf.Len()) {
		t.Fatalf("Stats.Bytes = %d, wrote %d", st.Bytes, buf.Len())
	}
	return buf.Bytes(), st
}

func TestDeterministic(t *testing.T) {
	for _, kind := range Kinds() {
		for _, format := range Formats() {
			o := Options{Kind: kind, Format: format, Rows: 2000, Seed: 42, BadFraction: 0.05, LateFraction: 0.05, LateBy: time.Second}
			a, _ := gen(t, o)
			b, _ := gen(t, o)
			if sha256.Sum256(a) != sha256.Sum256(b) {
				t.Errorf("%s/%s: same seed gave different bytes", kind, format)
			}
			o.Seed = 43
			c, _ := gen(t, o)
			if sha256.Sum256(a) == sha256.Sum256(c) {
				t.Errorf("%s/%s: seeds 42 and 43 gave the same bytes", kind, format)
			}
		}
	}
}

func TestCSVParses(t *testing.T) {
	for _, kind := range Kinds() {
		out, st := gen(t, Options{Kind: kind, Format: CSV, Rows: 1500, LateFraction: 0.1})
		r := csv.NewReader(bytes.NewReader(out))
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatalf("%s: encoding/csv: %v", kind, err)
		}
		if int64(len(recs)-1) != st.Rows || st.Rows != 1500 {
			t.Errorf("%s: %d data records, Stats.Rows %d, want 1500", kind, len(recs)-1, st.Rows)
		}
		for i, rec := range recs {
			for _, f := range rec {
				if !utf8.ValidString(f) {
					t.Fatalf("%s: record %d has invalid UTF-8 with bad-fraction 0", kind, i)
				}
			}
		}
	}
}

func TestEcommerceCSV(t *testing.T) {
	out, _ := gen(t, Options{Kind: Ecommerce, Rows: 20000})
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := "event_id,user_id,event_type,product_id,product_name,product_category,product_price,quantity,event_timestamp,session_id,device_type"
	if got := strings.Join(recs[0], ","); got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
	var commas, quotes int
	types := map[string]int{}
	for _, rec := range recs[1:] {
		name := rec[4]
		if strings.Contains(name, ",") {
			commas++
		}
		if strings.Contains(name, `"`) {
			quotes++
		}
		types[rec[2]]++
		if _, err := time.Parse("2006-01-02 15:04:05", rec[8]); err != nil {
			t.Fatalf("event_timestamp: %v", err)
		}
	}
	if commas == 0 || quotes == 0 {
		t.Errorf("product names: %d with commas, %d with quotes; want some of each", commas, quotes)
	}
	for _, et := range []string{"view", "add_to_cart", "purchase"} {
		if types[et] == 0 {
			t.Errorf("no %s events", et)
		}
	}
	if per := len(out) / 20000; per < 120 || per > 150 {
		t.Errorf("%d bytes per row, want about 135", per)
	}
}

func TestNDJSONParses(t *testing.T) {
	keys := map[string][]string{
		Energy:    {"timestamp", "meter_id", "energy_usage"},
		Sensor:    {"device_id", "timestamp", "temperature", "humidity", "pressure"},
		Ecommerce: {"event_id", "product_price", "event_timestamp"},
		Turnstile: {"C/A", "SCP", "ENTRIES", "EXITS" + exitsPadding},
	}
	for _, kind := range Kinds() {
		out, st := gen(t, Options{Kind: kind, Format: NDJSON, Rows: 1500, LateFraction: 0.1})
		sc := bufio.NewScanner(bytes.NewReader(out))
		n := 0
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s line %d: %v: %s", kind, n+1, err, sc.Text())
			}
			for _, k := range keys[kind] {
				if _, ok := m[k]; !ok {
					t.Fatalf("%s line %d: no key %q", kind, n+1, k)
				}
			}
			n++
		}
		if int64(n) != st.Rows {
			t.Errorf("%s: %d lines, Stats.Rows %d", kind, n, st.Rows)
		}
	}
}

func TestJSONArrayParses(t *testing.T) {
	for _, kind := range Kinds() {
		for _, rows := range []int64{0, 1, 2500} {
			out, _ := gen(t, Options{Kind: kind, Format: JSON, Rows: rows, BadFraction: 0.1})
			var arr []map[string]any
			if err := json.Unmarshal(out, &arr); err != nil {
				t.Fatalf("%s rows %d: %v", kind, rows, err)
			}
			if int64(len(arr)) != rows {
				t.Errorf("%s: %d elements, want %d", kind, len(arr), rows)
			}
		}
	}
}

func TestEnergyValues(t *testing.T) {
	out, _ := gen(t, Options{Kind: Energy, Rows: 20000})
	sc := bufio.NewScanner(bytes.NewReader(out))
	var spikes, n int
	var prev time.Time
	for sc.Scan() {
		var r struct {
			Timestamp string  `json:"timestamp"`
			MeterID   string  `json:"meter_id"`
			Usage     float64 `json:"energy_usage"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		ts, err := time.Parse("2006-01-02 15:04:05", r.Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && !ts.Equal(DefaultStart()) {
			t.Errorf("first timestamp %v, want %v", ts, DefaultStart())
		}
		if ts.Before(prev) {
			t.Fatalf("row %d goes back in time without late-fraction", n+1)
		}
		prev = ts
		if r.Usage < 0 || !strings.HasPrefix(r.MeterID, "meter-") {
			t.Fatalf("bad good row: %s", sc.Text())
		}
		if r.Usage > 100 {
			spikes++
		}
		n++
	}
	if frac := float64(spikes) / float64(n); frac < 0.005 || frac > 0.02 {
		t.Errorf("spike fraction %.4f, want about 0.01", frac)
	}
}

func TestBadFraction(t *testing.T) {
	const rows = 8000
	for _, kind := range Kinds() {
		for _, format := range Formats() {
			out, st := gen(t, Options{Kind: kind, Format: format, Rows: rows, BadFraction: 0.1})
			if st.Rows != rows {
				t.Fatalf("%s/%s: Rows %d", kind, format, st.Rows)
			}
			if n := st.BadRows(); n < rows*0.085 || n > rows*0.115 {
				t.Errorf("%s/%s: %d bad rows, want about %d", kind, format, n, rows/10)
			}
			for _, k := range BadKindsFor(format) {
				if st.Bad[k] == 0 {
					t.Errorf("%s/%s: no %s rows", kind, format, k)
				}
			}
			switch format {
			case NDJSON:
				// Every malformed line and invalid-UTF-8 line is caught by a strict reader.
				sc := bufio.NewScanner(bytes.NewReader(out))
				var invalid, badUTF8 int64
				for sc.Scan() {
					if !json.Valid(sc.Bytes()) {
						invalid++
					} else if !utf8.Valid(sc.Bytes()) {
						badUTF8++
					}
				}
				if invalid != st.Bad[Malformed] || badUTF8 != st.Bad[InvalidUTF8] {
					t.Errorf("%s/ndjson: %d invalid JSON lines, %d with invalid UTF-8; Stats says %d and %d",
						kind, invalid, badUTF8, st.Bad[Malformed], st.Bad[InvalidUTF8])
				}
			case CSV:
				r := csv.NewReader(bytes.NewReader(out))
				r.FieldsPerRecord = -1
				header, err := r.Read()
				if err != nil {
					t.Fatal(err)
				}
				var parseErrs, wrongCount int64
				for {
					rec, err := r.Read()
					if errors.Is(err, io.EOF) {
						break
					}
					var pe *csv.ParseError
					if errors.As(err, &pe) {
						parseErrs++
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if len(rec) != len(header) {
						wrongCount++
					}
				}
				if parseErrs != st.Bad[Malformed] || wrongCount != st.Bad[MissingField]+st.Bad[ExtraField] {
					t.Errorf("%s/csv: %d parse errors, %d wrong field counts; Stats says %d malformed, %d missing + %d extra",
						kind, parseErrs, wrongCount, st.Bad[Malformed], st.Bad[MissingField], st.Bad[ExtraField])
				}
			}
		}
	}
}

func TestLateFraction(t *testing.T) {
	lateBy := 5 * time.Minute
	out, st := gen(t, Options{Kind: Energy, Rows: 40000, LateFraction: 0.05})
	if frac := float64(st.Late) / 40000; frac < 0.04 || frac > 0.06 {
		t.Errorf("Stats.Late %d, want about 5%%", st.Late)
	}
	// Count independently: events more than LateBy behind the newest before them.
	sc := bufio.NewScanner(bytes.NewReader(out))
	var newest time.Time
	var late int64
	seen := map[string]bool{}
	for sc.Scan() {
		var r struct {
			Timestamp string `json:"timestamp"`
			MeterID   string `json:"meter_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if key := r.MeterID + r.Timestamp; seen[key] {
			t.Fatalf("late events collide with on-time ones: %s twice", key)
		} else {
			seen[key] = true
		}
		ts, _ := time.Parse("2006-01-02 15:04:05", r.Timestamp)
		if !newest.IsZero() && newest.Sub(ts) > lateBy {
			late++
		}
		if ts.After(newest) {
			newest = ts
		}
	}
	if late != st.Late {
		t.Errorf("counted %d late events, Stats.Late %d", late, st.Late)
	}
}

func TestTurnstileHeader(t *testing.T) {
	out, _ := gen(t, Options{Kind: Turnstile, Rows: 10})
	first, _, _ := strings.Cut(string(out), "\n")
	if first != TurnstileHeader {
		t.Fatalf("header %q, want %q", first, TurnstileHeader)
	}
	if !strings.HasPrefix(first, "C/A,UNIT,SCP,STATION,") || !strings.HasSuffix(first, "EXITS"+strings.Repeat(" ", 63)) {
		t.Errorf("header %q: want C/A first and EXITS padded with 63 spaces", first)
	}
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if recs[1][8] != "REGULAR" && recs[1][8] != "RECOVR AUD" {
		t.Errorf("DESC %q", recs[1][8])
	}
	if _, err := time.Parse("01/02/2006 15:04:05", recs[1][6]+" "+recs[1][7]); err != nil {
		t.Errorf("DATE TIME: %v", err)
	}
}

func TestSensorRate(t *testing.T) {
	out, _ := gen(t, Options{Kind: Sensor, Rows: 8, Format: CSV})
	recs, _ := csv.NewReader(bytes.NewReader(out)).ReadAll()
	// Four devices at 400 Hz: samples 2.5 ms apart, written in milliseconds.
	want := []string{"2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00.002Z"}
	if recs[1][1] != want[0] || recs[5][1] != want[1] || recs[1][0] != recs[5][0] {
		t.Errorf("rows 1 and 5: %v %v, want the same device at %v", recs[1][:2], recs[5][:2], want)
	}
}

func TestStart(t *testing.T) {
	start := time.Date(2025, 6, 30, 23, 59, 59, 0, time.UTC)
	out, _ := gen(t, Options{Kind: Energy, Rows: 9, Format: CSV, Start: start})
	recs, _ := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if recs[1][0] != "2025-06-30 23:59:59" || recs[9][0] != "2025-07-01 00:00:00" {
		t.Errorf("timestamps %q .. %q", recs[1][0], recs[9][0])
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Kind: "weather"}, `unknown kind "weather" (want ecommerce, energy, sensor, turnstile)`},
		{Options{Kind: Energy, Format: "xml"}, `unknown format "xml"`},
		{Options{Kind: Energy, BadFraction: 1.5}, "bad fraction 1.5: want a number between 0 and 1"},
		{Options{Kind: Energy, LateFraction: -0.1}, "late fraction -0.1"},
		{Options{Kind: Energy, Rows: -1}, "rows -1"},
	} {
		_, err := Write(context.Background(), io.Discard, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Write(ctx, io.Discard, Options{Kind: Energy, Rows: 1e6})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, kind := range Kinds() {
		f, _ := DefaultFormat(kind)
		b.Run(kind+"/"+f, func(b *testing.B) {
			const rows = 100000
			st, _ := Write(context.Background(), io.Discard, Options{Kind: kind, Rows: rows})
			b.SetBytes(st.Bytes)
			b.ResetTimer()
			for b.Loop() {
				if _, err := Write(context.Background(), io.Discard, Options{Kind: kind, Rows: rows}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
