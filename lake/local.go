package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// localTmpDir is the directory under a Local root that holds objects being
// written. It is on the same file system as every object, so a finished
// temp file can be renamed or linked into place; List never shows it, and
// keys under it are refused.
const localTmpDir = ".tmp"

// maxLocalPlaceAttempts bounds how often Put retries creating the parent
// directory when a concurrent Delete pruned it in between.
const maxLocalPlaceAttempts = 5

// Local is a Store on a local directory (file:// lakes). Each object is a
// plain file at root/key, so DuckDB can read it in place (see LocalPath).
//
// Every Put writes a temp file under root/.tmp, fsyncs it and renames it into
// place; PutIfAbsent links it into place instead, which fails if the key
// exists, so it is atomic against writers in other processes too. Readers
// see the old object, the new one, or ErrNotExist, never a partial file.
//
// The ETag of an object is derived from its size, modification time and
// inode, all of which change on every Put. Local needs a file system with hard
// links (any local Unix file system); sub-directories of the root must be on
// the same file system as the root.
type Local struct {
	root string // absolute, symlinks resolved
	url  string // file:///root
}

var (
	_ Store       = (*Local)(nil)
	_ LocalPather = (*Local)(nil)
)

// NewLocal opens the directory dir as a Store, creating it (and its parents)
// if it does not exist. dir may be relative to the working directory.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("open local lake: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open local lake %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("open local lake %s: %w", dir, err)
	}
	// Resolve symlinks once, so walking the root lists what it points to.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("open local lake %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open local lake %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open local lake %s: not a directory", dir)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	l := &Local{root: abs, url: u.String()}
	l.removeStaleTemps(time.Now().Add(-staleTempAge))
	return l, nil
}

// staleTempAge is how long a temp file must have been idle before NewLocal
// treats it as left behind by a writer that crashed.
const staleTempAge = 24 * time.Hour

// removeStaleTemps deletes temp files last written before cutoff. Removing
// one that a crashed PutIfAbsent had already linked into place only removes
// a redundant name; the object stays. Failures are ignored: the files are
// invisible to readers and the next open tries again.
func (l *Local) removeStaleTemps(cutoff time.Time) {
	dir := filepath.Join(l.root, localTmpDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cutoff) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Dir returns the absolute directory that holds the objects.
func (l *Local) Dir() string { return l.root }

// URL returns the root as an absolute file URL (file:///abs/dir), which means
// the same lake from any working directory.
func (l *Local) URL() string { return l.url }

// LocalPath returns the file that holds key (it may not exist), or "" if the
// key is invalid (see ValidateKey).
func (l *Local) LocalPath(key string) string {
	if l.checkKey(key) != nil {
		return ""
	}
	return l.path(key)
}

// Get opens the whole object; the returned ReadCloser is an *os.File, so
// callers may use ReadAt and Seek. Returns ErrNotExist if it is missing.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := l.check(ctx, key); err != nil {
		return nil, ObjectInfo{}, l.fail("get", key, err)
	}
	f, fi, err := l.open(key)
	if err != nil {
		return nil, ObjectInfo{}, l.fail("get", key, err)
	}
	return f, l.info(key, fi), nil
}

// GetRange opens length bytes from offset (length < 0: to the end). A range
// reaching past the end is cut at the end; an offset past the end is an
// error. Returns ErrNotExist if the object is missing.
func (l *Local) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := l.check(ctx, key); err != nil {
		return nil, l.fail("get-range", key, err)
	}
	if offset < 0 {
		return nil, l.fail("get-range", key, fmt.Errorf("negative offset %d", offset))
	}
	f, fi, err := l.open(key)
	if err != nil {
		return nil, l.fail("get-range", key, err)
	}
	if offset > fi.Size() {
		f.Close()
		return nil, l.fail("get-range", key, fmt.Errorf("offset %d is past the end of the %d-byte object", offset, fi.Size()))
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, l.fail("get-range", key, err)
	}
	if length < 0 {
		return f, nil
	}
	return limitedFile{Reader: io.LimitReader(f, length), Closer: f}, nil
}

// limitedFile reads a window of a file and closes the file.
type limitedFile struct {
	io.Reader
	io.Closer
}

