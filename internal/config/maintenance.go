package config

import (
	"cmp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of the maintenance: section (the loader fills them, so they are
// always set after Load).
const (
	DefaultTargetFileSize   = 128 << 20
	DefaultOptimizeMinFiles = 10
	DefaultRetain           = 168 * time.Hour
	DefaultRunsRetain       = 30 * 24 * time.Hour
	DefaultLeasesRetain     = 7 * 24 * time.Hour
	// DefaultLogRetain is Delta's delta.logRetentionDuration default: how
	// long a table's log entries (commits, checkpoints) stay for time travel.
	DefaultLogRetain        = 30 * 24 * time.Hour
	DefaultMaintenanceEvery = time.Hour
	// DefaultStreamCompactFiles is how many small files may pile up at the
	// end of a partition before stream mode compacts them.
	DefaultStreamCompactFiles = 20
	// MinRetain is the shortest data-file retention the pipeline file
	// accepts: a reader or writer slower than it could lose files it needs.
	MinRetain = 168 * time.Hour
)

// Maintenance configures compaction and retention (`medallion optimize`,
// `medallion vacuum`, and the pass `medallion serve` runs every Every).
type Maintenance struct {
	TargetFileSize     int64         // compacted file size; files below it are small
	OptimizeMinFiles   int           // small files a partition needs before it is compacted
	Retain             time.Duration // data files no version within it needs are vacuumed
	RunsRetain         time.Duration // run history older than it is deleted
	LeasesRetain       time.Duration // old lease generation objects older than it are deleted
	LogRetain          time.Duration // Delta log entries before the newest checkpoint older than it are deleted (time travel reaches back this far); at least retain
	Every              time.Duration // how often serve runs a maintenance pass; 0 with Off
	StreamCompactFiles int           // stream mode compacts a partition between micro-batches once more small files than this piled up at its end
	Off                bool          // every: off: serve runs none
}

func (l *loader) decodeMaintenance(n *yaml.Node, path string, m *Maintenance) {
	l.object(n, path,
		field{"target_file_size", func(n *yaml.Node, path string) { m.TargetFileSize = l.size(n, path) }},
		field{"optimize_min_files", func(n *yaml.Node, path string) { m.OptimizeMinFiles = l.integer(n, path) }},
		field{"stream_compact_files", func(n *yaml.Node, path string) { m.StreamCompactFiles = l.integer(n, path) }},
		field{"retain", func(n *yaml.Node, path string) { m.Retain = l.duration(n, path) }},
		field{"runs_retain", func(n *yaml.Node, path string) { m.RunsRetain = l.duration(n, path) }},
		field{"leases_retain", func(n *yaml.Node, path string) { m.LeasesRetain = l.duration(n, path) }},
		field{"log_retain", func(n *yaml.Node, path string) { m.LogRetain = l.duration(n, path) }},
		// every: how often serve runs a maintenance pass (a duration, default 1h), or off for none.
		field{"every", func(n *yaml.Node, path string) {
			v := strings.TrimSpace(l.str(n, path))
			if strings.EqualFold(v, "off") {
				m.Off = true
				return
			}
			d, err := ParseDuration(v)
			if err != nil {
				l.errorf(l.deref(n), path, "expected a duration such as 1h, or off, got %q", v)
				return
			}
			m.Every = d
		}},
	)
}

// validateMaintenance checks the values the file gave and fills the
// defaults of the others.
func (l *loader) validateMaintenance(m *Maintenance) {
	const p = "maintenance."
	if l.has(p+"target_file_size") && m.TargetFileSize < 1<<20 {
		l.errorf(nil, p+"target_file_size", "%d bytes is too small to compact into: want at least 1MiB, e.g. 128MiB", m.TargetFileSize)
	}
	if l.has(p+"optimize_min_files") && m.OptimizeMinFiles < 2 {
		l.errorf(nil, p+"optimize_min_files", "%d: want 2 or more (compacting one file gains nothing)", m.OptimizeMinFiles)
	}
	if l.has(p+"stream_compact_files") && m.StreamCompactFiles < 2 {
		l.errorf(nil, p+"stream_compact_files", "%d: want 2 or more (compacting one file gains nothing)", m.StreamCompactFiles)
	}
	if l.has(p+"retain") && m.Retain < MinRetain {
		l.errorf(nil, p+"retain", "%s is under 168h: a reader or writer slower than that could lose files it needs (`medallion vacuum --retain ... --force` does it once by hand)", m.Retain)
	}
	for _, k := range []struct {
		key string
		v   time.Duration
	}{{"runs_retain", m.RunsRetain}, {"leases_retain", m.LeasesRetain}} {
		if l.has(p+k.key) && k.v <= 0 {
			l.errorf(nil, p+k.key, "must be a positive duration, e.g. 30d")
		}
	}
	if l.has(p+"every") && !m.Off && m.Every <= 0 {
		l.errorf(nil, p+"every", "must be a positive duration, e.g. 1h, or off")
	}
	m.TargetFileSize = cmp.Or(m.TargetFileSize, DefaultTargetFileSize)
	m.OptimizeMinFiles = cmp.Or(m.OptimizeMinFiles, DefaultOptimizeMinFiles)
	m.StreamCompactFiles = cmp.Or(m.StreamCompactFiles, DefaultStreamCompactFiles)
	m.Retain = cmp.Or(m.Retain, DefaultRetain)
	m.RunsRetain = cmp.Or(m.RunsRetain, DefaultRunsRetain)
	m.LeasesRetain = cmp.Or(m.LeasesRetain, DefaultLeasesRetain)
	if l.has(p+"log_retain") && m.LogRetain < m.Retain {
		l.errorf(nil, p+"log_retain", "%s is shorter than maintenance.retain (%s): vacuum needs the log back to its own cutoff; set it to at least that, e.g. 30d", m.LogRetain, m.Retain)
	}
	m.LogRetain = cmp.Or(m.LogRetain, max(DefaultLogRetain, m.Retain))
	if !m.Off {
		m.Every = cmp.Or(m.Every, DefaultMaintenanceEvery)
	}
}
