package pgmirror

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/warehouse"
)

// duringCopyAfter is the row after which the mirror.during-copy crash
// point fires (or the end of the rows, if there are fewer).
const duringCopyAfter = 5000

// copyChunk is how many bytes of COPY data are encoded before they are
// handed to the connection (pgconn sends at most 64 KiB per message).
const copyChunk = 64 << 10

// copyHeader starts a COPY in binary format: the signature, no flags, no
// header extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// The binary encodings of a column, from its PostgreSQL type.
type encoding uint8

const (
	encOther encoding = iota // through pgx's type map (numeric)
	encText
	encJSONB
	encInt8
	encInt4
	encInt2
	encFloat8
	encFloat4
	encBool
	encDate
	encTimestamptz // microseconds since 2000-01-01 UTC
	encTimestamp   // timestamp without time zone: of the wall clock
	encBytea
)

// pgEpoch is PostgreSQL's epoch for dates and timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// encodingOf gives the encoding and type OID of a column's PostgreSQL type
// (as PGType spells it).
func encodingOf(pgType string) (encoding, uint32) {
	switch pgType {
	case "text":
		return encText, pgtype.TextOID
	case "jsonb":
		return encJSONB, pgtype.JSONBOID
	case "bigint":
		return encInt8, pgtype.Int8OID
	case "integer":
		return encInt4, pgtype.Int4OID
	case "smallint":
		return encInt2, pgtype.Int2OID
	case "double precision":
		return encFloat8, pgtype.Float8OID
	case "real":
		return encFloat4, pgtype.Float4OID
	case "boolean":
		return encBool, pgtype.BoolOID
	case "date":
		return encDate, pgtype.DateOID
	case "timestamp with time zone":
		return encTimestamptz, pgtype.TimestamptzOID
	case "timestamp without time zone":
		return encTimestamp, pgtype.TimestampOID
	case "bytea":
		return encBytea, pgtype.ByteaOID
	}
	if strings.HasPrefix(pgType, "numeric") {
		return encOther, pgtype.NumericOID
	}
	return encOther, 0
}

// copyReader is the data of a COPY ... FROM STDIN (FORMAT binary) over the
// rows of several data files, read one file at a time through DuckDB and
// encoded a chunk at a time: memory stays flat whatever the number of rows,
// and values of the common types are encoded without pgx's type lookups.
// With ord, each row ends with its order (file index << 40 | position in
// the file), so that "the last file wins" when keys repeat.
type copyReader struct {
	ctx   context.Context
	eng   *warehouse.Engine
	files []warehouse.FileSpec
	cols  []column
	enc   []encoding
	oid   []uint32
	types *pgtype.Map // for encOther
	ord   bool

	// The producer's state (see produce).
	i       int
	cur     *warehouse.FileRows
	buf     []byte // the chunk being encoded
	begun   bool
	ended   bool
	err     error // read by Read once chunks is closed
	rows    int64
	crashAt string // the crash point this copy passes once; "": none or passed

	chunks chan []byte   // encoded chunks, closed at the end
	free   chan []byte   // sent chunks, for reuse
	stop   chan struct{} // closed when the COPY ends early
	out    []byte        // the chunk Read is handing over
	off    int
}

func newCopyReader(ctx context.Context, eng *warehouse.Engine, types *pgtype.Map, files []warehouse.FileSpec, cols []column, ord bool) *copyReader {
	r := &copyReader{ctx: ctx, eng: eng, files: files, cols: cols, types: types, ord: ord,
		enc: make([]encoding, len(cols)), oid: make([]uint32, len(cols)),
		chunks: make(chan []byte, 2), free: make(chan []byte, 3), stop: make(chan struct{})}
	for i, c := range cols {
		r.enc[i], r.oid[i] = encodingOf(c.pgType)
	}
	return r
}

// Read implements io.Reader for pgconn's CopyFrom: the chunks come from
// produce, on a goroutine of its own.
func (r *copyReader) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		if r.out != nil {
			select {
			case r.free <- r.out[:0]:
			default:
			}
			r.out = nil
		}
		chunk, ok := <-r.chunks
		if !ok {
			if r.err != nil { // set before chunks was closed
				return 0, r.err
			}
			return 0, io.EOF
		}
		r.out, r.off = chunk, 0
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

