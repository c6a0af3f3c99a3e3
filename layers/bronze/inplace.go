package bronze

import (
	"context"
	"io"

	"github.com/medallion-dev/medallion/layers/raw"
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
// a manifest references in place (raw.OpenObject).
func (j *job) openObject(ctx context.Context, m manifest) (io.ReadCloser, error) {
	return raw.OpenObject(ctx, j.d.Store, m.Manifest)
}
