package lake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
)

// PutFileInfo is what PutFile learned about the file it uploaded.
type PutFileInfo struct {
	Size   int64  // bytes uploaded
	SHA256 string // lowercase hex SHA-256 of those bytes
}

// PutFile uploads the local file path to key and returns its size and its
// SHA-256, computed from the bytes as the store reads them for the upload,
// not in a second pass over the file. An uploader that reads parts out of
// order (minio-go's parallel multipart upload of a big file) leaves holes
// the hash cannot cover in order; those bytes are read once more at the end.
func PutFile(ctx context.Context, store Store, key, path string) (PutFileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return PutFileInfo{}, fmt.Errorf("upload %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return PutFileInfo{}, fmt.Errorf("upload %s: %w", key, err)
	}
	hr := &hashingFile{f: f, size: fi.Size(), h: sha256.New()}
	if _, err := store.Put(ctx, key, hr, fi.Size()); err != nil {
		return PutFileInfo{}, fmt.Errorf("upload %s: %w", key, err)
	}
	sum, err := hr.sum()
	if err != nil {
		return PutFileInfo{}, fmt.Errorf("upload %s: checksum: %w", key, err)
	}
	return PutFileInfo{Size: fi.Size(), SHA256: sum}, nil
}

// hashingFile is a file as a reader for an upload (Read, ReadAt, Seek, so
// uploaders can retry and read parts in parallel) that hashes every byte
// the first time it is read in order: h covers [0, next).
type hashingFile struct {
	f    *os.File
	size int64

	mu   sync.Mutex
	h    hash.Hash
	next int64 // bytes [0, next) are hashed
	pos  int64 // offset of the next Read
}

func (r *hashingFile) Read(p []byte) (int, error) {
	r.mu.Lock()
	pos := r.pos
	r.mu.Unlock()
	n, err := r.ReadAt(p, pos)
	r.mu.Lock()
	r.pos = pos + int64(n)
	r.mu.Unlock()
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil // io.Reader: EOF on the next call
	}
	return n, err
}

// ReadAt reads from the file and hashes what extends the hashed prefix.
func (r *hashingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	r.mu.Lock()
	if end := off + int64(n); off <= r.next && end > r.next {
		r.h.Write(p[r.next-off : n])
		r.next = end
	}
	r.mu.Unlock()
	return n, err
}

// Seek moves the offset of the next Read.
func (r *hashingFile) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, errors.New("seek: negative offset")
	}
	r.pos = offset
	return offset, nil
}

// sum finishes the hash, reading whatever the upload did not read in order.
func (r *hashingFile) sum() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next < r.size {
		n, err := io.Copy(r.h, io.NewSectionReader(r.f, r.next, r.size-r.next))
		r.next += n
		if err != nil {
			return "", err
		}
	}
	if r.next != r.size {
		return "", fmt.Errorf("file changed during the upload: hashed %d bytes, expected %d", r.next, r.size)
	}
	return hex.EncodeToString(r.h.Sum(nil)), nil
}

// fileAdopter is a store that can make a local file an object by moving
// it into place (a local lake on the same filesystem), with no copy.
type fileAdopter interface {
	Adopt(ctx context.Context, key, path string) (ObjectInfo, error)
}

// MoveFile is PutFile for a file the caller no longer needs: a store
// that can adopt the file (a local lake on the file's filesystem) moves
// it into place instead of copying it, so the file is gone afterwards;
// any other store uploads it as PutFile does. The SHA-256 is of the
// file's bytes, read once before the move.
func MoveFile(ctx context.Context, store Store, key, path string) (PutFileInfo, error) {
	a, ok := store.(fileAdopter)
	if !ok {
		return PutFile(ctx, store, key, path)
	}
	sum, size, err := hashFile(path)
	if err != nil {
		return PutFileInfo{}, fmt.Errorf("upload %s: %w", key, err)
	}
	info, err := a.Adopt(ctx, key, path)
	if errors.Is(err, ErrNotAdoptable) {
		return PutFile(ctx, store, key, path)
	}
	if err != nil {
		return PutFileInfo{}, fmt.Errorf("upload %s: %w", key, err)
	}
	if info.Size != size {
		return PutFileInfo{}, fmt.Errorf("upload %s: %d bytes hashed, %d in place", key, size, info.Size)
	}
	return PutFileInfo{Size: size, SHA256: sum}, nil
}

// ErrNotAdoptable is Adopt's answer for a file it cannot move into the
// lake (another filesystem): the caller copies it instead.
var ErrNotAdoptable = errors.New("file cannot be moved into the lake")

// hashFile is the SHA-256 (lowercase hex) and size of the file at path.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
