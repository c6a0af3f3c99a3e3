// Package storetest is the acceptance suite every lake.Store implementation
// must pass. Run it from the implementation's tests:
//
//	func TestLocal(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) lake.Store { return testenv.LocalStore(t) })
//	}
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/medallion-dev/medallion/lake"
)

// Run runs every acceptance test against stores made by newStore. Each
// subtest calls newStore once and may run in parallel with the others, so
// newStore must return an empty store of its own each time (a fresh
// directory, bucket or prefix).
func Run(t *testing.T, newStore func(t *testing.T) lake.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st lake.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyObject", testEmptyObject},
		{"GetRange", testGetRange},
		{"NotExist", testNotExist},
		{"InvalidKeys", testInvalidKeys},
		{"PutIfAbsent", testPutIfAbsent},
		{"PutIfAbsentUnknownSize", testPutIfAbsentUnknownSize},
		{"PutIfAbsentRace", testPutIfAbsentRace},
		{"List", testList},
		{"Delete", testDelete},
		{"Overwrite", testOverwrite},
		{"ShortBody", testShortBody},
		{"LargeStreamed", testLargeStreamed},
		{"PutFile", testPutFile},
		{"MoveFile", testMoveFile},
		{"ConcurrentOverwriteReaders", testConcurrentOverwriteReaders},
		{"CancelledContext", testCancelledContext},
		{"LocalPath", testLocalPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func testRoundTrip(t *testing.T, st lake.Store) {
	ctx := t.Context()
	if st.URL() == "" {
		t.Error("URL() is empty")
	}
	key := "bronze/meters/part-0001.parquet"
	body := []byte("hello, lake\n")
	put := mustPut(t, st, key, body)
	if put.Key != key || put.Size != int64(len(body)) || put.ETag == "" {
		t.Errorf("Put returned %+v, want key %q, size %d and an ETag", put, key, len(body))
	}
	got, info := mustGet(t, st, key)
	if !bytes.Equal(got, body) {
		t.Errorf("Get = %q, want %q", got, body)
	}
	if info.Key != key || info.Size != int64(len(body)) || info.ETag != put.ETag {
		t.Errorf("Get info = %+v, want key %q, size %d, ETag %q", info, key, len(body), put.ETag)
	}
	stat, err := st.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if stat.Key != key || stat.Size != int64(len(body)) || stat.ETag != put.ETag || stat.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want key %q, size %d, ETag %q and a ModTime", stat, key, len(body), put.ETag)
	}
}

func testEmptyObject(t *testing.T, st lake.Store) {
	mustPut(t, st, "empty", nil)
	got, info := mustGet(t, st, "empty")
	if len(got) != 0 || info.Size != 0 {
		t.Errorf("Get of empty object = %d bytes, info size %d; want 0", len(got), info.Size)
	}
	rc, err := st.GetRange(t.Context(), "empty", 0, -1)
	if err != nil {
		t.Fatalf("GetRange(empty, 0, -1): %v", err)
	}
	if b := readAll(t, rc); len(b) != 0 {
		t.Errorf("GetRange(empty, 0, -1) = %d bytes, want 0", len(b))
	}
}

func testGetRange(t *testing.T, st lake.Store) {
	ctx := t.Context()
	body := make([]byte, 1000)
	for i := range body {
		body[i] = byte(i % 251)
	}
	mustPut(t, st, "range/obj", body)
	cases := []struct {
		offset, length int64
		want           []byte
	}{
		{0, 10, body[:10]},
		{100, 50, body[100:150]},   // the middle
		{990, -1, body[990:]},      // to the end
		{0, -1, body},              // whole object
		{995, 100, body[995:]},     // past the end: cut at the end
		{999, 1, body[999:]},       // last byte
		{1000, -1, []byte{}},       // at the end: empty
		{500, 0, []byte{}},         // zero length
		{0, 1000, body},            // exact length
		{1, 998, body[1:999]},      // all but the ends
		{250, -1, body[250:]},      // tail
		{0, 1, body[:1]},           // first byte
		{400, 600, body[400:1000]}, // exactly to the end
	}
	for _, c := range cases {
		rc, err := st.GetRange(ctx, "range/obj", c.offset, c.length)
		if err != nil {
			t.Errorf("GetRange(%d, %d): %v", c.offset, c.length, err)
			continue
		}
		if got := readAll(t, rc); !bytes.Equal(got, c.want) {
			t.Errorf("GetRange(%d, %d) = %d bytes, want %d bytes (content differs: %v)", c.offset, c.length, len(got), len(c.want), len(got) == len(c.want))
		}
	}
	if rc, err := st.GetRange(ctx, "range/obj", 1001, -1); err == nil {
		rc.Close()
		t.Error("GetRange with offset past the end: no error")
	} else if errors.Is(err, lake.ErrNotExist) {
		t.Errorf("GetRange with offset past the end = %v, want an error other than ErrNotExist", err)
	}
	if rc, err := st.GetRange(ctx, "range/obj", -1, 5); err == nil {
		rc.Close()
		t.Error("GetRange with a negative offset: no error")
	}
}

func testNotExist(t *testing.T, st lake.Store) {
	ctx := t.Context()
	mustPut(t, st, "present/file", []byte("x"))
	for _, key := range []string{"missing", "present/missing", "missing/deep/key", "present/file/below"} {
		rc, _, err := st.Get(ctx, key)
		checkNotExist(t, "Get", key, rc, err)
		rc, err = st.GetRange(ctx, key, 0, 1)
		checkNotExist(t, "GetRange", key, rc, err)
		rc, err = st.GetRange(ctx, key, 0, 0)
		checkNotExist(t, "GetRange (zero length)", key, rc, err)
		_, err = st.Stat(ctx, key)
		checkNotExist(t, "Stat", key, nil, err)
	}
	// A "directory" of other objects is not an object.
	_, err := st.Stat(ctx, "present")
	checkNotExist(t, "Stat", "present", nil, err)
}

func checkNotExist(t *testing.T, op, key string, rc io.ReadCloser, err error) {
	t.Helper()
	if rc != nil {
		rc.Close()
	}
	switch {
	case err == nil:
		t.Errorf("%s(%q) of a missing object: no error", op, key)
	case !errors.Is(err, lake.ErrNotExist):
		t.Errorf("%s(%q) = %v, want errors.Is(err, lake.ErrNotExist)", op, key, err)
	case !strings.Contains(err.Error(), key):
		t.Errorf("%s(%q) error %q does not name the key", op, key, err)
	}
}

func testInvalidKeys(t *testing.T, st lake.Store) {
	ctx := t.Context()
	for _, key := range []string{"", "/abs", "a/../b", "..", "a//b", "a/", "./a", "a/./b", `a\b`} {
		if _, err := st.Put(ctx, key, strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put(%q): no error for an invalid key", key)
		}
		if _, err := st.PutIfAbsent(ctx, key, strings.NewReader("x"), 1); err == nil {
			t.Errorf("PutIfAbsent(%q): no error for an invalid key", key)
		}
		if rc, _, err := st.Get(ctx, key); err == nil {
			rc.Close()
			t.Errorf("Get(%q): no error for an invalid key", key)
		}
		if err := st.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q): no error for an invalid key", key)
		}
	}
	if _, err := st.List(ctx, "../", ""); err == nil {
		t.Error(`List("../"): no error for an invalid prefix`)
	}
}