// Put writes the object atomically, replacing any previous one. size is the
// byte count of r, or -1 to read r to EOF; a body shorter than size is an
// error and nothing is written.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	info, err := l.put(ctx, key, r, size, replace)
	if err != nil {
		return ObjectInfo{}, l.fail("put", key, err)
	}
	return info, nil
}

// PutIfAbsent writes the object only if no object has that key: the content
// goes to a temp file first, then is hard-linked into place, which fails if
// the key exists, atomically against writers in any process. Returns
// ErrExists if it lost; the existing object is untouched.
func (l *Local) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	info, err := l.put(ctx, key, r, size, exclusive)
	if err != nil {
		return ObjectInfo{}, l.fail("put-if-absent", key, err)
	}
	return info, nil
}

// Stat describes the object. Returns ErrNotExist if it is missing.
func (l *Local) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := l.check(ctx, key); err != nil {
		return ObjectInfo{}, l.fail("stat", key, err)
	}
	fi, err := os.Stat(l.path(key))
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotExist
	}
	if err != nil {
		return ObjectInfo{}, l.fail("stat", key, notExist(err))
	}
	return l.info(key, fi), nil
}

// List returns every object whose key starts with prefix and sorts after
// startAfter, in ascending key order, descending into sub-directories.
// Objects being written (root/.tmp) and non-regular files are not listed.
// Listing a prefix with no objects returns an empty slice and no error.
func (l *Local) List(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, l.fail("list", prefix, err)
	}
	if err := validatePrefix(prefix); err != nil {
		return nil, l.fail("list", prefix, err)
	}
	start := l.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = l.path(prefix[:i])
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // vanished under a concurrent Delete, or no such prefix
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == l.root {
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			dirKey := key + "/"
			if key == localTmpDir || !(strings.HasPrefix(dirKey, prefix) || strings.HasPrefix(prefix, dirKey)) {
				return filepath.SkipDir
			}
			if dirKey < startAfter && !strings.HasPrefix(startAfter, dirKey) {
				return filepath.SkipDir // every key under it sorts before startAfter
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) || key <= startAfter {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		out = append(out, l.info(key, fi))
		return nil
	})
	if err != nil {
		return nil, l.fail("list", prefix, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	if out == nil {
		out = []ObjectInfo{}
	}
	return out, nil
}

// Delete removes the object, then any parent directories it left empty.
// Deleting a missing object is not an error.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := l.check(ctx, key); err != nil {
		return l.fail("delete", key, err)
	}
	p := l.path(key)
	fi, err := os.Lstat(p)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return l.fail("delete", key, err)
	}
	if fi.IsDir() {
		return nil // a directory of other objects is not an object
	}
	if err := os.Remove(p); err != nil && !isNotExist(err) {
		return l.fail("delete", key, err)
	}
	// Prune empty parents; Remove refuses non-empty ones, and a concurrent
	// Put recreates what it needs (see place).
	for dir := filepath.Dir(p); dir != l.root && strings.HasPrefix(dir, l.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// put writes r to a temp file, fsyncs it and moves it to key as mode says.
func (l *Local) put(ctx context.Context, key string, r io.Reader, size int64, mode placement) (ObjectInfo, error) {
	if err := l.check(ctx, key); err != nil {
		return ObjectInfo{}, err
	}
	tmp, fi, err := l.writeTemp(ctx, r, size)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer os.Remove(tmp) // after Link the temp name is redundant; after Rename it is gone
	err = place(ctx, l.path(key), func(final string) error {
		if mode == exclusive {
			err := os.Link(tmp, final)
			if errors.Is(err, fs.ErrExist) {
				return ErrExists
			}
			return err
		}
		return os.Rename(tmp, final)
	})
	if err != nil {
		return ObjectInfo{}, err
	}
	return l.info(key, fi), nil
}

// place puts a finished file at final with move (a link or a rename),
// creating final's directory, and fsyncs the directory. A move failing
// with ENOENT is tried again: a concurrent Delete pruned the directory
// just made.
func place(ctx context.Context, final string, move func(final string) error) error {
	dir := filepath.Dir(final)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := os.MkdirAll(dir, 0o755)
		if err == nil {
			err = move(final)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == maxLocalPlaceAttempts {
			return err
		}
	}
	return syncDir(dir)
}

// placement is how a finished temp file becomes the object.
type placement int

const (
	replace   placement = iota // os.Rename: replaces any existing object
	exclusive                  // os.Link: fails with EEXIST if the key exists
)

// writeTemp copies r into a new file under root/.tmp and fsyncs it. The file
// is removed on any error.
func (l *Local) writeTemp(ctx context.Context, r io.Reader, size int64) (path string, fi fs.FileInfo, err error) {
	tmpDir := filepath.Join(l.root, localTmpDir)
	f, err := os.CreateTemp(tmpDir, "obj-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(tmpDir, 0o755); err == nil {
			f, err = os.CreateTemp(tmpDir, "obj-*")
		}
	}
	if err != nil {
		return "", nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	src := ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		var n int64
		n, err = io.CopyN(f, src, size)
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("body ended after %d of %d bytes", n, size)
		}
	} else {
		_, err = io.Copy(f, src)
	}
	if err != nil {
		return "", nil, err
	}
	if err = f.Chmod(0o644); err != nil {
		return "", nil, err
	}
	if err = f.Sync(); err != nil {
		return "", nil, err
	}
	if fi, err = f.Stat(); err != nil {
		return "", nil, err
	}
	if err = f.Close(); err != nil {
		return "", nil, err
	}
	return f.Name(), fi, nil
}

