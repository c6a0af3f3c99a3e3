package delta_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// taggedFile writes a data file and returns its add action with the
// checksum tag, as the layer writers record it.
func taggedFile(t *testing.T, st lake.Store, tbl *delta.Table, path string, body []byte) delta.Add {
	t.Helper()
	if _, err := st.Put(t.Context(), tbl.Key(path), bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	return delta.Add{Path: path, Size: int64(len(body)), ModificationTime: time.Now().UnixMilli(), DataChange: true,
		Tags: delta.WithSHA256(map[string]string{"other": "kept"}, hex.EncodeToString(sum[:]))}
}

func TestVerify(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, st lake.Store) {
		ctx := t.Context()
		tbl := delta.Open(st, "silver/v")
		s := create(t, tbl)
		body := bytes.Repeat([]byte("0123456789"), 100)
		adds := []delta.Add{
			taggedFile(t, st, tbl, "a.parquet", body),
			taggedFile(t, st, tbl, "b.parquet", body),
			taggedFile(t, st, tbl, "c.parquet", body),
			taggedFile(t, st, tbl, "d.parquet", body),
			putFile(t, st, tbl, "e-spark.parquet"), // no tag
		}
		s, err := tbl.Commit(ctx, s, delta.Commit{Adds: adds, IsBlindAppend: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := tbl.Verify(ctx, s, 3)
		if err != nil {
			t.Fatal(err)
		}
		if res.Files != 5 || res.Unverified != 1 || len(res.Mismatches) != 0 || res.Bytes != 4*int64(len(body)) {
			t.Fatalf("clean table: %+v, want 5 files, 1 unverified, %d bytes, no mismatch", res, 4*len(body))
		}

		// b: 16 bytes flipped in place; c: truncated; d: gone.
		flipped := bytes.Clone(body)
		for i := 500; i < 516; i++ {
			flipped[i] ^= 0xff
		}
		put := func(key string, b []byte) {
			if _, err := st.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatal(err)
			}
		}
		put(tbl.Key("b.parquet"), flipped)
		put(tbl.Key("c.parquet"), body[:600])
		if err := st.Delete(ctx, tbl.Key("d.parquet")); err != nil {
			t.Fatal(err)
		}
		res, err = tbl.Verify(ctx, s, 3)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range res.Mismatches {
			got = append(got, m.Path+" "+m.Problem)
		}
		if want := "b.parquet sha256,c.parquet size,d.parquet missing"; strings.Join(got, ",") != want {
			t.Fatalf("mismatches %q, want %q", got, want)
		}
		sum := sha256.Sum256(flipped)
		if m := res.Mismatches[0]; m.Expected != adds[1].Tags[delta.TagSHA256] || m.Found != hex.EncodeToString(sum[:]) {
			t.Errorf("sha256 mismatch %+v: want expected %s, found %x", m, adds[1].Tags[delta.TagSHA256], sum)
		}
		if m := res.Mismatches[1]; m.Expected != "1000 bytes" || m.Found != "600 bytes" {
			t.Errorf("size mismatch %+v", m)
		}
	})
}

func TestCheckLocalFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "part-1.parquet")
	if err := os.WriteFile(path, make([]byte, 90), 0o644); err != nil {
		t.Fatal(err)
	}
	f := delta.Add{Path: "dt=2026-01-01/part-1.parquet", Size: 100}
	err := delta.CheckLocalFile("silver.usage", 7, f, path)
	if !errors.Is(err, delta.ErrDamagedFile) {
		t.Fatalf("err = %v, want ErrDamagedFile", err)
	}
	for _, want := range []string{"silver.usage", "version 7", "dt=2026-01-01/part-1.parquet", "90 bytes", "records 100"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	f.Size = 90
	if err := delta.CheckLocalFile("silver.usage", 7, f, path); err != nil {
		t.Errorf("a whole file: %v", err)
	}
	if err := delta.CheckLocalFile("silver.usage", 7, f, path+".gone"); !errors.Is(err, lake.ErrNotExist) {
		t.Errorf("a missing file: %v, want lake.ErrNotExist", err)
	}
}

// TestCheckpointKeepsTags: add.tags (the checksums) survive a checkpoint,
// stored as Spark's map<string,string> column add.tags.
func TestCheckpointKeepsTags(t *testing.T) {
	st := testenv.LocalStore(t)
	ctx := t.Context()
	tbl := delta.Open(st, "gold/cp")
	s := create(t, tbl)
	a := taggedFile(t, st, tbl, "a.parquet", []byte("a"))
	s, err := tbl.Commit(ctx, s, delta.Commit{Adds: []delta.Add{a, putFile(t, st, tbl, "b.parquet")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	rc, _, err := st.Get(ctx, "gold/cp/_delta_log/00000000000000000001.checkpoint.parquet")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	rc.Close()
	pf, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pf.Schema().Lookup("add", "tags", "key_value", "value"); !ok {
		t.Fatalf("checkpoint has no add.tags map column:\n%s", pf.Schema())
	}
	if !strings.Contains(pf.Schema().String(), "optional group tags (MAP) {") {
		t.Errorf("add.tags is not a MAP:\n%s", pf.Schema())
	}
	// Nothing left in the JSON log before the checkpoint: the snapshot
	// comes from the checkpoint alone.
	if err := st.Delete(ctx, "gold/cp/_delta_log/00000000000000000001.json"); err != nil {
		t.Fatal(err)
	}
	got, err := delta.Open(st, "gold/cp").Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 2 || !maps.Equal(got.Files[0].Tags, a.Tags) || len(got.Files[1].Tags) != 0 {
		t.Errorf("files from the checkpoint %+v, want a with tags %v, b with none", got.Files, a.Tags)
	}
}
