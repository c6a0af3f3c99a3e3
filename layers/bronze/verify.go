package bronze

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// Every raw object is checked against its manifest (size and SHA-256)
// before it is typed: an object cut short or edited after landing would
// otherwise be promoted as it is, its lost rows never noticed and its
// changed values taken as sent. The check hashes the bytes as they are
// read: an object of an S3 lake while it is downloaded into the scratch
// directory, the file of a local lake in place just before DuckDB reads
// it (DuckDB opens that file itself, so there is no stream of ours to hash;
// the check reads it once, and DuckDB's read comes from the page cache).
//
// The objects of a batch are checked in order, and a run promotes the
// objects before the first one that fails, then stops with an error naming
// that object and its manifest: the objects after it wait for it, because
// promotion order decides which row of a duplicated key is kept, and a
// later object promoted first would win over rows that were sent before it.

// damagedError is a raw object that does not match its manifest, or is
// missing. Nothing of it is committed.
type damagedError struct {
	source   string
	m        manifest
	problem  string // what is wrong, e.g. "has 626 bytes, its manifest records 2000: ..."
	missing  bool
	checkErr error // the store's error when the object could not be read
}

func (e *damagedError) Error() string {
	mkey := raw.ManifestKey(e.m.Source, e.m.SHA256)
	if e.m.Ref != "" {
		return e.inPlaceError(mkey)
	}
	if e.missing {
		return fmt.Sprintf("bronze %s: raw object %s, named by manifest %s, does not exist; nothing of it is committed and the objects landed after it wait. "+
			"Send %s again (the same bytes): raw then lands the missing object again", e.source, e.m.sourceFile(), mkey, e.m.fileName())
	}
	return fmt.Sprintf("bronze %s: raw object %s %s (manifest %s); nothing of it is committed and the objects landed after it wait. "+
		"Restore the object from a backup, or delete it and send %s again (the same bytes): raw then lands it again", e.source, e.m.sourceFile(), e.problem, mkey, e.m.fileName())
}

func (e *damagedError) Unwrap() error { return e.checkErr }

// fetchObjects makes a verified local file of each object of a batch, in
// order, for localObject to hand out. It stops at the first object it
// cannot fetch or that does not match its manifest, and returns the objects
// before it with that object's error. The files of a local lake are
// checked several at a time (localCheckers): each check of a small object
// is mostly waiting on its open and read, and a batch holds a thousand.
func (j *job) fetchObjects(ctx context.Context, ms []manifest) ([]manifest, error) {
	if j.fetched == nil {
		j.fetched = map[string]string{}
		j.fetchedData = map[string][]byte{}
	}
	if err := j.hashLocalObjects(ms); err != nil {
		return nil, err
	}
	for i, m := range ms {
		if _, ok := j.fetched[m.SHA256]; ok {
			continue
		}
		p, data, err := j.fetchObject(ctx, m)
		if err != nil {
			return ms[:i], err
		}
		j.fetched[m.SHA256] = p
		if data != nil {
			j.fetchedData[m.SHA256] = data
		}
	}
	return ms, nil
}

// localCheckers bounds the local lake files hashed at once.
const localCheckers = 4

// keepObjectBytes is the size up to which a local object's bytes, read to
// hash it, are kept for the fast path's checks of its lines (ndjsonFits),
// which then need not open the file again.
const keepObjectBytes = 64 << 10

// hashLocalObjects checks, several at a time, the objects of ms that are
// files of a local lake, recording each that matches its manifest in
// j.fetched (and its bytes in j.fetchedData when small). An object that
// does not match is left for fetchObjects, which checks it again in order
// and reports it.
func (j *job) hashLocalObjects(ms []manifest) error {
	todo := make([]manifest, 0, len(ms))
	for _, m := range ms {
		if _, done := j.fetched[m.SHA256]; !done {
			todo = append(todo, m)
		}
	}
	j.keepHashed(j.hashLocal(todo))
	return nil
}

// hashedObject is the outcome of checking one object of a local lake
// (hashLocal): ok when it matches its manifest.
type hashedObject struct {
	sha  string
	path string
	data []byte
	ok   bool
}

// hashLocal checks, several at a time (localCheckers), the objects of ms
// that are files of a local lake against their manifests. It touches no
// state of j but its settings, so it may run while a batch is typed
// (prefetchHashes); keepHashed records its outcome.
func (j *job) hashLocal(ms []manifest) []hashedObject {
	lp, ok := j.d.Store.(lake.LocalPather)
	if !ok {
		return nil
	}
	res := make([]hashedObject, len(ms))
	var g errgroup.Group
	g.SetLimit(localCheckers)
	for i, m := range ms {
		if m.Ref != "" {
			continue
		}
		p := lp.LocalPath(m.Key)
		if p == "" {
			continue
		}
		g.Go(func() error {
			data, err := j.readLocal(m, p)
			res[i] = hashedObject{sha: m.SHA256, path: p, data: data, ok: err == nil}
			return nil
		})
	}
	g.Wait()
	return res
}

// keepHashed records the objects of hs that matched their manifests as
// fetched.
func (j *job) keepHashed(hs []hashedObject) {
	if j.fetched == nil {
		j.fetched = map[string]string{}
		j.fetchedData = map[string][]byte{}
	}
	for _, h := range hs {
		if !h.ok {
			continue
		}
		j.fetched[h.sha] = h.path
		if h.data != nil {
			j.fetchedData[h.sha] = h.data
		}
	}
}

