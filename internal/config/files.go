package config

import (
	"path"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Files is a watched folder or S3 prefix a source takes new files from
// (from: {files: ...}): `serve` polls it every Interval, `medallion run`
// takes what is there when it starts. Each file is taken once.
type Files struct {
	Path            string        // a local directory, or s3://bucket/prefix
	Glob            string        // base names to take ("*.csv"); empty: all
	Interval        time.Duration // between polls under serve; default 5s
	MinAge          time.Duration // a file unchanged this long is taken without a second look; 0: two polls needed
	IncludeExisting bool          // take the files already there at the first start; default true
	MaxFiles        int           // per batch; 0: no limit
	MaxBytes        int64         // per batch (at least one file is taken); 0: no limit
	OnChange        string        // ignore | error: a taken file rewritten in place
	AfterIngest     string        // keep | delete | move
	MoveTo          string        // after_ingest move: where (a directory, or s3://bucket/prefix)
	Listing         string        // full | incremental: list only after the last file decided; default full
	S3              *S3           // another bucket's endpoint and credentials; nil: the lake's
	Line            int
}

// File source defaults.
const (
	DefaultFilesInterval = 5 * time.Second
)

func (l *loader) decodeFiles(n *yaml.Node, p string, s *Source) {
	f := &Files{Line: l.deref(n).Line, IncludeExisting: true, Interval: DefaultFilesInterval, OnChange: "ignore", AfterIngest: "keep", Listing: "full"}
	s.Files = f
	l.object(n, p,
		field{"path", func(n *yaml.Node, p string) { f.Path = l.str(n, p) }},
		field{"glob", func(n *yaml.Node, p string) { f.Glob = l.str(n, p) }},
		field{"interval", func(n *yaml.Node, p string) { f.Interval = l.duration(n, p) }},
		field{"min_age", func(n *yaml.Node, p string) { f.MinAge = l.duration(n, p) }},
		field{"include_existing", func(n *yaml.Node, p string) { f.IncludeExisting = l.boolean(n, p) }},
		field{"max_files_per_batch", func(n *yaml.Node, p string) { f.MaxFiles = l.integer(n, p) }},
		field{"max_bytes_per_batch", func(n *yaml.Node, p string) { f.MaxBytes = l.size(n, p) }},
		field{"on_change", func(n *yaml.Node, p string) { f.OnChange = l.str(n, p) }},
		field{"after_ingest", func(n *yaml.Node, p string) { f.AfterIngest = l.str(n, p) }},
		field{"move_to", func(n *yaml.Node, p string) { f.MoveTo = l.str(n, p) }},
		field{"listing", func(n *yaml.Node, p string) { f.Listing = l.str(n, p) }},
		field{"s3", func(n *yaml.Node, p string) { f.S3 = &S3{}; l.decodeS3(n, p, f.S3) }},
	)
}

// validateFiles checks a source's from: {files: ...}.
func (l *loader) validateFiles(p string, s *Source, f *Files) {
	fp := p + ".from.files"
	if s.Broker != nil && s.Broker.Kind != "" {
		l.errorf(nil, p+".from", "one input per source: files or %s, not both", s.Broker.Kind)
	}
	isS3 := strings.HasPrefix(f.Path, "s3://")
	switch {
	case f.Path == "":
		l.errorf(nil, fp+".path", "required: a directory (./drop, /srv/drop) or s3://bucket/prefix")
	case strings.Contains(f.Path, "://") && !isS3:
		l.errorf(nil, fp+".path", "%q: want a directory or s3://bucket/prefix", f.Path)
	case isS3 && len(strings.TrimPrefix(f.Path, "s3://")) == 0:
		l.errorf(nil, fp+".path", "%q: no bucket (want s3://bucket/prefix)", f.Path)
	}
	if f.Glob != "" {
		if _, err := path.Match(f.Glob, "x"); err != nil {
			l.errorf(nil, fp+".glob", "%q: %v (want a pattern such as *.csv)", f.Glob, err)
		}
	}
	if f.Interval <= 0 && l.has(fp+".interval") {
		l.errorf(nil, fp+".interval", "must be positive, e.g. 5s")
	}
	if f.MinAge < 0 {
		l.errorf(nil, fp+".min_age", "must not be negative")
	}
	if f.MaxFiles < 0 {
		l.errorf(nil, fp+".max_files_per_batch", "must not be negative (0: no limit)")
	}
	if f.MaxBytes < 0 {
		l.errorf(nil, fp+".max_bytes_per_batch", "must not be negative (0: no limit)")
	}
	if f.OnChange != "ignore" && f.OnChange != "error" {
		l.errorf(nil, fp+".on_change", "unknown value %q: want ignore or error", f.OnChange)
	}
	if f.Listing != "full" && f.Listing != "incremental" {
		l.errorf(nil, fp+".listing", "unknown value %q: want full or incremental (for names that sort in arrival order)", f.Listing)
	}
	l.validateAfterIngest(fp, f, isS3)
	if f.S3 != nil && !isS3 {
		l.errorf(nil, fp+".s3", "applies only to an s3:// path")
	}
}

// validateAfterIngest checks after_ingest and move_to: a move stays on the
// same kind of store, outside the watched folder (or it would be taken
// again).
func (l *loader) validateAfterIngest(fp string, f *Files, isS3 bool) {
	switch f.AfterIngest {
	case "keep", "delete":
		if f.MoveTo != "" {
			l.errorf(nil, fp+".move_to", "applies only to after_ingest: move")
		}
		return
	case "move":
	default:
		l.errorf(nil, fp+".after_ingest", "unknown value %q: want keep, delete or move", f.AfterIngest)
		return
	}
	switch {
	case f.MoveTo == "":
		l.errorf(nil, fp+".move_to", "required with after_ingest: move: a directory, or s3://bucket/prefix for an s3 path")
	case strings.HasPrefix(f.MoveTo, "s3://") != isS3:
		l.errorf(nil, fp+".move_to", "%q: a move stays on the same kind of store as path %q", f.MoveTo, f.Path)
	case !isS3 && f.Path != "" && within(filepath.Clean(f.MoveTo), filepath.Clean(f.Path)):
		l.errorf(nil, fp+".move_to", "%q is inside the watched folder %q: moved files would be taken again", f.MoveTo, f.Path)
	case isS3 && within(strings.TrimSuffix(f.MoveTo, "/"), strings.TrimSuffix(f.Path, "/")):
		l.errorf(nil, fp+".move_to", "%q is inside the watched prefix %q: moved files would be taken again", f.MoveTo, f.Path)
	}
}

// within reports whether p is dir or under it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}
