package bronze

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/medallion-dev/medallion/warehouse"
)

// A joined file: DuckDB's JSON reader costs about 70 µs of CPU a file
// whatever the file holds (opening it, a scan state, a buffer), so a
// statement over a thousand objects of five lines paid more for the files
// than for the rows. The objects a fast-path statement reads are small and
// their bytes already in memory (they were read to check their sha256), so
// their lines are written into one scratch file, each wrapped in an object
// that names its raw object and received time:
//
//	{"_f":"raw/meters/dt=.../x.ndjson","_r":"2026-12-06 10:00:00.123456+00","j":<the line>}
//
// and one reader reads that file. The line is the value of j, parsed by
// the same reader into the same map, so the rows, their lineage and what
// refuses the batch are those of the reader over the objects' own files.
// A line is wrapped only when it is one JSON object on its own (checked
// in Go): wrapping text that is not could make a valid object of an
// invalid line. An object with any other line, or too large to be kept in
// memory, sends its statement back to the reader over the files.

// The typed read (typedjson.go) reads the declared keys as top-level
// columns, so its joined file cannot nest the line: the two lineage keys
// are merged into the line's own object instead,
//
//	{"_f":"raw/meters/dt=.../x.ndjson","_r":"2026-12-06 10:00:00.123456+00",<the line's members>}
//
// The typed read is taken only for objects whose lines have declared keys
// alone (typedFits), so the merged keys meet no key of the line unless the
// schema declares a column _f or _r, and then the statement reads the
// objects' files. Merging after the opening brace keeps a line's validity
// either way: the merged text is a valid object exactly when the line is
// (its members after a comma, or none), which json.Valid checks in Go
// first as for the wrapped line.

// Joined file layouts: how a line carries its object's key and received
// time.
const (
	joinWrap  = iota // {"_f":…,"_r":…,"j":<line>}: the MAP read
	joinMerge        // {"_f":…,"_r":…,<line's members>}: the typed read
)

// writeJoined writes the lines of the objects ms into path as a joined
// file of the given layout (joinWrap, joinMerge). ok is false (and nothing
// need be read from path) when an object's bytes are not in memory or it
// has a non-blank line that is not a JSON object, or (joinMerge) the
// schema declares a column named like a merged key.
func (j *job) writeJoined(ms []manifest, path string, layout int) (ok bool, err error) {
	if layout == joinMerge {
		for _, c := range j.plan.cols {
			if strings.EqualFold(c.srcName, "_f") || strings.EqualFold(c.srcName, "_r") {
				return false, nil
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return false, fmt.Errorf("joined file: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 256<<10)
	for _, m := range ms {
		data, ok := j.fetchedData[m.SHA256]
		if !ok {
			return false, nil
		}
		key, err := json.Marshal(m.sourceFile())
		if err != nil {
			return false, err
		}
		prefix := `{"_f":` + string(key) + `,"_r":"` + receivedText(m.ReceivedAt) + `"`
		if layout == joinWrap {
			prefix += `,"j":`
		}
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			// JSON's own blanks only: a line the reader would not take
			// must not become one it takes.
			line = bytes.Trim(line, " \t\r")
			if len(line) == 0 {
				continue
			}
			if line[0] != '{' || !json.Valid(line) {
				return false, nil
			}
			w.WriteString(prefix)
			if layout == joinWrap {
				w.Write(line)
				w.WriteString("}\n")
				continue
			}
			// The members after the brace; none: no comma either.
			rest := line[1:]
			if t := bytes.TrimLeft(rest, " \t\r\n"); len(t) == 0 || t[0] != '}' {
				w.WriteByte(',')
			}
			w.Write(rest)
			w.WriteByte('\n')
		}
	}
	if err := w.Flush(); err != nil {
		return false, fmt.Errorf("joined file: %w", err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("joined file: %w", err)
	}
	return true, nil
}

// ndjsonJoinedSelect is ndjsonFastSelect over a joined file (path); first
// is the file of the first of its objects (whose first line's keys stand
// for all of them).
func (j *job) ndjsonJoinedSelect(path, first string, lin lineage) string {
	size := ""
	if j.maxLine > 16<<20-(64<<10) {
		size = fmt.Sprintf(", maximum_object_size=%d", j.maxLine+64<<10)
	}
	reader := "read_json(" + warehouse.QuoteString(path) + ", format='newline_delimited', records=true, " +
		"columns={'_f': 'VARCHAR', '_r': 'VARCHAR', 'j': 'MAP(VARCHAR, VARCHAR)'}" + size + ")"
	src, in := j.ndjsonFastFrom(reader, "_f AS _obj, _r AS _at", first)
	typed := j.plan.typedQueryPass(src, in, ", _obj, _at")
	return j.bronzeSelectLineage("("+typed+") _t", "CAST(_t._obj AS "+lin.sourceType+")", "CAST(_t._at AS TIMESTAMPTZ)",
		lin, "CASE WHEN _err IS NULL THEN true ELSE error(_err) END")
}

// ndjsonTypedJoinedSelect is ndjsonTypedSelect over a joined file of the
// joinMerge layout (path).
func (j *job) ndjsonTypedJoinedSelect(path string, lin lineage) string {
	reader, in := j.ndjsonTypedSource(warehouse.QuoteString(path), []string{"'_f': 'VARCHAR'", "'_r': 'VARCHAR'"}, "", "_f AS _obj, _r AS _at")
	typed := j.plan.typedQueryPass(reader, in, ", _obj, _at")
	return j.bronzeSelectLineage("("+typed+") _t", "CAST(_t._obj AS "+lin.sourceType+")", "CAST(_t._at AS TIMESTAMPTZ)",
		lin, "CASE WHEN _err IS NULL THEN true ELSE error(_err) END")
}