// prefetchHashes starts checking the objects of ms (hashLocal) in the
// background, so that the next batch's reads and hashes overlap the
// current batch's statements and commit; wait returns the outcome, for
// keepHashed once the current batch's objects are released. An object
// that changes between this check and its typing is no different from one
// that changes between fetchObjects and typing.
func (j *job) prefetchHashes(ms []manifest) (wait func() []hashedObject) {
	if _, ok := j.d.Store.(lake.LocalPather); !ok || len(ms) == 0 {
		return func() []hashedObject { return nil }
	}
	done := make(chan []hashedObject, 1)
	go func() { done <- j.hashLocal(ms) }()
	return func() []hashedObject { return <-done }
}

// releaseObjects removes the downloads fetchObjects made and forgets every
// fetched object.
func (j *job) releaseObjects() {
	for _, p := range j.fetched {
		if j.fetchDir != "" && filepath.Dir(p) == j.fetchDir {
			os.Remove(p)
		}
	}
	clear(j.fetched)
	clear(j.fetchedData)
}

// fetchObject returns a local file holding the object of m, checked against
// m: the lake's own file for a local lake, else a download; and the
// object's bytes when it is small (keepObjectBytes), else nil.
func (j *job) fetchObject(ctx context.Context, m manifest) (string, []byte, error) {
	if lp, ok := j.d.Store.(lake.LocalPather); ok && m.Ref == "" {
		if p := lp.LocalPath(m.Key); p != "" {
			data, err := j.readLocal(m, p)
			return p, data, err
		}
	}
	if j.fetchDir == "" {
		dir, err := os.MkdirTemp(j.d.ScratchDir, "bronze-raw-")
		if err != nil {
			return "", nil, fmt.Errorf("bronze %s: scratch dir: %w", j.src.Name, err)
		}
		j.fetchDir = dir
	}
	return j.downloadObject(ctx, m, filepath.Join(j.fetchDir, "raw-"+m.SHA256+filepath.Ext(m.Key)))
}

// readLocal checks the local lake file p holding the object of m. It
// returns the object's bytes when the manifest records at most
// keepObjectBytes (read in one piece, then hashed), else nil (the file is
// hashed as it is read).
func (j *job) readLocal(m manifest, p string) ([]byte, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &damagedError{source: j.src.Name, m: m, missing: true, checkErr: lake.ErrNotExist}
	}
	if err != nil {
		return nil, fmt.Errorf("bronze %s: open raw object %s: %w", j.src.Name, m.Key, err)
	}
	defer f.Close()
	h := sha256.New()
	if m.Size <= keepObjectBytes {
		// One byte more than the manifest says shows a longer file.
		buf := make([]byte, m.Size+1)
		n, err := io.ReadFull(f, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("bronze %s: read raw object %s: %w", j.src.Name, m.Key, err)
		}
		if n > int(m.Size) {
			// Longer than recorded: count the rest for the message.
			rest, err := io.Copy(io.Discard, f)
			if err != nil {
				return nil, fmt.Errorf("bronze %s: read raw object %s: %w", j.src.Name, m.Key, err)
			}
			h.Write(buf[:n])
			return nil, j.check(m, int64(n)+rest, h)
		}
		h.Write(buf[:n])
		if err := j.check(m, int64(n), h); err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("bronze %s: read raw object %s: %w", j.src.Name, m.Key, err)
	}
	return nil, j.check(m, n, h)
}

// downloadObject downloads the object of m to dst, hashing it on the way;
// a small object's bytes (keepObjectBytes) are kept too and returned.
func (j *job) downloadObject(ctx context.Context, m manifest, dst string) (string, []byte, error) {
	rc, err := j.openObject(ctx, m)
	if errors.Is(err, lake.ErrNotExist) {
		return "", nil, &damagedError{source: j.src.Name, m: m, missing: true, checkErr: err}
	}
	if err != nil {
		return "", nil, fmt.Errorf("bronze %s: download raw object %s: %w", j.src.Name, m.sourceFile(), err)
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return "", nil, fmt.Errorf("bronze %s: download raw object %s: %w", j.src.Name, m.sourceFile(), err)
	}
	h := sha256.New()
	var w io.Writer = io.MultiWriter(f, h)
	var kept *keepWriter
	if m.Size <= keepObjectBytes {
		// At most one byte past the manifest's size: an object grown
		// since it landed fails its check and is not kept.
		kept = &keepWriter{buf: make([]byte, 0, m.Size+1), max: int(m.Size) + 1}
		w = io.MultiWriter(f, h, kept)
	}
	n, err := io.Copy(w, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = j.check(m, n, h)
	}
	if err != nil {
		os.Remove(dst)
		var d *damagedError
		if errors.As(err, &d) {
			return "", nil, err
		}
		return "", nil, fmt.Errorf("bronze %s: download raw object %s: %w", j.src.Name, m.sourceFile(), err)
	}
	if kept == nil {
		return dst, nil, nil
	}
	return dst, kept.buf, nil
}

// keepWriter keeps the first max bytes written to it and drops the rest.
type keepWriter struct {
	buf []byte
	max int
}

func (w *keepWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// check compares what was read of the object of m (n bytes hashing to h)
// with its manifest.
func (j *job) check(m manifest, n int64, h hash.Hash) error {
	if n != m.Size {
		return &damagedError{source: j.src.Name, m: m, problem: fmt.Sprintf("has %d bytes, its manifest records %d: it was cut short or changed after landing", n, m.Size)}
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != m.SHA256 {
		return &damagedError{source: j.src.Name, m: m, problem: fmt.Sprintf("has sha256 %s, its manifest records %s: its bytes changed after landing", sum, m.SHA256)}
	}
	return nil
}