// produce reads and encodes the rows, a chunk at a time, until they end,
// an error, or stop. The encoding of a chunk overlaps the sending of the
// one before, and DuckDB is called from one locked OS thread: called from
// the sending goroutine, which hops threads at each network write, the
// process peaked about 50 MiB higher on a 3M-row load.
func (r *copyReader) produce() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(r.chunks)
	defer r.closeFile()
	for !r.ended && r.err == nil {
		select {
		case <-r.stop:
			return
		default:
		}
		select {
		case r.buf = <-r.free:
		default:
			r.buf = make([]byte, 0, copyChunk+4096)
		}
		r.fill()
		if len(r.buf) == 0 {
			continue
		}
		select {
		case r.chunks <- r.buf:
		case <-r.stop:
			return
		}
	}
}

// fill encodes rows into buf until it holds a chunk or the rows end.
func (r *copyReader) fill() {
	if !r.begun {
		r.begun = true
		r.buf = append(r.buf, copyHeader...)
	}
	for len(r.buf) < copyChunk {
		if r.cur == nil {
			if r.i >= len(r.files) {
				r.crashPoint()
				r.buf = binary.BigEndian.AppendUint16(r.buf, 0xffff) // the trailer: -1
				r.ended = true
				return
			}
			if r.cur, r.err = r.eng.ReadFile(r.ctx, r.files[r.i]); r.err != nil {
				r.cur = nil
				return
			}
		}
		if r.cur.Next() {
			if r.err = r.row(); r.err != nil {
				r.err = fmt.Errorf("read %s: %w", r.files[r.i].File.Path, r.err)
				return
			}
			continue
		}
		if err := r.cur.Err(); err != nil {
			r.err = fmt.Errorf("read %s: %w", r.files[r.i].File.Path, err)
			return
		}
		r.cur.Close()
		r.cur = nil
		r.i++
	}
}

// row appends the current row of cur.
func (r *copyReader) row() error {
	vals := r.cur.Values()
	n := len(vals)
	if r.ord {
		n++
	}
	r.buf = binary.BigEndian.AppendUint16(r.buf, uint16(n))
	for j, v := range vals {
		if err := r.value(j, v); err != nil {
			return fmt.Errorf("column %s: %w", r.cols[j].name, err)
		}
	}
	if r.ord {
		r.buf = appendField8(r.buf, uint64(int64(r.i)<<40|r.cur.Position()))
	}
	r.rows++
	if r.rows == duringCopyAfter {
		r.crashPoint()
	}
	return nil
}

// value appends one field: its length, then its binary value. It is one
// switch over every Go type DuckDB hands back, longer than 80 lines on
// purpose: each case is a few lines of PostgreSQL's binary format, and
// split apart they would hide which types are covered.
func (r *copyReader) value(j int, v any) error {
	if v == nil {
		r.buf = binary.BigEndian.AppendUint32(r.buf, math.MaxUint32) // -1: NULL
		return nil
	}
	b := r.buf
	switch r.enc[j] {
	case encText:
		if s, ok := v.(string); ok {
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
			r.buf = append(b, s...)
			return nil
		}
	case encJSONB:
		if s, ok := v.(string); ok {
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)+1))
			b = append(b, 1) // the jsonb binary format's version
			r.buf = append(b, s...)
			return nil
		}
	case encBytea:
		if s, ok := v.([]byte); ok {
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
			r.buf = append(b, s...)
			return nil
		}
	case encFloat8:
		if f, ok := v.(float64); ok {
			r.buf = appendField8(b, math.Float64bits(f))
			return nil
		}
	case encFloat4:
		if f, ok := v.(float32); ok {
			b = binary.BigEndian.AppendUint32(b, 4)
			r.buf = binary.BigEndian.AppendUint32(b, math.Float32bits(f))
			return nil
		}
	case encBool:
		if x, ok := v.(bool); ok {
			var c byte
			if x {
				c = 1
			}
			b = binary.BigEndian.AppendUint32(b, 1)
			r.buf = append(b, c)
			return nil
		}
	case encInt8, encInt4, encInt2:
		if i, ok := asInt64(v); ok {
			switch r.enc[j] {
			case encInt8:
				r.buf = appendField8(b, uint64(i))
				return nil
			case encInt4:
				if i >= math.MinInt32 && i <= math.MaxInt32 {
					b = binary.BigEndian.AppendUint32(b, 4)
					r.buf = binary.BigEndian.AppendUint32(b, uint32(int32(i)))
					return nil
				}
			default:
				if i >= math.MinInt16 && i <= math.MaxInt16 {
					b = binary.BigEndian.AppendUint32(b, 2)
					r.buf = binary.BigEndian.AppendUint16(b, uint16(int16(i)))
					return nil
				}
			}
			return fmt.Errorf("%d is out of range for %s", i, r.cols[j].pgType)
		}
	case encDate:
		if t, ok := v.(time.Time); ok {
			// Dates arrive as midnight UTC; the day of the wall clock counts.
			d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
			days := (d.Unix() - pgEpoch.Unix()) / 86400
			if days >= math.MinInt32 && days <= math.MaxInt32 {
				b = binary.BigEndian.AppendUint32(b, 4)
				r.buf = binary.BigEndian.AppendUint32(b, uint32(int32(days)))
				return nil
			}
		}
	case encTimestamptz, encTimestamp:
		if t, ok := v.(time.Time); ok {
			if r.enc[j] == encTimestamp && t.Location() != time.UTC {
				// The wall clock is the value (they arrive as UTC).
				t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
			}
			us := t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - pgEpoch.Unix()*1_000_000
			r.buf = appendField8(b, uint64(us))
			return nil
		}
	}
	return r.other(j, v)
}

