package bronze

import (
	"context"
	"fmt"
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

// inPlaceError is damagedError's message for a file referenced in place:
// raw never copied it, so sending it again cannot repair it; only its own
// bytes, put back where they were, can.
func (e *damagedError) inPlaceError(mkey string) string {
	problem := e.problem
	if e.missing {
		problem = "does not exist"
	}
	return fmt.Sprintf("bronze %s: file %s, referenced in place by manifest %s, %s; nothing of it is committed and the objects landed after it wait. "+
		"Put back the bytes it had when it was taken (%d bytes, sha256 %s): a file referenced in place must not be rewritten or removed before bronze has read it; write changes as a new file",
		e.source, e.m.Ref, mkey, problem, e.m.Size, e.m.SHA256)
}
