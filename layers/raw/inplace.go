package raw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/medallion-dev/medallion/internal/randid"
	"github.com/medallion-dev/medallion/lake"
)

// A file already in the lake's own bucket (beside the lake, not under its
// prefix) need not be copied: LandInPlace reads it once to hash it and
// commits a manifest whose Ref names it, with its size and ETag. Key is
// still a fresh raw key, so landings order and index as copies do, but no
// object is written there. Bronze reads the bytes at Ref and checks size
// and SHA-256 as for any raw object, so a file rewritten after landing is
// refused by name rather than promoted with changed values.
//
// The referenced file belongs to whoever wrote it: raw never deletes or
// re-lands it. When the same bytes landed before, the earlier manifest is
// returned as it is; bronze reports its object by name if it is gone.

// LandInPlace commits the size bytes of r, the file at ref (s3://bucket/key
// in the lake's bucket) with ETag etag, as a landing of source that
// references the file instead of copying it. See Land for the outcome.
func LandInPlace(ctx context.Context, store lake.Store, source, name, format, ref, etag string, r io.Reader, size int64, now time.Time) (Manifest, bool, error) {
	if err := validate(source, format); err != nil {
		return Manifest{}, false, err
	}
	if _, _, ok := lake.SplitS3URL(ref); !ok {
		return Manifest{}, false, fmt.Errorf("land %s in place: %q is not s3://bucket/key", name, ref)
	}
	now = now.UTC()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, size))
	if err != nil {
		return Manifest{}, false, fmt.Errorf("land %s in place: read %s: %w", name, ref, err)
	}
	if n != size {
		return Manifest{}, false, fmt.Errorf("land %s in place: read %d bytes of %s, want %d: the file changed while it was read", name, n, ref, size)
	}
	m := Manifest{
		Source: source, Key: ObjectKey(source, format, now, randid.Hex(4)),
		SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, ReceivedAt: now,
		Name: name, Format: format, Ref: ref, ETag: etag,
	}
	ikey, err := writeIndex(ctx, store, m)
	if err != nil {
		return Manifest{}, false, fmt.Errorf("land %s in place: %w", name, err)
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, false, fmt.Errorf("land %s in place: encode manifest: %w", name, err)
	}
	js = append(js, '\n')
	mkey := ManifestKey(source, m.SHA256)
	_, commitErr := store.PutIfAbsent(ctx, mkey, bytes.NewReader(js), int64(len(js)))
	if commitErr == nil {
		return m, false, nil
	}
	prev, err := ReadManifest(ctx, store, source, m.SHA256)
	if err != nil {
		return Manifest{}, false, fmt.Errorf("land %s in place: commit manifest %s: %w; reading it back to learn the outcome: %v (take the file again)", name, mkey, commitErr, err)
	}
	if prev.Key == m.Key {
		return prev, false, nil
	}
	removeOrphan(ctx, store, ikey) // names our landing, which no manifest names
	return prev, true, nil
}

// openRef opens the file a manifest references in place.
func openRef(ctx context.Context, store lake.Store, m Manifest) (io.ReadCloser, error) {
	bucket, key, ok := lake.SplitS3URL(m.Ref)
	s3, isS3 := store.(*lake.S3)
	if !ok || !isS3 || s3.Bucket() != bucket {
		return nil, fmt.Errorf("open %s of %s (%s): not in the lake's bucket (%s)", m.Ref, m.Name, m.SHA256, store.URL())
	}
	rc, _, err := s3.AtBucketRoot().Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open %s of %s (%s): %w", m.Ref, m.Name, m.SHA256, err)
	}
	return rc, nil
}
