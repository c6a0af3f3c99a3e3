package bronze

import (
	"strings"
	"time"

	"github.com/medallion-dev/medallion/warehouse"
)

// Typing a batch of many small objects one statement per object cost about
// 20 ms of CPU an object, nearly all of it DuckDB preparing and running the
// statement, against well under a millisecond to read the object's rows.
// So the NDJSON objects of a batch are read by one reader over the list of
// their files (docs/bronze-batching.md): the reader's filename column,
// exposed as _obj, says which object a row came from, and a join with the
// batch's lineage table (lineageValues) gives each row its object's key
// (_source_file) and received time (_ingested_at).

// Caps on the objects and bytes one statement reads: a batch is already
// bounded (MaxBatchObjects, MaxBatchBytes), these bound a statement even
// when a pipeline raises the batch's bounds.
const (
	maxGroupObjects = 1000
	maxGroupBytes   = 256 << 20
)

// groupChunks splits the objects of a batch (indexes into ms) into runs
// of at most maxGroupObjects objects and maxGroupBytes bytes (an object
// larger than the byte cap runs alone).
func groupChunks(ms []manifest) [][]int {
	var out [][]int
	var cur []int
	var bytes int64
	for i, m := range ms {
		if len(cur) > 0 && (len(cur) >= maxGroupObjects || bytes+m.Size > maxGroupBytes) {
			out = append(out, cur)
			cur, bytes = nil, 0
		}
		cur = append(cur, i)
		bytes += m.Size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// fileList renders local paths as a DuckDB list of strings.
func fileList(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = warehouse.QuoteString(p)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// lineageValues is a FROM item mapping each object's local file (as the
// readers' filename column names it) to its key and received time, as
// columns _lin_obj, _lin_file and _lin_at. The key is cast to the batch's
// lineage ENUM where it is selected (groupSelect), once, rather than in
// every row of the list.
func lineageValues(ms []manifest, paths []string) string {
	rows := make([]string, len(ms))
	for i, m := range ms {
		rows[i] = "(" + warehouse.QuoteString(paths[i]) + ", " + warehouse.QuoteString(m.Key) + ", " +
			warehouse.QuoteString(receivedText(m.ReceivedAt)) + ")"
	}
	return "(VALUES " + strings.Join(rows, ", ") + ") AS _lin(_lin_obj, _lin_file, _lin_at)"
}

// groupSelect selects, with lineage, the rows of typed (a typed query over
// many objects' files, carrying _obj) that where keeps; ms and paths are
// the objects the query reads.
func (j *job) groupSelect(typed string, ms []manifest, paths []string, lin lineage, where string) string {
	from := "(" + typed + ") _t JOIN " + lineageValues(ms, paths) + " ON _t._obj = _lin._lin_obj"
	return j.bronzeSelectLineage(from, "CAST(_lin._lin_file AS "+lin.sourceType+")", "CAST(_lin._lin_at AS TIMESTAMPTZ)", lin, where)
}

// receivedText is how a received time is written in SQL text.
func receivedText(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
}
