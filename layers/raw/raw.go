// Package raw lands source files in the lake exactly as received, once per
// distinct content.
//
// Layout, for a source named meters:
//
//	raw/meters/dt=2024-01-01/20240101T120000.123456789Z-1a2b3c4d.ndjson        the bytes, immutable
//	raw/meters/_manifest/<sha256 hex>.json                                       the commit record
//	raw/meters/_index/<day>/<hh>/<day>T<hh><mm>/<stamp>_<sha256 hex>_<object>    landing order (index.go)
//
// Landing streams the bytes into a new object under a unique key while
// hashing them, then commits by creating the manifest named after the
// SHA-256 with PutIfAbsent. The manifest is the only thing that makes an
// object part of the raw layer: whoever creates it first wins.
//
// An object is removed only when it is certain that no committed manifest
// names it, because removing a committed object loses an acknowledged
// ingest for good:
//   - the object's own PUT failed: no manifest was written yet;
//   - the manifest PUT answered "exists", or its outcome is unknown (the
//     reply was lost after the server stored it and the client's retries
//     ran out): the manifest is read back. If it names our object, our
//     commit is the stored one and the bytes are landed. If it names
//     another object, the same bytes landed before (or a concurrent call
//     won) and our copy can never be named: it is removed and the earlier
//     manifest returned. If it cannot be read, our object stays and the
//     landing fails; an object no manifest names is harmless (nothing reads
//     it) and a retry settles the outcome.
//
// "Already landed" is answered only after checking that the object the
// stored manifest names exists with the recorded size. When it does not
// (deleted, truncated), it is re-landed at that same key from this call's
// bytes, which have the same SHA-256; a plain Put is safe there because every
// writer of that key writes the same bytes. A same-size edit is not seen
// here: bronze checks size and SHA-256 of every object it reads, and tells
// the operator to delete the damaged object and send the file again.
//
// A crash between the two steps leaves an object no manifest points at;
// nothing reads it.
//
// A file already in the lake's own bucket is not copied: its manifest
// references it in place (Manifest.Ref; inplace.go).
package raw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/randid"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// Prefix is the root of the raw layer in the lake.
const Prefix = "raw/"

// idLayout is the time part of an object id; ids sort by receive time.
const idLayout = "20060102T150405.000000000Z"

// Manifest is the commit record of one landed object, stored as JSON at
// raw/<source>/_manifest/<sha256>.json.
type Manifest struct {
	Source     string    `json:"source"`
	Key        string    `json:"key"`         // the object: raw/<source>/dt=YYYY-MM-DD/<id>.<ext>
	SHA256     string    `json:"sha256"`      // lower-case hex of the object's bytes
	Size       int64     `json:"size"`        // bytes
	ReceivedAt time.Time `json:"received_at"` // UTC, RFC 3339 with nanoseconds in JSON
	Name       string    `json:"name"`        // the original file name, or "-" for stdin
	Format     string    `json:"format"`      // csv | json | ndjson
	// Ref, when set, is where the bytes are: s3://bucket/key of a file in
	// the lake's own bucket referenced in place (inplace.go). Key then names
	// no object; it only orders the landing. Absent in manifests of copies.
	Ref  string `json:"ref,omitempty"`
	ETag string `json:"etag,omitempty"` // the referenced file's ETag when landed
}

// SourceDir is the root of a source's raw objects: raw/<source>/.
func SourceDir(source string) string { return Prefix + source + "/" }

// ManifestDir is where a source's manifests live: raw/<source>/_manifest/.
func ManifestDir(source string) string { return SourceDir(source) + "_manifest/" }

// ManifestKey is the manifest of the object with the given SHA-256.
func ManifestKey(source, sha string) string { return ManifestDir(source) + sha + ".json" }

// ObjectKey is where bytes received at now with random suffix rnd go.
func ObjectKey(source, format string, now time.Time, rnd string) string {
	now = now.UTC()
	return SourceDir(source) + "dt=" + now.Format(time.DateOnly) + "/" + now.Format(idLayout) + "-" + rnd + "." + format
}

