package lake_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/storetest"
)

func TestLocal(t *testing.T) {
	storetest.Run(t, func(t *testing.T) lake.Store { return testenv.LocalStore(t) })
}

func TestLocalTempFilesHidden(t *testing.T) {
	dir := t.TempDir()
	st, err := lake.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A temp file left by a writer that crashed mid-Put.
	if err := os.MkdirAll(filepath.Join(dir, ".tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".tmp", "obj-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(t.Context(), "a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	got, err := st.List(t.Context(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "a" {
		t.Errorf("List = %+v, want only a", got)
	}
	if _, err := st.Put(t.Context(), ".tmp/x", strings.NewReader("x"), 1); err == nil {
		t.Error("Put under .tmp/: no error")
	}
	// After the Put, only the crashed writer's file is left in .tmp.
	entries, _ := os.ReadDir(filepath.Join(dir, ".tmp"))
	if len(entries) != 1 {
		t.Errorf(".tmp holds %d entries after Put, want only the stale one", len(entries))
	}
}

func TestNewLocalRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(tmp, "obj-stale"), filepath.Join(tmp, "obj-fresh")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := lake.NewLocal(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file survived NewLocal: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file (a Put in progress) was removed: %v", err)
	}
}

func TestLocalURLAndPath(t *testing.T) {
	dir := t.TempDir()
	st, err := lake.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if want := "file://" + filepath.ToSlash(real); st.URL() != want {
		t.Errorf("URL() = %q, want %q", st.URL(), want)
	}
	if got, want := st.LocalPath("a/b.parquet"), filepath.Join(real, "a", "b.parquet"); got != want {
		t.Errorf("LocalPath = %q, want %q", got, want)
	}
	if got := st.LocalPath("../escape"); got != "" {
		t.Errorf("LocalPath(../escape) = %q, want empty", got)
	}
	// The error names the store and the key, and unwraps to the sentinel.
	_, err = st.Stat(t.Context(), "no/such")
	var lerr *lake.Error
	if !errors.As(err, &lerr) || lerr.Op != "stat" || lerr.Key != "no/such" || !errors.Is(err, lake.ErrNotExist) {
		t.Errorf("Stat error = %#v, want a *lake.Error{Op: stat, Key: no/such} wrapping ErrNotExist", err)
	}
	if want := "stat " + st.URL() + "/no/such: object does not exist"; err.Error() != want {
		t.Errorf("error text = %q, want %q", err, want)
	}
}

func TestNewLocalRefusesFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lake.NewLocal(f); err == nil {
		t.Error("NewLocal on a file: no error")
	}
}

// helperEnv marks a re-executed test binary as a PutIfAbsent racer.
const helperEnv = "LAKE_TEST_PUT_IF_ABSENT_DIR"

// TestLocalPutIfAbsentAcrossProcesses races several processes (this test
// binary, re-executed) on the same keys: each key must have exactly one
// winner, and hold the winner's content.
func TestLocalPutIfAbsentAcrossProcesses(t *testing.T) {
	if dir := os.Getenv(helperEnv); dir != "" {
		racePutIfAbsent(t, dir, os.Getenv(helperEnv+"_ID"))
		return
	}
	const procs, keys = 6, 40
	dir := t.TempDir()
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestLocalPutIfAbsentAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir, fmt.Sprintf("%s_ID=%d", helperEnv, i))
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	winners := map[string][]string{} // key -> ids that won it
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("racer %d: %v\n%s", i, err, outs[i])
		}
		sc := bufio.NewScanner(outs[i])
		for sc.Scan() {
			if key, ok := strings.CutPrefix(sc.Text(), "WON "); ok {
				winners[key] = append(winners[key], fmt.Sprint(i))
			}
		}
	}
	st, err := lake.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		key := fmt.Sprintf("_delta_log/%020d.json", k)
		ids := winners[key]
		if len(ids) != 1 {
			t.Errorf("%s: %d winners %v, want exactly 1", key, len(ids), ids)
			continue
		}
		b, err := os.ReadFile(st.LocalPath(key))
		if err != nil || string(b) != racerContent(ids[0]) {
			t.Errorf("%s holds %q (%v), want racer %s's content", key, b, err, ids[0])
		}
	}
}

func racerContent(id string) string {
	return strings.Repeat("racer "+id+";", 500)
}

func racePutIfAbsent(t *testing.T, dir, id string) {
	st, err := lake.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := racerContent(id)
	for k := range 40 {
		key := fmt.Sprintf("_delta_log/%020d.json", k)
		_, err := st.PutIfAbsent(t.Context(), key, strings.NewReader(body), int64(len(body)))
		switch {
		case err == nil:
			fmt.Printf("WON %s\n", key)
		case !errors.Is(err, lake.ErrExists):
			t.Fatalf("PutIfAbsent %s: %v", key, err)
		}
	}
}

// TestMoveFileAcrossFilesystems: a file on another filesystem than the
// local lake (a tmpfs) cannot be renamed into it: Adopt says so and
// leaves it, and MoveFile copies it instead.
func TestMoveFileAcrossFilesystems(t *testing.T) {
	const tmpfs = "/dev/shm"
	if fi, err := os.Stat(tmpfs); err != nil || !fi.IsDir() {
		t.Skipf("no %s to hold a file on another filesystem than the lake", tmpfs)
	}
	dir, err := os.MkdirTemp(tmpfs, "medallion-move-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	st, err := lake.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "part.parquet")
	body := []byte("parquet bytes")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Adopt(t.Context(), "t/part.parquet", path); !errors.Is(err, lake.ErrNotAdoptable) {
		t.Fatalf("Adopt across filesystems: %v, want ErrNotAdoptable", err)
	}
	info, err := lake.MoveFile(t.Context(), st, "t/part.parquet", path)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(body)
	if info.Size != int64(len(body)) || info.SHA256 != hex.EncodeToString(want[:]) {
		t.Errorf("MoveFile = %+v", info)
	}
	if got, err := os.ReadFile(st.LocalPath("t/part.parquet")); err != nil || !bytes.Equal(got, body) {
		t.Errorf("stored %q, %v", got, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the copied file is gone: %v", err)
	}
}
