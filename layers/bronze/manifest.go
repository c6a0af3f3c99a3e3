package bronze

import (
	"context"
	"path"
	"strings"

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