// validate refuses a source name or format that would make a bad key.
func validate(source, format string) error {
	if source == "" || strings.ContainsAny(source, "/\\\x00") || source == "." || source == ".." || strings.HasPrefix(source, "_") {
		return fmt.Errorf("bad source name %q (want a name like meters, without '/')", source)
	}
	switch format {
	case "csv", "json", "ndjson":
	default:
		return fmt.Errorf("source %s: unknown format %q (want csv, json or ndjson)", source, format)
	}
	return nil
}

// Land streams r into the raw layer of source, received at now, and commits
// it by content. name is the original file name ("-" for stdin), format the
// source's format (also the object's extension).
//
// It returns the manifest of the landed bytes. alreadyLanded is true when the
// same bytes were landed before (or by a concurrent call that won): the
// returned manifest is then that earlier one and nothing new stays in the
// lake, but the earlier object was checked and, if missing or cut short,
// landed again from r. When Land returns without error the object and its manifest are
// durable; that is when a sender may be acknowledged.
func Land(ctx context.Context, store lake.Store, source, name, format string, r io.Reader, now time.Time) (m Manifest, alreadyLanded bool, err error) {
	return land(ctx, store, source, name, format, r, -1, now)
}

// LandSized is Land for a reader of known length: exactly size bytes of r
// are landed, in one request to the store, and fewer is an error (the input
// changed while it was read).
func LandSized(ctx context.Context, store lake.Store, source, name, format string, r io.Reader, size int64, now time.Time) (Manifest, bool, error) {
	if size < 0 {
		return Manifest{}, false, fmt.Errorf("land %s: negative size %d", name, size)
	}
	return land(ctx, store, source, name, format, r, size, now)
}

// land is Land with the byte count of r when it is known (size >= 0), so the
// store can upload in one request.
func land(ctx context.Context, store lake.Store, source, name, format string, r io.Reader, size int64, now time.Time) (Manifest, bool, error) {
	if err := validate(source, format); err != nil {
		return Manifest{}, false, err
	}
	now = now.UTC()
	key := ObjectKey(source, format, now, randid.Hex(4))

	// Step 1: the bytes, hashed as they stream past.
	h := sha256.New()
	body := r
	if size >= 0 {
		body = io.LimitReader(r, size) // the store must not read past what is hashed
	}
	hashed := io.TeeReader(body, h)
	var ahead *hashAhead
	if size >= hashAheadMin {
		ahead = newHashAhead(body, h)
		hashed = ahead
	}
	cr := &countReader{r: hashed}
	info, err := store.Put(ctx, key, cr, size)
	if ahead != nil {
		ahead.finish()
	}
	if err != nil {
		removeOrphan(ctx, store, key)
		return Manifest{}, false, fmt.Errorf("land %s in %s: %w", name, key, err)
	}
	if info.Size != cr.n || (size >= 0 && cr.n != size) {
		removeOrphan(ctx, store, key)
		return Manifest{}, false, fmt.Errorf("land %s in %s: stored %d bytes, read %d (want %d): the input changed while it was read", name, key, info.Size, cr.n, size)
	}
	m := Manifest{
		Source:     source,
		Key:        key,
		SHA256:     hex.EncodeToString(h.Sum(nil)),
		Size:       cr.n,
		ReceivedAt: now,
		Name:       name,
		Format:     format,
	}

	// Step 2, the landing index entry, so readers find the landing by time
	// (index.go); without a manifest it names nothing.
	ikey, err := writeIndex(ctx, store, m)
	if err != nil {
		removeOrphan(ctx, store, key)
		return Manifest{}, false, fmt.Errorf("land %s: %w", name, err)
	}

	// Step 3, the commit point: the manifest named after the content.
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, false, fmt.Errorf("land %s: encode manifest: %w", name, err)
	}
	js = append(js, '\n')
	mkey := ManifestKey(source, m.SHA256)
	_, err = store.PutIfAbsent(ctx, mkey, bytes.NewReader(js), int64(len(js)))
	if err == nil {
		return m, false, nil
	}
	// ErrExists: a manifest for these bytes exists, an earlier landing's or
	// this call's own (a retried PUT whose first reply was lost). Any other
	// error leaves the outcome unknown: the manifest may be stored although
	// its reply was lost. Either way only the stored manifest tells.
	m, already, err := settle(ctx, store, m, name, err)
	if already {
		removeOrphan(ctx, store, ikey) // it names our copy, which no manifest names
	}
	return m, already, err
}

