package config

import (
	"strings"
	"testing"
	"time"
)

// TestMaintenance: the maintenance: section fills safe defaults, takes
// sizes and durations with units and every: off, and refuses unsafe or
// meaningless values, naming the key, line and column.
func TestMaintenance(t *testing.T) {
	base := "lake: file://./lake\nsources:\n  m:\n    format: ndjson\n    schema:\n      v: {type: double}\n"
	p, err := Parse("medallion.yaml", []byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Maintenance{TargetFileSize: DefaultTargetFileSize, OptimizeMinFiles: DefaultOptimizeMinFiles, Retain: DefaultRetain,
		RunsRetain: DefaultRunsRetain, LeasesRetain: DefaultLeasesRetain, LogRetain: DefaultLogRetain, Every: DefaultMaintenanceEvery, StreamCompactFiles: DefaultStreamCompactFiles}
	if p.Maintenance != want {
		t.Errorf("defaults: %+v, want %+v", p.Maintenance, want)
	}
	p, err = Parse("medallion.yaml", []byte(base+"maintenance:\n  target_file_size: 64MiB\n  optimize_min_files: 4\n  retain: 10d\n  runs_retain: 2d\n  leases_retain: 12h\n  log_retain: 45d\n  every: off\n  stream_compact_files: 8\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want = Maintenance{TargetFileSize: 64 << 20, OptimizeMinFiles: 4, Retain: 240 * time.Hour, RunsRetain: 48 * time.Hour, LeasesRetain: 12 * time.Hour, LogRetain: 45 * 24 * time.Hour, Off: true, StreamCompactFiles: 8}
	if p.Maintenance != want {
		t.Errorf("set: %+v, want %+v", p.Maintenance, want)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"  retain: 24h\n", `medallion.yaml:8:11: maintenance.retain: 24h0m0s is under 168h`},
		{"  target_file_size: 1KB\n", `medallion.yaml:8:21: maintenance.target_file_size: 1000 bytes is too small to compact into`},
		{"  optimize_min_files: 1\n", `medallion.yaml:8:23: maintenance.optimize_min_files: 1: want 2 or more`},
		{"  stream_compact_files: 1\n", `medallion.yaml:8:25: maintenance.stream_compact_files: 1: want 2 or more`},
		{"  runs_retain: 0s\n", `medallion.yaml:8:16: maintenance.runs_retain: must be a positive duration`},
		{"  log_retain: 100h\n", `medallion.yaml:8:15: maintenance.log_retain: 100h0m0s is shorter than maintenance.retain (168h0m0s)`},
		{"  every: sometimes\n", `medallion.yaml:8:10: maintenance.every: expected a duration such as 1h, or off, got "sometimes"`},
		{"  every: 0s\n", `medallion.yaml:8:10: maintenance.every: must be a positive duration, e.g. 1h, or off`},
		{"  retian: 200h\n", `medallion.yaml:8:3: unknown key "retian" in maintenance`},
	} {
		_, err := Parse("medallion.yaml", []byte(base+"maintenance:\n"+tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %s", tc.yaml, err, tc.want)
		}
	}
}

// defaultMaintenance is the section a pipeline file without one gets.
func defaultMaintenance() Maintenance {
	return Maintenance{TargetFileSize: DefaultTargetFileSize, OptimizeMinFiles: DefaultOptimizeMinFiles, Retain: DefaultRetain,
		RunsRetain: DefaultRunsRetain, LeasesRetain: DefaultLeasesRetain, LogRetain: DefaultLogRetain, Every: DefaultMaintenanceEvery, StreamCompactFiles: DefaultStreamCompactFiles}
}
