package gold

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/medallion-dev/medallion/warehouse"
)

// The moving averages are computed in Go, in one ordered pass, rather than
// with DuckDB window functions: DuckDB's windowed avg sums a frame through
// a segment tree whose nodes are aligned on the row's position in the
// sorted input, so the same frame can round differently depending on which
// other rows were sorted with it (seen on frames over 16 rows). A frame
// here is always summed the same way, oldest row first, so a run over only
// the new rows and the tail of each partition gives exactly the values of
// a run over everything. For frames of at most 16 rows this is also the
// order DuckDB sums in, so those values are DuckDB's to the bit.

// passRow is one row of the pass input.
type passRow struct {
	rn    int64 // order of the row in the pass
	first bool  // first row of its partition
	ctx   bool  // context from an earlier run: no output, only history
	t     sql.NullInt64
	x     sql.NullFloat64
}

// passOut receives the pass's results: ma for every non-context row,
// then, at the end of each partition, its tail (the rows, or for ema the
// state, a later run needs to continue the partition).
type passOut struct {
	ma   *bufio.Writer // __rn,ma
	tail *bufio.Writer // __rn,__x,__seq,__last
	buf  []byte
	err  error
}

func (o *passOut) emit(rn int64, v float64, ok bool) {
	o.buf = strconv.AppendInt(o.buf[:0], rn, 10)
	o.buf = append(o.buf, ',')
	if ok {
		o.buf = appendFloat(o.buf, v)
	}
	o.buf = append(o.buf, '\n')
	if _, err := o.ma.Write(o.buf); err != nil && o.err == nil {
		o.err = err
	}
}

func (o *passOut) emitTail(rn int64, x sql.NullFloat64, seq int, last bool) {
	o.buf = strconv.AppendInt(o.buf[:0], rn, 10)
	o.buf = append(o.buf, ',')
	if x.Valid {
		o.buf = appendFloat(o.buf, x.Float64)
	}
	o.buf = append(o.buf, ',')
	o.buf = strconv.AppendInt(o.buf, int64(seq), 10)
	o.buf = append(o.buf, ',')
	o.buf = strconv.AppendBool(o.buf, last)
	o.buf = append(o.buf, '\n')
	if _, err := o.tail.Write(o.buf); err != nil && o.err == nil {
		o.err = err
	}
}

// averager computes one kind of moving average over a stream of rows in
// partition order.
type averager interface {
	row(r passRow, out *passOut)
	// end finishes the current partition and writes its tail.
	end(out *passOut)
}

func newAverager(spec *maSpec) averager {
	switch spec.average {
	case avgRows:
		return &rowsAvg{n: spec.rows, ring: make([]passRow, spec.rows)}
	case avgRange:
		return &rangeAvg{d: spec.rangeUS}
	default:
		return &emaAvg{alpha: spec.alpha}
	}
}

