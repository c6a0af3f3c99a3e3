package main

import (
	"crypto/sha256"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/medallion-dev/medallion/internal/generate"
)

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "turnstile.csv")
	code, stdout, stderr := cli(t, "", "generate", "turnstile", "--rows", "100", "--out", out, "--seed", "9", "--start", "2019-09-28")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "wrote 100 turnstile rows (csv, ") || !strings.HasSuffix(stdout, ": 0 bad, 0 late\n") {
		t.Errorf("stdout %q", stdout)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) != 101 || strings.Join(recs[0], ",") != generate.TurnstileHeader || recs[1][6] != "09/28/2019" {
		t.Fatalf("%d records, err %v, first %q", len(recs), err, recs[:min(2, len(recs))])
	}

	// To stdout: data on stdout, the summary on stderr; same flags, same bytes.
	_, a, sa := cli(t, "", "generate", "energy", "--rows", "200", "--bad-fraction", "0.2", "--late-fraction", "0.1", "--late-by", "10s")
	_, b, _ := cli(t, "", "generate", "energy", "--rows", "200", "--bad-fraction", "0.2", "--late-fraction", "0.1", "--late-by", "10s")
	if sha256.Sum256([]byte(a)) != sha256.Sum256([]byte(b)) || strings.Count(a, "\n") < 200 {
		t.Errorf("stdout differs between runs or is short")
	}
	if !strings.HasPrefix(sa, "wrote 200 energy rows (ndjson, ") || !strings.Contains(sa, " bad (") {
		t.Errorf("stderr %q", sa)
	}
}

func TestGenerateUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"generate"}, "medallion generate: which data? want a KIND: ecommerce, energy, sensor, turnstile\n"},
		{[]string{"generate", "weather"}, `medallion generate: unknown kind "weather" (want ecommerce, energy, sensor, turnstile)` + "\n"},
		{[]string{"generate", "energy", "--late-fraction", "1.1"}, "medallion generate: late fraction 1.1: want a number between 0 and 1\n"},
		{[]string{"generate", "energy", "--format", "xml"}, `medallion generate: unknown format "xml" (want csv, json, ndjson)` + "\n"},
		{[]string{"generate", "energy", "--start", "yesterday"}, `medallion generate: --start "yesterday": want RFC 3339`},
	} {
		code, _, stderr := cli(t, "", tc.args...)
		if code != 2 || !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2, %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestGenerateToDevice: --out naming a device or a pipe writes into it and
// leaves it what it was (a rename over /dev/null would replace the device).
func TestGenerateToDevice(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- -1
			return
		}
		defer f.Close()
		n, _ := io.Copy(io.Discard, f)
		got <- n
	}()
	code, _, stderr := cli(t, "", "generate", "energy", "--rows", "1000", "--out", fifo)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := <-got; n < 1000*70 {
		t.Errorf("read %d bytes from the pipe", n)
	}
	if fi, err := os.Stat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the pipe was replaced: %v %v", fi.Mode(), err)
	}
	if code, _, stderr := cli(t, "", "generate", "energy", "--out", t.TempDir()); code != 1 || !strings.Contains(stderr, "is a directory") {
		t.Errorf("--out DIR: exit %d, %q", code, stderr)
	}
}