func testPutIfAbsent(t *testing.T, st lake.Store) {
	ctx := t.Context()
	key := "_delta_log/00000000000000000000.json"
	first := []byte(`{"commitInfo":{"writer":"first"}}`)
	info, err := st.PutIfAbsent(ctx, key, bytes.NewReader(first), int64(len(first)))
	if err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	if info.Size != int64(len(first)) || info.ETag == "" {
		t.Errorf("PutIfAbsent returned %+v, want size %d and an ETag", info, len(first))
	}
	second := []byte(`{"commitInfo":{"writer":"second, longer"}}`)
	_, err = st.PutIfAbsent(ctx, key, bytes.NewReader(second), int64(len(second)))
	if !errors.Is(err, lake.ErrExists) {
		t.Fatalf("second PutIfAbsent = %v, want lake.ErrExists", err)
	}
	if !strings.Contains(err.Error(), key) {
		t.Errorf("PutIfAbsent error %q does not name the key", err)
	}
	if got, _ := mustGet(t, st, key); !bytes.Equal(got, first) {
		t.Errorf("after a lost PutIfAbsent the object is %q, want the winner's %q", got, first)
	}
	// Once deleted, the key can be created again.
	if err := st.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := st.PutIfAbsent(ctx, key, bytes.NewReader(second), int64(len(second))); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
	if got, _ := mustGet(t, st, key); !bytes.Equal(got, second) {
		t.Errorf("after PutIfAbsent following Delete the object is %q, want %q", got, second)
	}
}

