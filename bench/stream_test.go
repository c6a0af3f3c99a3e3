package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	bs := []bucket{{0.5, 0}, {1, 50}, {2, 90}, {3, 100}, {math.Inf(1), 100}}
	tests := []struct {
		q        float64
		want     float64
		wantOver bool
	}{
		{0.25, 0.75, false}, // half-way through the (0.5, 1] bucket
		{0.5, 1, false},
		{0.7, 1.5, false},
		{0.99, 2.9, false},
		{1, 3, false},
	}
	for _, tt := range tests {
		got, over, err := quantile(tt.q, bs)
		if err != nil || over != tt.wantOver || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, %v, %v; want %v, %v", tt.q, got, over, err, tt.want, tt.wantOver)
		}
	}
	past := []bucket{{1, 10}, {3, 90}, {math.Inf(1), 100}}
	if got, over, _ := quantile(0.99, past); !over || got != 3 {
		t.Errorf("quantile past the last bucket = %v, %v; want 3, true", got, over)
	}
	if _, _, err := quantile(0.5, []bucket{{1, 0}, {math.Inf(1), 0}}); err == nil {
		t.Error("quantile of no observations: want an error")
	}
}

func TestGoldBucketsAndBacklog(t *testing.T) {
	scrape := func(gold1, gold3, goldInf, landed float64) promText {
		p, err := parseProm(strings.NewReader(strings.Join([]string{
			"# TYPE medallion_stream_latency_seconds histogram",
			`medallion_stream_latency_seconds_bucket{stage="gold",le="1"} ` + ftoa(gold1),
			`medallion_stream_latency_seconds_bucket{stage="gold",le="3"} ` + ftoa(gold3),
			`medallion_stream_latency_seconds_bucket{stage="gold",le="+Inf"} ` + ftoa(goldInf),
			`medallion_stream_latency_seconds_count{stage="gold"} ` + ftoa(goldInf),
			`medallion_ingest_flushes_total{source="meters",result="landed"} ` + ftoa(landed),
		}, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	before, after := scrape(4, 5, 5, 5), scrape(10, 15, 15, 18)
	bs := goldBuckets(before, after)
	want := []bucket{{1, 6}, {3, 10}, {math.Inf(1), 10}}
	if len(bs) != len(want) {
		t.Fatalf("buckets %v, want %v", bs, want)
	}
	for i := range want {
		if bs[i] != want[i] {
			t.Errorf("bucket %d = %v, want %v", i, bs[i], want[i])
		}
	}
	if got := after.backlog(); got != 3 {
		t.Errorf("backlog = %v, want 3", got)
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TestEventGen: every generated line is one JSON object with the energy
// pipeline's fields, and no (meter, timestamp) pair repeats.
func TestEventGen(t *testing.T) {
	g := newEventGen()
	var buf []byte
	buf = g.appendBatch(buf, 0, streamMeters+500)
	buf = g.appendBatch(buf, streamMeters+500, 700)
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(buf))
	n := 0
	for sc.Scan() {
		var ev struct {
			Timestamp string   `json:"timestamp"`
			MeterID   string   `json:"meter_id"`
			Usage     *float64 `json:"energy_usage"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d %q: %v", n+1, sc.Text(), err)
		}
		if ev.Timestamp == "" || ev.MeterID == "" || ev.Usage == nil || *ev.Usage < 0 {
			t.Fatalf("line %d %q: a field is missing", n+1, sc.Text())
		}
		k := ev.MeterID + "|" + ev.Timestamp
		if seen[k] {
			t.Fatalf("line %d: %s posted twice", n+1, k)
		}
		seen[k] = true
		n++
	}
	if n != streamMeters+1200 {
		t.Errorf("%d lines, want %d", n, streamMeters+1200)
	}
}

func TestParseRates(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr string
	}{
		{"25000, 50000,100000", []int{25000, 50000, 100000}, ""},
		{"5000", []int{5000}, ""},
		{"", nil, "no rate given"},
		{"50000,25000", nil, "ascending"},
		{"10k", nil, "not a positive number"},
		{"0", nil, "not a positive number"},
	}
	for _, tt := range tests {
		got, err := parseRates(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseRates(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("parseRates(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("parseRates(%q) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

// TestStreamDayProgress: the progress file of a long case 12 run gets a
// line every progressEvery micro-batches comparing the last 100 with the
// first 100, and nothing before.
func TestStreamDayProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress")
	p := openProgress(path)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ends []time.Time
	var cpus []time.Duration
	for i := range 2 * progressEvery {
		step := 10 * time.Millisecond
		if i >= progressEvery {
			step = 15 * time.Millisecond // the second thousand runs 1.5x slower
		}
		if len(ends) > 0 {
			t0 = ends[len(ends)-1].Add(step)
		}
		ends = append(ends, t0)
		cpus = append(cpus, time.Duration(i)*step/2)
		p.batch(ends, cpus, 1)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("progress lines: %q, want 2", lines)
	}
	if !strings.Contains(lines[0], "micro-batch 1000: last 100 1.00 s wall (1.00x the first 100)") ||
		!strings.Contains(lines[1], "micro-batch 2000: last 100 1.50 s wall (1.50x the first 100)") ||
		!strings.Contains(lines[1], "2000 files replaced") {
		t.Errorf("progress lines:\n%s", b)
	}
	openProgress("").batch(ends, cpus, 1) // no file: nothing to write, no panic
}