// frameMean is avg over the rows in order: NULLs skipped, NULL when none.
func frameMean(rows []passRow) (float64, bool) {
	var s float64
	n := 0
	for i := range rows {
		if rows[i].x.Valid {
			s += rows[i].x.Float64
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return s / float64(n), true
}

// rowsAvg: the mean of the row and the n-1 rows before it. The tail is the
// last max(n-1, 1) rows (one at least: it carries the last order value).
type rowsAvg struct {
	n     int
	ring  []passRow // the last n rows, oldest at start
	start int
	len   int
	frame []passRow
}

func (a *rowsAvg) row(r passRow, out *passOut) {
	if a.len < a.n {
		a.ring[(a.start+a.len)%a.n] = r
		a.len++
	} else {
		a.ring[a.start] = r
		a.start = (a.start + 1) % a.n
	}
	if r.ctx {
		return
	}
	a.frame = a.ordered(a.frame[:0], a.len)
	v, ok := frameMean(a.frame)
	out.emit(r.rn, v, ok)
}

// ordered appends the last k rows of the ring, oldest first.
func (a *rowsAvg) ordered(dst []passRow, k int) []passRow {
	for i := a.len - k; i < a.len; i++ {
		dst = append(dst, a.ring[(a.start+i)%a.n])
	}
	return dst
}

func (a *rowsAvg) end(out *passOut) {
	k := min(a.len, max(a.n-1, 1))
	a.frame = a.ordered(a.frame[:0], k)
	for i, r := range a.frame {
		out.emitTail(r.rn, r.x, i, i == len(a.frame)-1)
	}
	a.start, a.len = 0, 0
}

// rangeAvg: the mean of the rows whose order value t' lies in (t-d, t],
// peers of t included. Rows with a NULL order value (sorted last) are each
// other's peers and average among themselves. The tail is the rows within
// d of the last order value.
type rangeAvg struct {
	d     int64
	rows  []passRow // the rows that can still be in a frame, then the pending peers
	peers int       // index of the first pending peer in rows
}

func (a *rangeAvg) row(r passRow, out *passOut) {
	if a.peers < len(a.rows) {
		p := a.rows[a.peers].t
		if p.Valid != r.t.Valid || p.Int64 != r.t.Int64 {
			a.flush(out)
		}
	}
	a.rows = append(a.rows, r)
}

// flush writes the averages of the pending peers and drops the rows no
// later frame can hold.
func (a *rangeAvg) flush(out *passOut) {
	peers := a.rows[a.peers:]
	if len(peers) == 0 {
		return
	}
	lo := a.peers
	if t := peers[0].t; t.Valid {
		lo = 0
		for lo < a.peers && a.rows[lo].t.Valid && a.rows[lo].t.Int64 <= t.Int64-a.d {
			lo++
		}
	}
	v, ok := frameMean(a.rows[lo:])
	for _, p := range peers {
		if !p.ctx {
			out.emit(p.rn, v, ok)
		}
	}
	if peers[0].t.Valid && lo > 0 {
		// Later rows have larger order values: what is out of this frame is
		// out of theirs.
		a.rows = append(a.rows[:0], a.rows[lo:]...)
	}
	a.peers = len(a.rows)
}

func (a *rangeAvg) end(out *passOut) {
	a.flush(out)
	for i, r := range a.rows {
		out.emitTail(r.rn, r.x, i, i == len(a.rows)-1)
	}
	a.rows, a.peers = a.rows[:0], 0
}

// emaAvg: ema_t = alpha*x_t + (1-alpha)*ema_{t-1}, seeded by the first
// non-NULL value; a NULL x carries the average forward. The tail is one row,
// the last, holding the average (NULL before the seed); a context row sets
// the state.
type emaAvg struct {
	alpha  float64
	prev   float64
	have   bool
	lastRN int64
	seen   bool
}

func (a *emaAvg) row(r passRow, out *passOut) {
	a.lastRN, a.seen = r.rn, true
	if r.ctx {
		a.prev, a.have = r.x.Float64, r.x.Valid
		return
	}
	if r.x.Valid {
		if a.have {
			a.prev = a.alpha*r.x.Float64 + (1-a.alpha)*a.prev
		} else {
			a.prev, a.have = r.x.Float64, true
		}
	}
	out.emit(r.rn, a.prev, a.have)
}

func (a *emaAvg) end(out *passOut) {
	if a.seen {
		out.emitTail(a.lastRN, sql.NullFloat64{Float64: a.prev, Valid: a.have}, 0, true)
	}
	a.prev, a.have, a.seen = 0, false, false
}

// maPass reads the rows of the temp table base in __rn order (1, 2, ...:
// partition by partition, each in its sort order, context rows first),
// namely __first (BOOLEAN: first row of a partition), __ctx (BOOLEAN, when
// hasCtx), the order value as epoch microseconds (range) and x (a DOUBLE
// expression), computes the average of spec and loads the results into two
// temp tables: ma (__rn, ma) for the non-context rows and tail (__rn, __x,
// __seq, __last), the tail of every partition. float64 arithmetic in a fixed order makes the values exact and
// deterministic; floats cross into DuckDB as shortest round-trip text.
func (r *runner) maPass(ctx context.Context, spec *maSpec, base string, hasCtx bool, order, x, name string) (ma, tail string, err error) {
	cols := []string{"__first"}
	if hasCtx {
		cols = append(cols, "__ctx")
	}
	if spec.average == avgRange {
		cols = append(cols, "epoch_us("+order+")")
	}
	query := "SELECT " + strings.Join(append(cols, x), ", ") + " FROM " + base + " ORDER BY __rn"
	maPath := filepath.Join(r.scratch, name+"-ma.csv")
	tailPath := filepath.Join(r.scratch, name+"-tail.csv")
	if err := r.runPass(ctx, spec, query, hasCtx, maPath, tailPath); err != nil {
		return "", "", fmt.Errorf("%s: moving average: %w", r.ref, err)
	}
	ma = r.tempTable(name + "_ma")
	q := "CREATE TEMP TABLE " + ma + " AS SELECT * FROM read_csv(" + warehouse.QuoteString(maPath) +
		", header = false, auto_detect = false, delim = ',', quote = '', escape = '', columns = {'__rn': 'BIGINT', 'ma': 'DOUBLE'})"
	if err := r.exec(ctx, q); err != nil {
		return "", "", fmt.Errorf("%s: load moving average: %w", r.ref, err)
	}
	tail = r.tempTable(name + "_tail")
	q = "CREATE TEMP TABLE " + tail + " AS SELECT * FROM read_csv(" + warehouse.QuoteString(tailPath) +
		", header = false, auto_detect = false, delim = ',', quote = '', escape = '', columns = {'__rn': 'BIGINT', '__x': 'DOUBLE', '__seq': 'BIGINT', '__last': 'BOOLEAN'})"
	if err := r.exec(ctx, q); err != nil {
		return "", "", fmt.Errorf("%s: load moving average state: %w", r.ref, err)
	}
	return ma, tail, nil
}

func (r *runner) runPass(ctx context.Context, spec *maSpec, query string, hasCtx bool, maPath, tailPath string) error {
	mf, err := os.Create(maPath)
	if err != nil {
		return err
	}
	defer mf.Close()
	tf, err := os.Create(tailPath)
	if err != nil {
		return err
	}
	defer tf.Close()
	out := &passOut{ma: bufio.NewWriterSize(mf, 1<<20), tail: bufio.NewWriterSize(tf, 1<<16)}
	rows, err := r.conn.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	avg := newAverager(spec)
	var (
		row     passRow
		started bool
		n       int64
	)
	// Scanning costs per value: read only the columns this pass needs.
	dest := []any{&row.first}
	if hasCtx {
		dest = append(dest, &row.ctx)
	}
	if spec.average == avgRange {
		dest = append(dest, &row.t)
	}
	dest = append(dest, &row.x)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		row.rn++
		if row.first && started {
			avg.end(out)
		}
		started = true
		avg.row(row, out)
		if !row.ctx {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if started {
		avg.end(out)
	}
	r.rowsIn += n
	if out.err != nil {
		return out.err
	}
	if err := out.ma.Flush(); err != nil {
		return err
	}
	if err := out.tail.Flush(); err != nil {
		return err
	}
	if err := mf.Close(); err != nil {
		return err
	}
	return tf.Close()
}

// appendFloat writes v so that DuckDB parses back exactly the same float64.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "nan"...)
	case math.IsInf(v, 1):
		return append(b, "inf"...)
	case math.IsInf(v, -1):
		return append(b, "-inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