func testPutIfAbsentUnknownSize(t *testing.T, st lake.Store) {
	ctx := t.Context()
	body := []byte("lease: owner=a expires=2026-01-01T00:00:00Z\n")
	if _, err := st.PutIfAbsent(ctx, "leases/job", onlyReader{bytes.NewReader(body)}, -1); err != nil {
		t.Fatalf("PutIfAbsent with size -1: %v", err)
	}
	_, err := st.PutIfAbsent(ctx, "leases/job", onlyReader{strings.NewReader("other")}, -1)
	if !errors.Is(err, lake.ErrExists) {
		t.Fatalf("second PutIfAbsent with size -1 = %v, want lake.ErrExists", err)
	}
	if got, _ := mustGet(t, st, "leases/job"); !bytes.Equal(got, body) {
		t.Errorf("object is %q, want %q", got, body)
	}
}

func testPutIfAbsentRace(t *testing.T, st lake.Store) {
	ctx := t.Context()
	const writers = 16
	key := "race/_delta_log/00000000000000000001.json"
	contents := make([][]byte, writers)
	for i := range contents {
		// Different sizes too, so a mix of two writers cannot pass unnoticed.
		contents[i] = bytes.Repeat([]byte(fmt.Sprintf("writer %02d;", i)), 100+i*37)
	}
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		errs    = make([]error, writers)
		winners atomic.Int32
	)
	for i := range writers {
		wg.Go(func() {
			<-start
			_, errs[i] = st.PutIfAbsent(ctx, key, bytes.NewReader(contents[i]), int64(len(contents[i])))
			if errs[i] == nil {
				winners.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			winner = i
		case !errors.Is(err, lake.ErrExists):
			t.Errorf("writer %d: PutIfAbsent = %v, want nil or lake.ErrExists", i, err)
		}
	}
	if n := winners.Load(); n != 1 {
		t.Fatalf("%d of %d racing PutIfAbsent calls won, want exactly 1", n, writers)
	}
	if got, _ := mustGet(t, st, key); !bytes.Equal(got, contents[winner]) {
		t.Errorf("object holds %d bytes, want the winner's (writer %d) %d bytes", len(got), winner, len(contents[winner]))
	}
}

func testList(t *testing.T, st lake.Store) {
	ctx := t.Context()
	keys := []string{"l/a", "l/b/1", "l/b/2", "l/b/3", "l/c", "l.x", "m/a", "l/ba", "l/b-", "l/b/sub/deep"}
	for _, k := range keys {
		mustPut(t, st, k, []byte("content of "+k))
	}
	cases := []struct {
		prefix, startAfter string
		want               []string
	}{
		{"", "", sorted(keys)},
		{"l/", "", []string{"l/a", "l/b-", "l/b/1", "l/b/2", "l/b/3", "l/b/sub/deep", "l/ba", "l/c"}},
		{"l/b", "", []string{"l/b-", "l/b/1", "l/b/2", "l/b/3", "l/b/sub/deep", "l/ba"}},
		{"l/b/", "", []string{"l/b/1", "l/b/2", "l/b/3", "l/b/sub/deep"}},
		{"l/", "l/b/1", []string{"l/b/2", "l/b/3", "l/b/sub/deep", "l/ba", "l/c"}},
		{"l/b/", "l/b/3", []string{"l/b/sub/deep"}},
		{"l/", "l/a0", []string{"l/b-", "l/b/1", "l/b/2", "l/b/3", "l/b/sub/deep", "l/ba", "l/c"}}, // startAfter need not exist
		{"l/", "l/c", nil},
		{"", "l/c", []string{"m/a"}},
		{"l", "", []string{"l.x", "l/a", "l/b-", "l/b/1", "l/b/2", "l/b/3", "l/b/sub/deep", "l/ba", "l/c"}},
		{"nothing/", "", nil},
		{"l/b/sub/deep/", "", nil}, // an object is not a directory
		{"m/a", "", []string{"m/a"}},
	}
	for _, c := range cases {
		got, err := st.List(ctx, c.prefix, c.startAfter)
		if err != nil {
			t.Errorf("List(%q, %q): %v", c.prefix, c.startAfter, err)
			continue
		}
		var gotKeys []string
		for _, o := range got {
			gotKeys = append(gotKeys, o.Key)
			if want := int64(len("content of " + o.Key)); o.Size != want || o.ETag == "" {
				t.Errorf("List(%q, %q): %s has size %d and ETag %q, want size %d and an ETag", c.prefix, c.startAfter, o.Key, o.Size, o.ETag, want)
			}
		}
		if !slices.Equal(gotKeys, c.want) {
			t.Errorf("List(%q, %q) = %q, want %q", c.prefix, c.startAfter, gotKeys, c.want)
		}
	}
}

func testDelete(t *testing.T, st lake.Store) {
	ctx := t.Context()
	mustPut(t, st, "d/x/y", []byte("1"))
	mustPut(t, st, "d/keep", []byte("2"))
	for i := range 2 { // idempotent
		if err := st.Delete(ctx, "d/x/y"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if err := st.Delete(ctx, "never/existed"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if _, err := st.Stat(ctx, "d/x/y"); !errors.Is(err, lake.ErrNotExist) {
		t.Errorf("Stat after Delete = %v, want lake.ErrNotExist", err)
	}
	got, err := st.List(ctx, "d/", "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != 1 || got[0].Key != "d/keep" {
		t.Errorf("List after Delete = %v, want only d/keep", got)
	}
	// The pruned "directory" can be written again.
	mustPut(t, st, "d/x/z", []byte("3"))
}

func testOverwrite(t *testing.T, st lake.Store) {
	v1 := mustPut(t, st, "o/obj", []byte("version one"))
	v2 := mustPut(t, st, "o/obj", []byte("v2"))
	if got, info := mustGet(t, st, "o/obj"); string(got) != "v2" || info.Size != 2 {
		t.Errorf("after overwrite Get = %q (size %d), want %q", got, info.Size, "v2")
	}
	if v1.ETag == v2.ETag {
		t.Errorf("ETag %q did not change when the content changed", v1.ETag)
	}
	// Same size, different content: the ETag must still change.
	v3 := mustPut(t, st, "o/obj", []byte("v3"))
	if v3.ETag == v2.ETag {
		t.Errorf("ETag %q did not change on a same-size overwrite", v3.ETag)
	}
	if stat, err := st.Stat(t.Context(), "o/obj"); err != nil || stat.ETag != v3.ETag {
		t.Errorf("Stat after overwrite = %+v, %v; want ETag %q", stat, err, v3.ETag)
	}
}

func testShortBody(t *testing.T, st lake.Store) {
	ctx := t.Context()
	mustPut(t, st, "short", []byte("old"))
	if _, err := st.Put(ctx, "short", strings.NewReader("abc"), 10); err == nil {
		t.Error("Put with a body shorter than size: no error")
	}
	if got, _ := mustGet(t, st, "short"); string(got) != "old" {
		t.Errorf("after a failed Put the object is %q, want the old %q", got, "old")
	}
	if _, err := st.PutIfAbsent(ctx, "short-new", strings.NewReader("abc"), 10); err == nil {
		t.Error("PutIfAbsent with a body shorter than size: no error")
	}
	if _, err := st.Stat(ctx, "short-new"); !errors.Is(err, lake.ErrNotExist) {
		t.Errorf("after a failed PutIfAbsent Stat = %v, want lake.ErrNotExist", err)
	}
}

func testLargeStreamed(t *testing.T, st lake.Store) {
	ctx := t.Context()
	const size = 20 << 20
	// Random, so that a misplaced part cannot go unnoticed; over 16 MiB,
	// so the S3 store uploads it in more than one part.
	body := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{1, 2, 3}).Read(body) // never fails
	info, err := st.Put(ctx, "big/blob.bin", onlyReader{bytes.NewReader(body)}, -1)
	if err != nil {
		t.Fatalf("Put of %d bytes with size -1: %v", size, err)
	}
	if info.Size != size {
		t.Errorf("Put returned size %d, want %d", info.Size, size)
	}
	stat, err := st.Stat(ctx, "big/blob.bin")
	if err != nil || stat.Size != size {
		t.Fatalf("Stat = %+v, %v; want size %d", stat, err, size)
	}
	got, _ := mustGet(t, st, "big/blob.bin")
	if sha256.Sum256(got) != sha256.Sum256(body) {
		t.Errorf("Get returned %d bytes that differ from the %d written", len(got), size)
	}
	rc, err := st.GetRange(ctx, "big/blob.bin", 17<<20+3, 1<<20)
	if err != nil {
		t.Fatalf("GetRange: %v", err)
	}
	if part := readAll(t, rc); !bytes.Equal(part, body[17<<20+3:18<<20+3]) {
		t.Errorf("GetRange of a large object returned %d bytes that differ", len(part))
	}
}

// testPutFile uploads local files with lake.PutFile, one small and one
// over 16 MiB (the S3 store reads that one in parallel parts), and checks
// the stored bytes, the size and the SHA-256 it reports.
func testPutFile(t *testing.T, st lake.Store) {
	checkFileUpload(t, st, "PutFile", "files", 0, false, lake.PutFile)
}

// testMoveFile is testPutFile for lake.MoveFile (a local lake renames the
// files into place, another store uploads them); a file a store took by
// a rename is gone from where it was.
func testMoveFile(t *testing.T, st lake.Store) {
	checkFileUpload(t, st, "MoveFile", "moved", 1, true, lake.MoveFile)
}

// checkFileUpload stores files of three sizes (their bytes seeded by
// seed) under prefix with put, named name in errors, and checks what it
// stored and reported; moves says put takes the file when it can.
func checkFileUpload(t *testing.T, st lake.Store, name, prefix string, seed byte, moves bool,
	put func(ctx context.Context, st lake.Store, key, path string) (lake.PutFileInfo, error)) {
	ctx := t.Context()
	for _, size := range []int{0, 1000, 20<<20 + 7} {
		body := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{byte(size), seed}).Read(body) // never fails
		path := filepath.Join(t.TempDir(), "part.parquet")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%s/part-%d.parquet", prefix, size)
		info, err := put(ctx, st, key, path)
		if err != nil {
			t.Fatalf("%s of %d bytes: %v", name, size, err)
		}
		want := sha256.Sum256(body)
		if info.Size != int64(size) || info.SHA256 != hex.EncodeToString(want[:]) {
			t.Errorf("%s of %d bytes = %+v, want size %d, sha256 %x", name, size, info, size, want)
		}
		got, _ := mustGet(t, st, key)
		if sha256.Sum256(got) != want {
			t.Errorf("%s of %d bytes stored %d bytes that differ", name, size, len(got))
		}
		if lp, ok := st.(lake.LocalPather); moves && ok && sameDevice(lp.LocalPath(key), filepath.Dir(path)) {
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("MoveFile into a local lake on the file's filesystem left the file in place (%v)", err)
			}
		}
	}
}

// sameDevice reports whether the files a and b are on one filesystem.
func sameDevice(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return false
	}
	sa, okA := fa.Sys().(*syscall.Stat_t)
	sb, okB := fb.Sys().(*syscall.Stat_t)
	return okA && okB && sa.Dev == sb.Dev
}

