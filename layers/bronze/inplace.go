package bronze

import (
	"context"
	"fmt"
	"io"

	"github.com/medallion-dev/medallion/lake"
)

// sourceFile is the object of m as lineage (_source_file) and messages
// name it: the file's own s3:// URL when it is referenced in place, else
// its raw key.
func (m manifest) sourceFile() string {
	if m.Ref != "" {
		return m.Ref
	}
	return m.Key
}

// openObject opens the bytes of m: the raw object at its key, or the file
// a manifest references in place, read through the lake's connection at the
// root of its bucket (raw.LandInPlace only references files there).
func (j *job) openObject(ctx context.Context, m manifest) (io.ReadCloser, error) {
	if m.Ref == "" {
		rc, _, err := j.d.Store.Get(ctx, m.Key)
		return rc, err
	}
	bucket, key, ok := lake.SplitS3URL(m.Ref)
	s3, isS3 := j.d.Store.(*lake.S3)
	if !ok || !isS3 || s3.Bucket() != bucket {
		return nil, fmt.Errorf("its manifest references %s, which is not in the lake's bucket", m.Ref)
	}
	rc, _, err := s3.AtBucketRoot().Get(ctx, key)
	return rc, err
}
