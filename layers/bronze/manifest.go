package bronze

import (
	"context"
	"path"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// manifest is a landed raw object (layers/raw.Manifest), as recorded in
// raw/<source>/_manifest/<sha256hex>.json: the landing's commit point. Only
// objects with a manifest exist for bronze.
type manifest struct {
	Source     string    `json:"source"`
	Key        string    `json:"key"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	ReceivedAt time.Time `json:"received_at"`
	Name       string    `json:"name"`
	Format     string    `json:"format"`
}

func fromRaw(r raw.Manifest) manifest {
	return manifest{Source: r.Source, Key: r.Key, SHA256: r.SHA256, Size: r.Size, ReceivedAt: r.ReceivedAt, Name: r.Name, Format: r.Format}
}

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