func testConcurrentOverwriteReaders(t *testing.T, st lake.Store) {
	ctx := t.Context()
	// Two versions of different sizes, each one repeated byte: a partial or
	// mixed read shows up as a wrong length or a foreign byte.
	versions := map[byte]int{'a': 256 << 10, 'b': 384 << 10}
	put := func(c byte) error {
		_, err := st.Put(ctx, "hot/object", bytes.NewReader(bytes.Repeat([]byte{c}, versions[c])), int64(versions[c]))
		return err
	}
	if err := put('a'); err != nil {
		t.Fatalf("Put: %v", err)
	}
	var (
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		reads atomic.Int64
	)
	for r := range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rc, _, err := st.Get(ctx, "hot/object")
				if err != nil {
					t.Errorf("reader %d: Get during overwrites: %v", r, err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Errorf("reader %d: read during overwrites: %v", r, err)
					return
				}
				if len(b) == 0 || len(b) != versions[b[0]] || bytes.Count(b, b[:1]) != len(b) {
					t.Errorf("reader %d saw a partial or mixed object: %d bytes starting with %q", r, len(b), b[:min(len(b), 1)])
					return
				}
				reads.Add(1)
			}
		})
	}
	for i := range 24 {
		if err := put("ab"[i%2]); err != nil {
			t.Errorf("Put #%d during reads: %v", i, err)
			break
		}
	}
	close(stop)
	wg.Wait()
	if reads.Load() == 0 {
		t.Error("readers completed no read")
	}
}

