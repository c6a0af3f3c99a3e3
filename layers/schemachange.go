package layers

import (
	"fmt"
	"strings"

	"github.com/medallion-dev/medallion/lake/delta"
)

// Schema changes. A run compares the columns it is about to write with the
// columns of the table it writes (its Delta schema) before it writes
// anything. A new column applies: it is added to the table's schema
// (nullable; the earlier rows read NULL) in the commit of the run's rows,
// and that commit says so in its commitInfo (SchemaChangeKey). A column
// that is gone, renamed or of another type would hide or garble the
// table's earlier values: the run of that table stops with a
// *SchemaChangeError naming the change and the ways forward. See
// docs/schema-changes.md.

// SchemaChangeKey is the key, under commitInfo's medallion object, of the
// text describing the schema change a commit made ("added column pf
// double; renamed voltage -> volts"); `medallion history` shows it.
const SchemaChangeKey = "schema_change"

// ChangeKind says how a column differs between a table and a run.
type ChangeKind int

// The kinds of column change.
const (
	ColumnAdded   ChangeKind = iota + 1 // the run writes a column the table lacks
	ColumnRemoved                       // the table has a column the run no longer writes
	ColumnRetyped                       // the column's type differs
	ColumnRenamed                       // the column was renamed (declared with renamed_from)
)

// ColumnChange is one difference between a table's columns and the
// columns a run writes.
type ColumnChange struct {
	Kind    ChangeKind
	Column  string         // the run's name of the column (the table's for ColumnRemoved)
	From    string         // ColumnRenamed: the table's earlier name
	OldType delta.DataType // the table's type (not for ColumnAdded)
	NewType delta.DataType // the run's type (not for ColumnRemoved)
}

// String describes the change as history shows it: "added column pf
// double", "removed column voltage double", "retyped column n long ->
// double", "renamed voltage -> volts".
func (c ColumnChange) String() string {
	switch c.Kind {
	case ColumnAdded:
		return fmt.Sprintf("added column %s %s", c.Column, c.NewType)
	case ColumnRemoved:
		return fmt.Sprintf("removed column %s %s", c.Column, c.OldType)
	case ColumnRetyped:
		return fmt.Sprintf("retyped column %s %s -> %s", c.Column, c.OldType, c.NewType)
	case ColumnRenamed:
		return fmt.Sprintf("renamed %s -> %s", c.From, c.Column)
	}
	return "changed column " + c.Column
}

// DescribeChanges joins the changes' descriptions with "; ".
func DescribeChanges(cs []ColumnChange) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, "; ")
}

// DiffColumns compares have (the table's schema) with want (the columns a
// run writes). renamedFrom maps a column of want to the table's earlier
// name of it (renamed_from); a rename applies only when the table has the
// earlier name and not the new one. Names compare without case, as Delta
// column names do; the order of the columns does not matter. The changes
// come in want's order, then the removed columns in have's order.
func DiffColumns(have, want *delta.Schema, renamedFrom map[string]string) []ColumnChange {
	var out []ColumnChange
	used := map[string]bool{}
	for _, w := range want.Fields {
		h, ok := have.Field(w.Name)
		if !ok {
			if old := renamedFrom[w.Name]; old != "" {
				if h, ok = have.Field(old); ok {
					out = append(out, ColumnChange{Kind: ColumnRenamed, Column: w.Name, From: h.Name, OldType: h.Type, NewType: h.Type})
				}
			}
		}
		if !ok {
			out = append(out, ColumnChange{Kind: ColumnAdded, Column: w.Name, NewType: w.Type})
			continue
		}
		used[strings.ToLower(h.Name)] = true
		if h.Type.String() != w.Type.String() {
			out = append(out, ColumnChange{Kind: ColumnRetyped, Column: w.Name, OldType: h.Type, NewType: w.Type})
		}
	}
	for _, h := range have.Fields {
		if !used[strings.ToLower(h.Name)] {
			out = append(out, ColumnChange{Kind: ColumnRemoved, Column: h.Name, OldType: h.Type})
		}
	}
	return out
}

// SchemaChangeError refuses a run that would hide or garble a table's
// earlier values: a column removed, renamed or retyped without saying how
// to carry the earlier values over.
type SchemaChangeError struct {
	Table   TableRef
	Changes []ColumnChange // the refused changes
	// Place is where the first refused column is declared, "file:line:col"
	// (or "file:line"); empty when not known (a removed column).
	Place string
	// Keep says how to keep the earlier values instead of rebuilding
	// (e.g. "add `renamed_from: voltage` to column volts"); empty when
	// only a rebuild applies.
	Keep string
	// TypeName names a type in the message; nil: the Delta name (long,
	// boolean). Bronze names types as the pipeline file does (int64, bool).
	TypeName func(delta.DataType) string
}

// Error says what changed and the ways forward, on one line.
func (e *SchemaChangeError) Error() string {
	var b strings.Builder
	b.WriteString(e.Table.String() + ": ")
	if e.Place != "" {
		b.WriteString(e.Place + ": ")
	}
	fmt.Fprintf(&b, "schema change refused: %s", e.describe())
	fmt.Fprintf(&b, "; the table's earlier values would be lost or hidden. Either rebuild the table with the new columns: `medallion refresh %s`", e.Table)
	if e.Keep != "" {
		b.WriteString(", or keep the earlier values: " + e.Keep)
	}
	return b.String()
}

// describe words the refused changes for a user who edited the pipeline
// file: a removed column paired with an added one reads as a rename.
func (e *SchemaChangeError) describe() string {
	name := e.TypeName
	if name == nil {
		name = delta.DataType.String
	}
	parts := make([]string, 0, len(e.Changes))
	for _, c := range e.Changes {
		switch c.Kind {
		case ColumnRemoved:
			parts = append(parts, fmt.Sprintf("column %s (%s) is no longer written (removed or renamed)", c.Column, name(c.OldType)))
		case ColumnRetyped:
			parts = append(parts, fmt.Sprintf("column %s changed type %s -> %s", c.Column, name(c.OldType), name(c.NewType)))
		case ColumnAdded:
			parts = append(parts, fmt.Sprintf("column %s (%s) is new", c.Column, name(c.NewType)))
		default:
			parts = append(parts, c.String())
		}
	}
	return strings.Join(parts, ", ")
}

// Place formats a pipeline file position: "file:line:col", "file:line",
// or "" when line is 0.
func Place(file string, line, col int) string {
	if line <= 0 {
		return ""
	}
	if file == "" {
		file = "medallion.yaml"
	}
	if col > 0 {
		return fmt.Sprintf("%s:%d:%d", file, line, col)
	}
	return fmt.Sprintf("%s:%d", file, line)
}
