package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// verifyLake runs the starter pipeline over generated readings with bad and
// late rows, landed in two runs, so that every layer, the quarantine and the
// late table have data files.
func verifyLake(t *testing.T, kind string) *testLake {
	t.Helper()
	l := newTestLake(t, kind)
	l.run(t, "init", "--lake", l.url)
	data := filepath.Join(l.dir, "meters.ndjson")
	l.run(t, "generate", "energy", "--rows", "4000", "--bad-fraction", "0.01", "--late-fraction", "0.05", "--seed", "5", "--out", data)
	for _, f := range splitLines(t, data, 2) {
		l.run(t, "ingest", "meters", f)
		checkRunOK(t, l.run(t, "run"))
	}
	return l
}

// getObject reads a whole lake object.
func getObject(t *testing.T, st lake.Store, key string) []byte {
	t.Helper()
	rc, _, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerify: every writer records each data file's SHA-256 in add.tags;
// `medallion verify` passes a clean lake, names a file with 16 flipped
// bytes and a truncated one and exits 1; a query over the truncated file
// fails naming it (the size check on read), on a local lake and on MinIO.
func TestVerify(t *testing.T) {
	for _, kind := range []string{"local", "s3"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			l := verifyLake(t, kind)
			ctx := t.Context()

			// Every file of every layer carries its checksum, and it is right.
			tables := []string{"bronze/meters", "bronze/_quarantine", "silver/meter_usage_1m", "silver/_late", "gold/meter_usage_ma", "gold/top_meters"}
			snaps := map[string]*delta.Snapshot{}
			for _, dir := range tables {
				snap, err := delta.Open(l.store, dir).Snapshot(ctx)
				if err != nil {
					t.Fatalf("%s: %v", dir, err)
				}
				if len(snap.Files) == 0 {
					t.Fatalf("%s has no data files", dir)
				}
				for _, f := range snap.Files {
					sum := sha256.Sum256(getObject(t, l.store, dir+"/"+f.Path))
					if got := f.Tags[delta.TagSHA256]; got != hex.EncodeToString(sum[:]) {
						t.Errorf("%s/%s: tag %s = %q, want %x", dir, f.Path, delta.TagSHA256, got, sum)
					}
				}
				snaps[dir] = snap
			}

			out := l.run(t, "verify")
			for _, dir := range tables {
				name := strings.Replace(dir, "/", ".", 1)
				line := lineStarting(t, out, name+" version ")
				if !strings.Contains(line, " 0 mismatches") || strings.Contains(line, "unverified") {
					t.Errorf("clean lake: %q", line)
				}
			}

			// 16 bytes flipped in the middle of a silver file.
			silver := snaps["silver/meter_usage_1m"].Files[0]
			skey := "silver/meter_usage_1m/" + silver.Path
			b := getObject(t, l.store, skey)
			for i := len(b) / 2; i < len(b)/2+16; i++ {
				b[i] ^= 0x5a
			}
			if _, err := l.store.Put(ctx, skey, bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatal(err)
			}
			args := []string{"verify", "silver.meter_usage_1m"}
			out, errOut, err := l.exec(t, nil, args...)
			if exitCode(err) != 1 {
				t.Fatalf("verify after a bit flip: exit %v, want 1\n%s%s", err, out, errOut)
			}
			sum := sha256.Sum256(b)
			if !strings.Contains(out, "MISMATCH "+skey+": sha256: expected "+silver.Tags[delta.TagSHA256]+", found "+hex.EncodeToString(sum[:])) {
				t.Errorf("verify does not name the flipped file %s:\n%s", skey, out)
			}
			oneLineErr(t, args, errOut, "medallion verify: ", "1 data file(s) in 1 table(s)")

			// A truncated gold file: reading it fails naming the file, and
			// verify names it too.
			gold := snaps["gold/meter_usage_ma"].Files[0]
			gkey := "gold/meter_usage_ma/" + gold.Path
			g := getObject(t, l.store, gkey)[:gold.Size-100]
			if _, err := l.store.Put(ctx, gkey, bytes.NewReader(g), int64(len(g))); err != nil {
				t.Fatal(err)
			}
			args = []string{"query", "SELECT count(*) FROM gold.meter_usage_ma"}
			out, errOut, err = l.exec(t, nil, args...)
			if exitCode(err) != 1 {
				t.Fatalf("query over a truncated file: exit %v, want 1\n%s%s", err, out, errOut)
			}
			oneLineErr(t, args, errOut, "medallion query: ", "gold.meter_usage_ma", gold.Path, "damaged or replaced")
			out, errOut, err = l.exec(t, nil, "verify")
			if exitCode(err) != 1 {
				t.Fatalf("verify of the whole lake: exit %v, want 1\n%s%s", err, out, errOut)
			}
			if !strings.Contains(out, "MISMATCH "+gkey+": size: ") || !strings.Contains(out, "MISMATCH "+skey+": sha256: ") {
				t.Errorf("verify does not name both damaged files:\n%s", out)
			}
			if line := lineStarting(t, out, "bronze.meters version "); !strings.Contains(line, " 0 mismatches") {
				t.Errorf("an untouched table: %q", line)
			}
		})
	}
}
