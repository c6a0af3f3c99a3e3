package config

// Defaults returns a pipeline with every top-level default set and no
// tables: a local lake in ./lake, DuckDB limited to 2GB. Parse starts from it.
func Defaults() *Pipeline {
	return &Pipeline{
		Lake:     "file://./lake",
		DuckDB:   DuckDB{MemoryLimit: "2GB"},
		Sources:  map[string]*Source{},
		Silver:   map[string]*Silver{},
		Gold:     map[string]*Gold{},
		Schedule: map[string]*Schedule{},
	}
}

// defaultSource is a source before its keys are read: quarantine bad rows,
// comma-separated CSV with a header.
func defaultSource(name string) *Source {
	return &Source{
		Name:    name,
		OnError: "quarantine",
		CSV:     CSVOptions{Delimiter: ",", Quote: `"`, Header: true},
	}
}

// defaultSilver is a silver table before its keys are read: append-only output.
func defaultSilver(name string) *Silver {
	return &Silver{Name: name, Output: "append"}
}

// defaultGold is a gold table before its keys are read. OrderBy is filled
// with window_start after reading, for tables built from a silver table.
func defaultGold(name string) *Gold {
	return &Gold{Name: name}
}

// defaultMovingAverage names the average column "ma".
func defaultMovingAverage() *MovingAverage {
	return &MovingAverage{As: "ma"}
}

// Default column settings, filled when the file does not say.
const (
	defaultTZ      = "UTC"
	defaultOrderBy = "window_start"
	defaultSchema  = "public" // PostgreSQL schema of mirrors whose to: has none
)
