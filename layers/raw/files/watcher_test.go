package files

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// folders returns the two kinds of watched folder, each beside a lake: a
// local directory, and a prefix of the lake's own MinIO bucket.
func folders(t *testing.T) map[string]func(t *testing.T) (lakeStore, dir lake.Store) {
	return map[string]func(t *testing.T) (lake.Store, lake.Store){
		"local": func(t *testing.T) (lake.Store, lake.Store) {
			l, err := lake.NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			d, err := lake.NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return l, d
		},
		"minio": func(t *testing.T) (lake.Store, lake.Store) {
			l, _, url := testenv.S3Store(t)
			srv := testenv.MinIO(t)
			o := srv.Options("")
			d, err := lake.Open(context.Background(), url+"/incoming", o)
			if err != nil {
				t.Fatal(err)
			}
			return l, d
		},
	}
}

func put(t *testing.T, st lake.Store, key, body string) {
	t.Helper()
	if _, err := st.Put(context.Background(), key, strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
}

func poll(t *testing.T, w *Watcher) Batch {
	t.Helper()
	b, err := w.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func watcher(t *testing.T, l, d lake.Store, mod func(*Options)) *Watcher {
	t.Helper()
	m, _ := NewMatcher("*.ndjson")
	o := Options{Source: "s", Format: "ndjson", Lake: l, Dir: d, Match: m, IncludeExisting: true, OnChange: "ignore", AfterIngest: "keep"}
	if mod != nil {
		mod(&o)
	}
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// landed is the names of the raw objects of source s, sorted.
func landed(t *testing.T, l lake.Store) []string {
	t.Helper()
	ms, err := raw.Manifests(context.Background(), l, "s")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	sort.Strings(out)
	return out
}

// TestWatcherTakesEachFileOnce: stable files are taken once, partial and
// growing ones only when complete and unchanged across two polls, and a
// restart takes nothing again.
func TestWatcherTakesEachFileOnce(t *testing.T) {
	for name, mk := range folders(t) {
		t.Run(name, func(t *testing.T) {
			l, d := mk(t)
			put(t, d, "a.ndjson", "{\"a\":1}\n")
			put(t, d, "sub/b.ndjson", "{\"b\":1}\n")
			put(t, d, "c.ndjson.part", "{\"c\":")
			put(t, d, ".hidden.ndjson", "{}\n")
			put(t, d, "notes.txt", "x")
			w := watcher(t, l, d, nil)
			if b := poll(t, w); b.Taken != 0 || b.Waiting != 2 {
				t.Fatalf("first poll: %+v (want 2 waiting, none taken)", b)
			}
			put(t, d, "grow.ndjson", "{\"g\":1}\n") // growing: seen with two sizes
			if b := poll(t, w); b.Taken != 2 {
				t.Fatalf("second poll: %+v", b)
			}
			put(t, d, "grow.ndjson", "{\"g\":1}\n{\"g\":2}\n")
			put(t, d, "c.ndjson", "{\"c\":1}\n") // the .part renamed
			if err := d.Delete(context.Background(), "c.ndjson.part"); err != nil {
				t.Fatal(err)
			}
			poll(t, w)
			if b := poll(t, w); b.Taken != 2 {
				t.Fatalf("after rename: %+v", b)
			}
			want := []string{"a.ndjson", "c.ndjson", "grow.ndjson", "sub/b.ndjson"}
			if got := landed(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("landed %v, want %v", got, want)
			}
			// A restart: state from the lake, nothing taken again.
			w2 := watcher(t, l, d, nil)
			put(t, d, "d.ndjson", "{\"d\":1}\n")
			poll(t, w2)
			if b := poll(t, w2); b.Taken != 1 {
				t.Fatalf("after restart: %+v", b)
			}
			if got := landed(t, l); len(got) != 5 {
				t.Fatalf("landed %v", got)
			}
		})
	}
}

// TestWatcherOptions: include_existing false, batch limits, min_age,
// after_ingest move and on_change error.
func TestWatcherOptions(t *testing.T) {
	for name, mk := range folders(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l, d := mk(t)
			for i := range 5 {
				put(t, d, fmt.Sprintf("old%d.ndjson", i), fmt.Sprintf("{\"old\":%d}\n", i))
			}
			w := watcher(t, l, d, func(o *Options) { o.IncludeExisting = false })
			poll(t, w)
			poll(t, w)
			if got := landed(t, l); len(got) != 0 {
				t.Fatalf("include_existing false landed %v", got)
			}
			for i := range 3 {
				put(t, d, fmt.Sprintf("new%d.ndjson", i), fmt.Sprintf("{\"new\":%d}\n", i))
			}
			// A later start keeps the baseline; min_age takes files at first sight.
			_, moved := mk(t)
			w = watcher(t, l, d, func(o *Options) {
				o.IncludeExisting, o.MaxFiles, o.MinAge = false, 2, time.Nanosecond
				o.AfterIngest, o.MoveTo = "move", moved
				o.Now = func() time.Time { return time.Now().Add(time.Hour) }
			})
			if b := poll(t, w); b.Taken != 2 || !b.More {
				t.Fatalf("limited batch: %+v", b)
			}
			if b := poll(t, w); b.Taken != 1 || b.More {
				t.Fatalf("rest: %+v", b)
			}
			if got := landed(t, l); fmt.Sprint(got) != "[new0.ndjson new1.ndjson new2.ndjson]" {
				t.Fatalf("landed %v", got)
			}
			left, _ := d.List(ctx, "", "")
			there, _ := moved.List(ctx, "", "")
			if len(left) != 5 || len(there) != 3 {
				t.Fatalf("after move: %d left, %d moved (want 5, 3)", len(left), len(there))
			}
			// on_change: error names the file rewritten in place.
			w = watcher(t, l, d, func(o *Options) { o.OnChange = "error" })
			put(t, d, "old1.ndjson", "{\"old\":1, \"again\":true}\n")
			if _, err := w.Poll(ctx); err == nil || !strings.Contains(err.Error(), "old1.ndjson changed after it was taken") {
				t.Fatalf("on_change error: %v", err)
			}
		})
	}
}

// TestWatcherIncremental: with incremental listing a poll lists only after
// the cursor, the state keeps nothing before it, a waiting or .part file
// holds it back, and include_existing: false over many old files starts
// without reading them.
func TestWatcherIncremental(t *testing.T) {
	for name, mk := range folders(t) {
		t.Run(name, func(t *testing.T) {
			l, d := mk(t)
			n := 500 // a PUT each on MinIO
			if name == "local" {
				n = 100000 // as issue 15 asks
			}
			for i := range n {
				key := fmt.Sprintf("2024/old%06d.ndjson", i)
				if lp, ok := d.(lake.LocalPather); ok { // without the store's fsync per file
					_ = os.MkdirAll(filepath.Dir(lp.LocalPath(key)), 0o755)
					if err := os.WriteFile(lp.LocalPath(key), []byte("{}\n"), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				put(t, d, key, "{}\n")
			}
			start := time.Now()
			w := watcher(t, l, d, func(o *Options) { o.IncludeExisting, o.Incremental = false, true })
			poll(t, w)
			took := time.Since(start)
			t.Logf("include_existing: false over %d old files: first poll in %s", n, took)
			if took > 5*time.Second || len(w.st.seen) != 0 || w.st.cursor != fmt.Sprintf("2024/old%06d.ndjson", n-1) {
				t.Fatalf("baseline of %d files: %s, %d in state, cursor %q", n, took, len(w.st.seen), w.st.cursor)
			}
			put(t, d, "2025/a.ndjson", "{\"a\":1}\n")
			put(t, d, "2025/b.ndjson.part", "{\"b\"")
			put(t, d, "2025/c.ndjson", "{\"c\":1}\n")
			poll(t, w)
			if b := poll(t, w); b.Taken != 2 || w.st.cursor != "2025/a.ndjson" {
				t.Fatalf("poll: %+v, cursor %q", b, w.st.cursor)
			}
			put(t, d, "2025/b.ndjson", "{\"b\":1}\n")
			if err := d.Delete(context.Background(), "2025/b.ndjson.part"); err != nil {
				t.Fatal(err)
			}
			poll(t, w)
			if b := poll(t, w); b.Taken != 1 || w.st.cursor != "2025/c.ndjson" || len(w.st.seen) != 0 {
				t.Fatalf("after rename: %+v, cursor %q, state %v", b, w.st.cursor, w.st.seen)
			}
			w2 := watcher(t, l, d, func(o *Options) { o.IncludeExisting, o.Incremental = false, true })
			if b := poll(t, w2); b.Taken != 0 || b.Waiting != 0 || w2.st.cursor != "2025/c.ndjson" {
				t.Fatalf("restart: %+v, cursor %q", b, w2.st.cursor)
			}
			if got := landed(t, l); fmt.Sprint(got) != "[2025/a.ndjson 2025/b.ndjson 2025/c.ndjson]" {
				t.Fatalf("landed %v", got)
			}
		})
	}
}

// TestFolderHoldingTheLake: a watched folder that holds the lake would take
// the lake's own objects; it is refused.
func TestFolderHoldingTheLake(t *testing.T) {
	dir := t.TempDir()
	l, err := lake.NewLocal(filepath.Join(dir, "lake"))
	if err != nil {
		t.Fatal(err)
	}
	p := &config.Pipeline{}
	src := &config.Source{Name: "s", Format: "csv", Files: &config.Files{Path: dir, AfterIngest: "keep", OnChange: "ignore"}}
	if _, err := FromConfig(context.Background(), l, p, src, nil); err == nil || !strings.Contains(err.Error(), "holds the lake") {
		t.Fatalf("got %v", err)
	}
	src.Files.Path = filepath.Join(dir, "drop")
	if _, err := FromConfig(context.Background(), l, p, src, nil); err != nil {
		t.Fatal(err)
	}
}

// TestOtherBucket: a prefix of another bucket, reached with the source's
// own endpoint and credentials (the lake here is a local directory and the
// pipeline has no s3: section).
func TestOtherBucket(t *testing.T) {
	srv := testenv.MinIO(t)
	_, _, url := testenv.S3Store(t)
	l, err := lake.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	own := &config.S3{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Secure: srv.Secure}
	src := &config.Source{Name: "s", Format: "ndjson", Files: &config.Files{Path: url + "/in", S3: own,
		IncludeExisting: true, AfterIngest: "delete", OnChange: "ignore", MinAge: time.Nanosecond}}
	w, err := FromConfig(context.Background(), l, &config.Pipeline{}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	put(t, w.o.Dir, "x.ndjson", "{\"x\":1}\n")
	time.Sleep(10 * time.Millisecond)
	if b := poll(t, w); b.Taken != 1 {
		t.Fatalf("poll: %+v", b)
	}
	if left, err := w.o.Dir.List(context.Background(), "", ""); err != nil || len(left) != 0 {
		t.Fatalf("after_ingest delete left %v (%v)", left, err)
	}
	if got := landed(t, l); fmt.Sprint(got) != "[x.ndjson]" {
		t.Fatalf("landed %v", got)
	}
}
