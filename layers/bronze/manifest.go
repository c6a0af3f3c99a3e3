package bronze

import (
	"context"
	"path"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// manifest is a landed raw object as recorded in
// raw/<source>/_manifest/<sha256hex>.json, the landing's commit point
// (only objects with a manifest exist for bronze), with what bronze asks
// of it.
type manifest struct{ raw.Manifest }

func fromRaw(r raw.Manifest) manifest { return manifest{r} }

// listManifests returns the sha256 of every object landed for source.
func listManifests(ctx context.Context, st lake.Store, source string) ([]string, error) {
	return raw.ListManifests(ctx, st, source)
}

// readManifest reads one manifest.
func readManifest(ctx context.Context, st lake.Store, source, sha string) (manifest, error) {
	r, err := raw.ReadManifest(ctx, st, source, sha)
	if err != nil {
		return manifest{}, err
	}
	return fromRaw(r), nil
}

// manifestReaders bounds the manifests read at once (readManifests).
const manifestReaders = 8

// readManifests reads the manifests of shas, several at a time, and
// returns a lookup of each one's manifest or error (that of readManifest).
// A run that finds 10,000 new objects reads 10,000 small manifests; read
// one after the other, each waited for its open and read. A sha not in
// shas is read when it is looked up.
func readManifests(ctx context.Context, st lake.Store, source string, shas []string) func(sha string) (manifest, error) {
	type result struct {
		m   manifest
		err error
	}
	res := make([]result, len(shas))
	var g errgroup.Group
	g.SetLimit(manifestReaders)
	for i, sha := range shas {
		g.Go(func() error {
			res[i].m, res[i].err = readManifest(ctx, st, source, sha)
			return nil
		})
	}
	g.Wait()
	at := make(map[string]int, len(shas))
	for i, sha := range shas {
		at[sha] = i
	}
	return func(sha string) (manifest, error) {
		if i, ok := at[sha]; ok {
			return res[i].m, res[i].err
		}
		return readManifest(ctx, st, source, sha)
	}
}

// fileName is how messages name the object: its original name if known.
func (m manifest) fileName() string {
	if m.Name != "" {
		return path.Base(m.Name)
	}
	return path.Base(m.Key)
}

// format is the object's format: the manifest's, else the key's extension,
// else the source's.
func (m manifest) format(def string) string {
	f := strings.ToLower(m.Format)
	switch f {
	case "csv", "json", "ndjson":
		return f
	}
	switch strings.ToLower(path.Ext(m.Key)) {
	case ".csv":
		return "csv"
	case ".ndjson", ".jsonl":
		return "ndjson"
	case ".json":
		if def == "ndjson" {
			return def
		}
		return "json"
	}
	return def
}
