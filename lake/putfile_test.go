package lake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestHashingFileOutOfOrder reads a file the way a parallel multipart
// upload and a retry do (parts out of order, a part twice, a rewind) and
// checks the hash still covers every byte exactly once, in order.
func TestHashingFileOutOfOrder(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := sha256.Sum256(body)
	for _, tc := range []struct {
		name string
		read func(r *hashingFile)
	}{
		{"sequential", func(r *hashingFile) { io.Copy(io.Discard, r) }},
		{"retry after a rewind", func(r *hashingFile) {
			io.CopyN(io.Discard, r, 5000)
			r.Seek(0, io.SeekStart)
			io.Copy(io.Discard, r)
		}},
		{"parts out of order", func(r *hashingFile) {
			buf := make([]byte, 4000)
			for _, off := range []int64{8000, 0, 12000, 4000} {
				r.ReadAt(buf, off)
			}
		}},
		{"nothing read", func(r *hashingFile) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &hashingFile{f: f, size: int64(len(body)), h: sha256.New()}
			tc.read(r)
			got, err := r.sum()
			if err != nil {
				t.Fatal(err)
			}
			if got != hex.EncodeToString(want[:]) {
				t.Errorf("sha256 = %s, want %x", got, want)
			}
		})
	}
}