func testCancelledContext(t *testing.T, st lake.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.Put(ctx, "cancelled", strings.NewReader("x"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := st.PutIfAbsent(ctx, "cancelled", strings.NewReader("x"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("PutIfAbsent with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := st.List(ctx, "", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := st.Stat(t.Context(), "cancelled"); !errors.Is(err, lake.ErrNotExist) {
		t.Errorf("after cancelled Puts Stat = %v, want lake.ErrNotExist", err)
	}
}

func testLocalPath(t *testing.T, st lake.Store) {
	lp, ok := st.(lake.LocalPather)
	if !ok {
		t.Skip("store has no local files")
	}
	mustPut(t, st, "lp/file.parquet", []byte("PAR1"))
	b, err := os.ReadFile(lp.LocalPath("lp/file.parquet"))
	if err != nil || string(b) != "PAR1" {
		t.Errorf("reading LocalPath = %q, %v; want %q", b, err, "PAR1")
	}
}

// onlyReader hides every method but Read, so stores cannot seek or size it.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func mustPut(t *testing.T, st lake.Store, key string, body []byte) lake.ObjectInfo {
	t.Helper()
	info, err := st.Put(t.Context(), key, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func mustGet(t *testing.T, st lake.Store, key string) ([]byte, lake.ObjectInfo) {
	t.Helper()
	rc, info, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return readAll(t, rc), info
}

func readAll(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
