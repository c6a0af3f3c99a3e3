package delta_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// goldenStore is a local store rooted at testdata/delta-golden: tables
// written by Spark (see its README). Tests only read it.
func goldenStore(t *testing.T) lake.Store {
	t.Helper()
	st, err := lake.NewLocal(filepath.Join(testenv.RepoRoot(t), "testdata", "delta-golden"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestGoldenTables(t *testing.T) {
	st := goldenStore(t)
	ctx := t.Context()
	cases := []struct {
		table    string
		files    int
		version  int64
		filePath func(*testing.T, []string)
	}{
		{"snapshot-data0", 2, 0, nil},
		{"snapshot-data1", 4, 1, nil},
		{"snapshot-data2", 2, 2, nil},
		{"snapshot-data3", 4, 3, nil},
		{"snapshot-data2-deleted", 3, 4, nil},
		{"snapshot-repartitioned", 2, 5, nil},
		{"snapshot-vacuumed", 2, 5, nil},
		{"checkpoint", 1, 14, func(t *testing.T, p []string) {
			if !slices.Equal(p, []string{"15"}) {
				t.Errorf("active files %v, want [15]", p)
			}
		}},
		{"basic-with-inserts-deletes-checkpoint", 0, 13, nil},
		{"multi-part-checkpoint", 10, 1, nil},
		{"corrupted-last-checkpoint", 11, 10, func(t *testing.T, p []string) {
			want := []string{"0", "1", "10", "2", "3", "4", "5", "6", "7", "8", "9"}
			if !slices.Equal(p, want) {
				t.Errorf("active files %v, want %v", p, want)
			}
		}},
		{"data-reader-primitives", 2, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.table, func(t *testing.T) {
			tbl := delta.Open(st, c.table)
			s, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Version != c.version {
				t.Errorf("version %d, want %d", s.Version, c.version)
			}
			if c.files > 0 && len(s.Files) != c.files {
				t.Errorf("%d active files, want %d: %v", len(s.Files), c.files, paths(s))
			}
			if c.filePath != nil {
				c.filePath(t, paths(s))
			}
			for _, f := range s.Files {
				if strings.Contains(f.Path, "/") || f.Path == "" {
					t.Errorf("odd path %q", f.Path)
				}
				if !strings.HasPrefix(c.table, "checkpoint") && !strings.HasPrefix(c.table, "corrupted") {
					if _, err := st.Stat(ctx, tbl.Key(f.Path)); err != nil {
						t.Errorf("active file %s: %v", f.Path, err)
					}
				}
			}
			// The snapshot from checkpoints equals the one from the JSON log.
			replay, _ := delta.OpenWith(st, c.table, withIgnoreCheckpoints())
			r, err := replay.Snapshot(ctx)
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			assertSameSnapshot(t, s, r)
		})
	}
}

func TestGoldenTimeTravel(t *testing.T) {
	st := goldenStore(t)
	ctx := t.Context()
	tbl := delta.Open(st, "snapshot-data3")
	want := map[int64]int{0: 2, 1: 4, 2: 2, 3: 4}
	hist, err := tbl.History(ctx, 0)
	if err != nil || len(hist) != 4 {
		t.Fatalf("history %v %v", hist, err)
	}
	for _, h := range hist {
		s, err := tbl.SnapshotAt(ctx, h.Version)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Files) != want[h.Version] {
			t.Errorf("version %d: %d files, want %d", h.Version, len(s.Files), want[h.Version])
		}
		byTime, err := tbl.SnapshotAsOf(ctx, s.Timestamp)
		if err != nil || byTime.Version != h.Version {
			t.Errorf("as of %v: %v %v, want version %d", s.Timestamp, byTime, err, h.Version)
		}
	}
	// snapshot-repartitioned: the rewrite adds files with dataChange=false.
	s, err := delta.Open(st, "snapshot-repartitioned").Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Files {
		if f.DataChange {
			t.Errorf("repartitioned file %s has dataChange=true", f.Path)
		}
	}
	// multi-part-checkpoint: version 1 is read from two checkpoint parts.
	mp, err := delta.Open(st, "multi-part-checkpoint").SnapshotAt(ctx, 1)
	if err != nil || len(mp.Files) != 10 || mp.Metadata.Configuration["delta.checkpointInterval"] != "1" {
		t.Errorf("multi-part checkpoint: %v %v", mp, err)
	}
}

func TestGoldenRefused(t *testing.T) {
	st := goldenStore(t)
	ctx := t.Context()
	_, err := delta.Open(st, "versions-not-contiguous").Snapshot(ctx)
	if err == nil || !strings.Contains(err.Error(), "version 1 is missing") {
		t.Errorf("versions-not-contiguous: %v, want an error naming missing version 1", err)
	}
	_, err = delta.Open(st, "deltalog-invalid-protocol-version").Snapshot(ctx)
	if !errors.Is(err, delta.ErrUnsupportedProtocol) || !strings.Contains(err.Error(), "99") {
		t.Errorf("invalid protocol: %v, want ErrUnsupportedProtocol naming 99", err)
	}
}

func TestGoldenPrimitiveSchema(t *testing.T) {
	s, err := delta.Open(goldenStore(t), "data-reader-primitives").Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	schema, err := s.Schema()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"as_int integer", "as_long long", "as_byte byte", "as_short short", "as_boolean boolean",
		"as_float float", "as_double double", "as_string string", "as_binary binary", "as_big_decimal decimal(1,0)"}
	var got []string
	for _, f := range schema.Fields {
		got = append(got, f.Name+" "+f.Type.String())
		if !f.Nullable {
			t.Errorf("%s not nullable", f.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("schema %v, want %v", got, want)
	}
	if p, sc, ok := schema.Fields[9].Type.Decimal(); !ok || p != 1 || sc != 0 {
		t.Errorf("decimal %d,%d %v", p, sc, ok)
	}
	if n, ok := s.NumRecords(); ok {
		t.Errorf("no stats were written, yet NumRecords = %d", n)
	}
}

// TestGoldenCorruptedLastCheckpoint damages _last_checkpoint of a copy of
// the table in every way a crash or a bad writer could.
func TestGoldenCorruptedLastCheckpoint(t *testing.T) {
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "delta-golden", "corrupted-last-checkpoint", "_delta_log")
	for _, body := range []string{"", "{\"vers", `{"version":7,"size":13}`, `{"version":10,"size":13,"parts":3}`} {
		st := testenv.LocalStore(t)
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == "_last_checkpoint" {
				b = []byte(body)
			}
			if _, err := st.Put(t.Context(), "t/_delta_log/"+e.Name(), strings.NewReader(string(b)), int64(len(b))); err != nil {
				t.Fatal(err)
			}
		}
		s, err := delta.Open(st, "t").Snapshot(t.Context())
		if err != nil {
			t.Fatalf("_last_checkpoint %q: %v", body, err)
		}
		if s.Version != 10 || len(s.Files) != 11 {
			t.Errorf("_last_checkpoint %q: version %d, %d files", body, s.Version, len(s.Files))
		}
	}
}