// settle finishes a landing whose manifest PUT did not plainly succeed
// (commitErr). It reads the stored manifest back:
//   - it names our object: our commit is the one stored, the bytes landed;
//   - it names another object: the same bytes landed before. That object is
//     checked (re-landed from our copy when it is missing or has the wrong
//     size), then our copy, which no manifest can name, is removed;
//   - it cannot be read, or there is none: our object is kept, since a
//     manifest naming it may yet be stored, and the landing fails.
func settle(ctx context.Context, store lake.Store, ours Manifest, name string, commitErr error) (Manifest, bool, error) {
	mkey := ManifestKey(ours.Source, ours.SHA256)
	prev, err := ReadManifest(ctx, store, ours.Source, ours.SHA256)
	if err != nil {
		return Manifest{}, false, fmt.Errorf("land %s: commit manifest %s: %w; reading it back to learn the outcome: %v (the object %s is kept: a committed manifest may name it; send the file again)",
			name, mkey, commitErr, err, ours.Key)
	}
	if prev.Key == ours.Key {
		return prev, false, nil
	}
	if err := ensureObject(ctx, store, prev, ours.Key); err != nil {
		return Manifest{}, false, fmt.Errorf("land %s: already landed as %s (manifest %s): %w", name, prev.Key, mkey, err)
	}
	// The manifest is immutable and names another key: nothing can ever
	// reference our copy. Leaving it behind is harmless, so a failure to
	// remove it does not fail the landing.
	removeOrphan(ctx, store, ours.Key)
	return prev, true, nil
}

