package bronze

import "github.com/medallion-dev/medallion/lake/delta"

// QuarantineColumn is the column of bronze._quarantine naming the bronze
// column a row was refused for. It was "column", a reserved word in SQL
// that every query and dashboard had to quote.
const QuarantineColumn = "column_name"

// LegacyQuarantineColumn is its name in quarantine tables created before
// the rename. Such a table keeps it (its files and readers stay valid);
// readers that want one name alias it (see dashboard), e.g. in DuckDB
// SELECT * RENAME ("column" AS column_name).
const LegacyQuarantineColumn = "column"

// legacyQuarantine returns the schema of a quarantine table that still has
// the legacy column name, or nil for a new or renamed one.
func legacyQuarantine(snap *delta.Snapshot) *delta.Schema {
	if snap == nil {
		return nil
	}
	s, err := snap.Schema()
	if err != nil {
		return nil
	}
	if _, ok := s.Field(LegacyQuarantineColumn); !ok {
		return nil
	}
	if _, ok := s.Field(QuarantineColumn); ok {
		return nil
	}
	return s
}