// open opens key's file for reading; directories and other non-regular files
// count as missing.
func (l *Local) open(key string) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, nil, notExist(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, ErrNotExist
	}
	return f, fi, nil
}

// check refuses a cancelled context and an invalid key.
func (l *Local) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.checkKey(key)
}

// checkKey applies ValidateKey and keeps keys out of the temp directory.
func (l *Local) checkKey(key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if key == localTmpDir || strings.HasPrefix(key, localTmpDir+"/") {
		return fmt.Errorf("invalid key %q: %s/ is reserved for objects being written", key, localTmpDir)
	}
	return nil
}

func (l *Local) path(key string) string {
	return filepath.Join(l.root, filepath.FromSlash(key))
}

func (l *Local) info(key string, fi fs.FileInfo) ObjectInfo {
	return ObjectInfo{Key: key, Size: fi.Size(), ETag: localETag(fi), ModTime: fi.ModTime()}
}

func (l *Local) fail(op, key string, err error) error {
	return &Error{Op: op, Store: l.url, Key: key, Err: err}
}

// localETag changes whenever the file is replaced: every Put makes a new
// inode, and the size and nanosecond mtime tell rewrites apart even if the
// file system reuses an inode number.
func localETag(fi fs.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(st.Ino)
	}
	return fmt.Sprintf("%x-%x-%x", fi.Size(), fi.ModTime().UnixNano(), ino)
}

// notExist maps "no such file" (including a path component that is a file)
// to ErrNotExist and leaves other errors alone.
func notExist(err error) error {
	if isNotExist(err) {
		return ErrNotExist
	}
	return err
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// syncDir fsyncs a directory so a rename or link in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// Adopt makes the file at path the object key by moving it into place
// (replacing any object of that key), with no copy: the file is fsynced,
// renamed, and its new directory fsynced, the durability of Put. A file
// on another filesystem is left where it is and ErrNotAdoptable returned.
func (l *Local) Adopt(ctx context.Context, key, path string) (ObjectInfo, error) {
	if err := l.check(ctx, key); err != nil {
		return ObjectInfo{}, l.fail("adopt", key, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return ObjectInfo{}, l.fail("adopt", key, err)
	}
	err = f.Sync()
	fi, statErr := f.Stat()
	f.Close()
	if err = errors.Join(err, statErr); err != nil {
		return ObjectInfo{}, l.fail("adopt", key, err)
	}
	err = place(ctx, l.path(key), func(final string) error { return os.Rename(path, final) })
	if errors.Is(err, syscall.EXDEV) {
		return ObjectInfo{}, ErrNotAdoptable
	}
	if err != nil {
		return ObjectInfo{}, l.fail("adopt", key, err)
	}
	return l.info(key, fi), nil
}