// other appends a value through pgx's type map: decimals (which arrive as
// their exact text) and anything the fast paths do not know.
func (r *copyReader) other(j int, v any) error {
	if r.cols[j].decimal {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("decimal arrived as %T", v)
		}
		var n pgtype.Numeric
		if err := n.Scan(s); err != nil {
			return fmt.Errorf("decimal %q: %w", s, err)
		}
		v = n
	}
	if r.oid[j] == 0 {
		return fmt.Errorf("no binary encoding for %s", r.cols[j].pgType)
	}
	at := len(r.buf)
	b := binary.BigEndian.AppendUint32(r.buf, math.MaxUint32)
	out, err := r.types.Encode(r.oid[j], pgtype.BinaryFormatCode, v, b)
	if err != nil {
		return fmt.Errorf("encode %T as %s: %w", v, r.cols[j].pgType, err)
	}
	if out != nil {
		binary.BigEndian.PutUint32(out[at:], uint32(len(out)-at-4))
		b = out
	}
	r.buf = b
	return nil
}

func appendField8(b []byte, x uint64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, x)
}

func asInt64(v any) (int64, bool) {
	switch i := v.(type) {
	case int64:
		return i, true
	case int32:
		return int64(i), true
	case int16:
		return int64(i), true
	case int8:
		return int64(i), true
	case int:
		return int64(i), true
	}
	return 0, false
}

// crashPoint passes the copy's crash point (internal/crashpoint), once.
func (r *copyReader) crashPoint() {
	if p := r.crashAt; p != "" {
		r.crashAt = ""
		crashpoint.At(p)
	}
}

// closeFile releases the file being read, if the copy stopped early.
func (r *copyReader) closeFile() {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
}

// copyFiles streams the rows of files into the columns cols of table into
// with COPY FROM STDIN in binary format (freeze: with FREEZE, for a table
// created or truncated in the current subtransaction), plus the order
// column ord when it is not empty. It passes the crash point crashAt (when
// not empty) once, after duringCopyAfter rows or at the end of the rows.
// It returns the number of rows copied.
func copyFiles(ctx context.Context, tx pgx.Tx, eng *warehouse.Engine, into pgx.Identifier, files []warehouse.FileSpec, cols []column, ord string, freeze bool, crashAt string) (int64, error) {
	src := newCopyReader(ctx, eng, tx.Conn().TypeMap(), files, cols, ord != "")
	src.crashAt = crashAt
	names := quoted(cols)
	if ord != "" {
		names = append(names, pgx.Identifier{ord}.Sanitize())
	}
	opts := "FORMAT binary"
	if freeze {
		opts += ", FREEZE"
	}
	q := fmt.Sprintf("COPY %s (%s) FROM STDIN (%s)", into.Sanitize(), strings.Join(names, ", "), opts)
	go src.produce()
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, src, q)
	// Stop the producer and wait for it (its file is closed then).
	close(src.stop)
	for range src.chunks {
	}
	if src.err != nil {
		// The cause, rather than PostgreSQL's "COPY from stdin failed".
		return 0, src.err
	}
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