// ensureObject makes sure the object a committed manifest names is there
// with its recorded size, re-landing it from the copy at from (the same
// bytes: same SHA-256) when it is not, so that answering "already landed"
// never acknowledges bytes that bronze cannot read. A plain Put at the
// manifest's key is safe against concurrent re-landers: each writes the
// same bytes, and a Put replaces the whole object atomically.
func ensureObject(ctx context.Context, store lake.Store, m Manifest, from string) error {
	if m.Ref != "" {
		return nil // referenced in place: bronze reads the file at Ref, never Key
	}
	info, err := store.Stat(ctx, m.Key)
	switch {
	case err == nil && info.Size == m.Size:
		return nil
	case err != nil && !errors.Is(err, lake.ErrNotExist):
		return fmt.Errorf("check its object: %w", err)
	}
	rc, _, err := store.Get(ctx, from)
	if err != nil {
		return fmt.Errorf("its object is missing or damaged; re-land it from %s: %w", from, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := store.Put(ctx, m.Key, io.TeeReader(rc, h), m.Size); err != nil {
		return fmt.Errorf("its object is missing or damaged; re-land it: %w", err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != m.SHA256 {
		return fmt.Errorf("its object is missing or damaged; the copy re-landed from %s has sha256 %s, want %s", from, sum, m.SHA256)
	}
	return nil
}

// removeOrphan deletes an object no manifest can name, best effort: a
// leftover is harmless (nothing reads an object without a manifest).
func removeOrphan(ctx context.Context, store lake.Store, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = store.Delete(ctx, key)
}

// LandFile lands the regular file at path (see Land), under its base name.
func LandFile(ctx context.Context, store lake.Store, source, format, path string, now time.Time) (Manifest, bool, error) {
	return LandFileReporting(ctx, store, source, format, path, now, nil)
}

// LandFileReporting is LandFile calling read, if not nil, with the bytes
// of the file read so far as they stream into the lake (progress output).
// read may be called from the store's goroutines; it must be quick.
func LandFileReporting(ctx context.Context, store lake.Store, source, format, path string, now time.Time, read func(n int64)) (Manifest, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Manifest{}, false, err
	}
	if !fi.Mode().IsRegular() {
		return Manifest{}, false, fmt.Errorf("land %s: not a regular file", path)
	}
	var r io.Reader = f
	if read != nil {
		r = &reportReader{r: f, read: read}
	}
	return land(ctx, store, source, filepath.Base(path), format, r, fi.Size(), now)
}

// reportReader passes the count of bytes read so far to read.
type reportReader struct {
	r    io.Reader
	n    int64
	read func(int64)
}

func (r *reportReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	r.read(r.n)
	return n, err
}

// Files lists the regular files under dir, recursively, in lexical order of
// their paths, skipping hidden files and directories (names starting with '.').
func Files(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list files under %s: %w", dir, err)
	}
	return out, nil
}

// Landed is the outcome of landing one file of a directory.
type Landed struct {
	Path          string
	Manifest      Manifest
	AlreadyLanded bool
}

// LandDir lands every file Files(dir) lists, in that order. File i is
// received at now + i ns, so the objects' keys sort in the same order. It
// stops at the first error and returns what landed before it.
func LandDir(ctx context.Context, store lake.Store, source, format, dir string, now time.Time) ([]Landed, error) {
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	out := make([]Landed, 0, len(files))
	for i, path := range files {
		m, already, err := LandFile(ctx, store, source, format, path, now.Add(time.Duration(i)))
		if err != nil {
			return out, err
		}
		out = append(out, Landed{Path: path, Manifest: m, AlreadyLanded: already})
	}
	return out, nil
}

// ListManifests returns the SHA-256 (hex) of every object landed for
// source, in ascending order.
func ListManifests(ctx context.Context, store lake.Store, source string) ([]string, error) {
	if err := validate(source, "csv"); err != nil {
		return nil, err
	}
	objs, err := store.List(ctx, ManifestDir(source), "")
	if err != nil {
		return nil, fmt.Errorf("list raw manifests of %s: %w", source, err)
	}
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, ManifestDir(source))
		sha, ok := strings.CutSuffix(name, ".json")
		if ok && isSHA256Hex(sha) {
			out = append(out, sha)
		}
	}
	return out, nil
}

// Manifests reads every manifest of source, sorted by object key, which is
// the order the objects were received in.
func Manifests(ctx context.Context, store lake.Store, source string) ([]Manifest, error) {
	shas, err := ListManifests(ctx, store, source)
	if err != nil {
		return nil, err
	}
	out := make([]Manifest, 0, len(shas))
	for _, sha := range shas {
		m, err := ReadManifest(ctx, store, source, sha)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ReadManifest reads the manifest of the object with the given SHA-256.
// Returns an error wrapping lake.ErrNotExist if those bytes were never landed.
func ReadManifest(ctx context.Context, store lake.Store, source, sha string) (Manifest, error) {
	key := ManifestKey(source, sha)
	rc, _, err := store.Get(ctx, key)
	if err != nil {
		return Manifest{}, fmt.Errorf("read raw manifest: %w", err)
	}
	defer rc.Close()
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(rc, 1<<20))
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("read raw manifest %s: %w", key, err)
	}
	if m.Source != source || m.SHA256 != sha || m.Key == "" {
		return Manifest{}, fmt.Errorf("read raw manifest %s: it names source %q, sha256 %q, key %q", key, m.Source, m.SHA256, m.Key)
	}
	return m, nil
}

// OpenObject opens the landed bytes a manifest points at: the raw object
// at its key, or the file it references in place (Ref), read through the
// lake's connection at the root of its bucket.
func OpenObject(ctx context.Context, store lake.Store, m Manifest) (io.ReadCloser, error) {
	if m.Ref != "" {
		return openRef(ctx, store, m)
	}
	rc, _, err := store.Get(ctx, m.Key)
	if err != nil {
		return nil, fmt.Errorf("open raw object of %s (%s): %w", m.Name, m.SHA256, err)
	}
	return rc, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
