package generate

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// column is one field of a kind's rows.
type column struct {
	name string
	str  bool   // a JSON string (else a JSON number)
	key  []byte // `"name":`, precomputed for JSON
}

func newColumns(specs ...any) []column {
	cols := make([]column, 0, len(specs)/2)
	for i := 0; i < len(specs); i += 2 {
		name := specs[i].(string)
		key := appendJSONString(nil, []byte(name))
		cols = append(cols, column{name: name, str: specs[i+1].(bool), key: append(key, ':')})
	}
	return cols
}

var extraColumn = column{name: "extra", str: true, key: []byte(`"extra":`)}

// field is one value of a record: bytes [start,end) of record.buf.
type field struct {
	col        *column
	start, end int
	quote      bool // JSON: write as a string
	raw        bool // write the bytes as they are, in CSV and JSON
}

// record is one row being built. Values are appended to buf; buf only grows
// while a row is built, so offsets stay valid when a value is replaced.
type record struct {
	cols []column
	buf  []byte
	f    []field
}

func (r *record) reset() {
	r.buf = r.buf[:0]
	r.f = r.f[:0]
}

// mark starts the next value; done ends it.
func (r *record) mark() int { return len(r.buf) }

func (r *record) done(start int) {
	c := &r.cols[len(r.f)]
	r.f = append(r.f, field{col: c, start: start, end: len(r.buf), quote: c.str})
}

// add appends a whole value.
func (r *record) add(v string) {
	s := r.mark()
	r.buf = append(r.buf, v...)
	r.done(s)
}

func (r *record) value(i int) []byte { return r.buf[r.f[i].start:r.f[i].end] }

// set replaces value i, keeping its JSON type.
func (r *record) set(i int, v string) {
	s := len(r.buf)
	r.buf = append(r.buf, v...)
	r.f[i].start, r.f[i].end = s, len(r.buf)
}

// setString replaces value i with text (a wrong type when the column is numeric).
func (r *record) setString(i int, v string) {
	r.set(i, v)
	r.f[i].quote = true
}

// prefix puts p in front of value i.
func (r *record) prefix(i int, p string) {
	s := len(r.buf)
	r.buf = append(r.buf, p...)
	r.buf = append(r.buf, r.value(i)...)
	r.f[i].start, r.f[i].end = s, len(r.buf)
}

func (r *record) remove(i int) { r.f = append(r.f[:i], r.f[i+1:]...) }

func (r *record) addExtra(v string) {
	s := len(r.buf)
	r.buf = append(r.buf, v...)
	r.f = append(r.f, field{col: &extraColumn, start: s, end: len(r.buf), quote: true})
}

func (r *record) insertInvalidUTF8(i int) {
	v := r.value(i)
	mid := len(v) / 2
	s := len(r.buf)
	r.buf = append(r.buf, v[:mid]...)
	r.buf = append(r.buf, 0xff, 0xfe)
	r.buf = append(r.buf, r.buf[r.f[i].start+mid:r.f[i].end]...)
	r.f[i].start, r.f[i].end = s, len(r.buf)
}

// malformCSV breaks the quoting of value i in a way that spoils this line
// only: a bare quote inside an unquoted field, or text after a closing quote.
// (An unterminated quote would swallow every line after it.)
func (r *record) malformCSV(i int, rnd *rand.Rand) {
	v := r.value(i)
	s := len(r.buf)
	if rnd.IntN(2) == 0 {
		mid := len(v) / 2
		r.buf = append(r.buf, v[:mid]...)
		for _, c := range r.buf[s:] {
			if c == '"' || c == ',' {
				r.buf = r.buf[:s]
				break
			}
		}
		r.buf = append(r.buf, `5" tall`...)
	} else {
		r.buf = append(r.buf, '"')
		for _, c := range v {
			if c == '"' {
				r.buf = append(r.buf, '"')
			}
			r.buf = append(r.buf, c)
		}
		r.buf = append(r.buf, `" (sic)`...)
	}
	r.f[i].start, r.f[i].end, r.f[i].raw = s, len(r.buf), true
}

// encoder frames rows in one output format.
type encoder struct{ format string }

func (e encoder) begin(dst []byte) []byte {
	if e.format == JSON {
		return append(dst, "[\n"...)
	}
	return dst
}

// sep goes before every row but the first.
func (e encoder) sep(dst []byte) []byte {
	if e.format == JSON {
		return append(dst, ",\n"...)
	}
	return dst
}

func (e encoder) end(dst []byte) []byte {
	if e.format == JSON {
		return dst
	}
	return append(dst, '\n')
}

func (e encoder) finish(dst []byte, rows int64) []byte {
	if e.format != JSON {
		return dst
	}
	if rows == 0 {
		return append(dst, "]\n"...)
	}
	return append(dst, "\n]\n"...)
}

func (e encoder) row(dst []byte, r *record) []byte {
	if e.format == CSV {
		return appendCSVRow(dst, r)
	}
	return appendJSONObject(dst, r)
}

func appendHeader(dst []byte, cols []column) []byte {
	for i := range cols {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCSVField(dst, []byte(cols[i].name))
	}
	return append(dst, '\n')
}

func appendCSVRow(dst []byte, r *record) []byte {
	for i := range r.f {
		if i > 0 {
			dst = append(dst, ',')
		}
		f := &r.f[i]
		v := r.buf[f.start:f.end]
		if f.raw || !f.quote {
			dst = append(dst, v...)
		} else {
			dst = appendCSVField(dst, v)
		}
	}
	return dst
}

// appendCSVField quotes v when it holds a comma, quote or line break.
func appendCSVField(dst, v []byte) []byte {
	needs := false
	for _, c := range v {
		if c == ',' || c == '"' || c == '\n' || c == '\r' {
			needs = true
			break
		}
	}
	if !needs {
		return append(dst, v...)
	}
	dst = append(dst, '"')
	for _, c := range v {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

func appendJSONObject(dst []byte, r *record) []byte {
	dst = append(dst, '{')
	for i := range r.f {
		if i > 0 {
			dst = append(dst, ',')
		}
		f := &r.f[i]
		dst = append(dst, f.col.key...)
		v := r.buf[f.start:f.end]
		switch {
		case f.raw:
			dst = append(dst, v...)
		case f.quote:
			dst = appendJSONString(dst, v)
		default:
			dst = append(dst, v...)
		}
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes v as a JSON string. Bytes that are not valid UTF-8
// are copied as they are (the invalid_utf8 bad rows rely on it).
func appendJSONString(dst, v []byte) []byte {
	dst = append(dst, '"')
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendFixed2 appends v/100 with exactly two decimals: 1234 -> "12.34".
func appendFixed2(dst []byte, v int64) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	dst = strconv.AppendInt(dst, v/100, 10)
	c := v % 100
	return append(dst, '.', byte('0'+c/10), byte('0'+c%10))
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }

// calendar formats Unix-microsecond times in UTC quickly: the date is
// recomputed only when the day changes.
type calendar struct {
	day   int64
	valid bool
	y     int
	m, d  int
}

const usPerDay = 86400 * 1e6

func (c *calendar) split(us int64) (sec, frac int64) {
	day := us / usPerDay
	if us%usPerDay < 0 {
		day--
	}
	if !c.valid || day != c.day {
		y, m, d := time.UnixMicro(day * usPerDay).UTC().Date()
		c.day, c.valid, c.y, c.m, c.d = day, true, y, int(m), d
	}
	rem := us - day*usPerDay
	return rem / 1e6, rem % 1e6
}

func (c *calendar) appendDate(dst []byte) []byte { // 2006-01-02
	dst = appendYear(dst, c.y)
	dst = append(dst, '-')
	dst = append2(dst, c.m)
	dst = append(dst, '-')
	return append2(dst, c.d)
}

func appendYear(dst []byte, y int) []byte {
	if y >= 0 && y < 10000 {
		return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	}
	return strconv.AppendInt(dst, int64(y), 10)
}

func appendClock(dst []byte, sec int64) []byte { // 15:04:05
	dst = append2(dst, int(sec/3600))
	dst = append(dst, ':')
	dst = append2(dst, int(sec/60%60))
	dst = append(dst, ':')
	return append2(dst, int(sec%60))
}

// appendSQL appends "2006-01-02 15:04:05".
func (c *calendar) appendSQL(dst []byte, us int64) []byte {
	sec, _ := c.split(us)
	dst = c.appendDate(dst)
	dst = append(dst, ' ')
	return appendClock(dst, sec)
}

// appendRFC3339Milli appends "2006-01-02T15:04:05.000Z".
func (c *calendar) appendRFC3339Milli(dst []byte, us int64) []byte {
	sec, frac := c.split(us)
	dst = c.appendDate(dst)
	dst = append(dst, 'T')
	dst = appendClock(dst, sec)
	ms := frac / 1000
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// appendMDY appends "01/02/2006".
func (c *calendar) appendMDY(dst []byte, us int64) []byte {
	c.split(us)
	dst = append2(dst, c.m)
	dst = append(dst, '/')
	dst = append2(dst, c.d)
	dst = append(dst, '/')
	return appendYear(dst, c.y)
}

// appendHMS appends "15:04:05".
func (c *calendar) appendHMS(dst []byte, us int64) []byte {
	sec, _ := c.split(us)
	return appendClock(dst, sec)
}

// splitmix64 is a stateless hash for per-slot jitter that must not consume
// the data stream (slotTime is called out of order).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
