// Package generate writes realistic sample data for the pipelines medallion
// was built for: energy-meter readings, e-commerce click events, 400 Hz
// BME280 sensor samples and subway turnstile counts.
//
// Output is deterministic: the same Options (Seed included) give the same
// bytes. Bad rows (--bad-fraction) and late events (--late-fraction) are mixed
// in on purpose so that the bronze and silver layers have something to
// quarantine and to hold back. The hot path builds each row in a byte buffer
// with strconv-style appends; 10 million rows take seconds, not minutes.
package generate

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind names, as given to `medallion generate KIND`.
const (
	Energy    = "energy"
	Ecommerce = "ecommerce"
	Sensor    = "sensor"
	Turnstile = "turnstile"
)

// Output formats.
const (
	CSV    = "csv"
	NDJSON = "ndjson" // one JSON object per line
	JSON   = "json"   // one JSON array of objects, streamed
)

// DefaultLateBy is how far behind the newest event a late event is at least,
// when Options.LateBy is zero.
const DefaultLateBy = 5 * time.Minute

// DefaultStart is where event time starts when Options.Start is zero. It is
// fixed so that output does not depend on when it was generated.
func DefaultStart() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }

// Kinds lists the data sets Write can produce, sorted.
func Kinds() []string { return []string{Ecommerce, Energy, Sensor, Turnstile} }

// Formats lists the output formats, sorted.
func Formats() []string { return []string{CSV, JSON, NDJSON} }

// DefaultFormat is the format a kind is written in when Options.Format is
// empty: csv for ecommerce and turnstile, ndjson for energy and sensor.
func DefaultFormat(kind string) (string, error) {
	switch kind {
	case Energy, Sensor:
		return NDJSON, nil
	case Ecommerce, Turnstile:
		return CSV, nil
	}
	return "", unknownKind(kind)
}

func unknownKind(kind string) error {
	return fmt.Errorf("unknown kind %q (want %s)", kind, strings.Join(Kinds(), ", "))
}

// Options say what to generate. The zero value of every field but Kind is a
// usable default.
type Options struct {
	Kind   string // energy | ecommerce | sensor | turnstile
	Rows   int64  // data rows (records) to write, bad ones included; header and framing not counted
	Format string // csv | ndjson | json; empty: the kind's default (see DefaultFormat)
	Seed   uint64 // same seed, same options: same bytes

	// BadFraction of the rows are bad, in a fixed round-robin mix of the
	// BadKinds that apply to the format (see BadKindsFor).
	BadFraction float64
	// LateFraction of the events arrive late: they are held back and written
	// after events more than LateBy newer than them.
	LateFraction float64
	// LateBy is the delay beyond which an event counts as late; 0: DefaultLateBy.
	LateBy time.Duration
	// Start is the event time of the first row; zero: DefaultStart().
	Start time.Time
}

// Validate refuses options Write cannot honour, naming the option.
func (o Options) Validate() error {
	if _, err := DefaultFormat(o.Kind); err != nil {
		return err
	}
	switch o.Format {
	case "", CSV, NDJSON, JSON:
	default:
		return fmt.Errorf("unknown format %q (want %s)", o.Format, strings.Join(Formats(), ", "))
	}
	if o.Rows < 0 {
		return fmt.Errorf("rows %d: want 0 or more", o.Rows)
	}
	if !(o.BadFraction >= 0 && o.BadFraction <= 1) { // also refuses NaN
		return fmt.Errorf("bad fraction %v: want a number between 0 and 1", o.BadFraction)
	}
	if !(o.LateFraction >= 0 && o.LateFraction <= 1) {
		return fmt.Errorf("late fraction %v: want a number between 0 and 1", o.LateFraction)
	}
	if o.LateBy < 0 {
		return fmt.Errorf("late-by %v: want a positive duration", o.LateBy)
	}
	return nil
}

// withDefaults fills in the defaults of a validated Options.
func (o Options) withDefaults() Options {
	if o.Format == "" {
		o.Format, _ = DefaultFormat(o.Kind)
	}
	if o.LateBy == 0 {
		o.LateBy = DefaultLateBy
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart()
	}
	return o
}

// BadKind is one way a row can be bad.
type BadKind string

// The kinds of bad rows, in the order of the round-robin mix.
const (
	Malformed     BadKind = "malformed"      // CSV: broken quoting; JSON: a truncated object
	WrongType     BadKind = "wrong_type"     // "abc" where a number belongs
	MissingField  BadKind = "missing_field"  // CSV: too few fields; JSON: a required key is absent
	ExtraField    BadKind = "extra_field"    // CSV: too many fields; JSON: an unknown key
	OutOfRange    BadKind = "out_of_range"   // a negative energy_usage, price or counter, humidity above 100
	InvalidUTF8   BadKind = "invalid_utf8"   // bytes 0xff 0xfe inside a text field
	EmptyRequired BadKind = "empty_required" // an empty meter_id, user_id, device_id or SCP
	BadTimestamp  BadKind = "bad_timestamp"  // a timestamp that does not parse
	Duplicate     BadKind = "duplicate"      // the previous row, repeated byte for byte
)

// BadKinds lists every kind of bad row.
func BadKinds() []BadKind {
	return []BadKind{Malformed, WrongType, MissingField, ExtraField, OutOfRange, InvalidUTF8, EmptyRequired, BadTimestamp, Duplicate}
}

// BadKindsFor lists the kinds of bad rows written in a format. A JSON array
// gets no malformed rows: one broken element would make the whole document
// unreadable, not one row.
func BadKindsFor(format string) []BadKind {
	all := BadKinds()
	if format == JSON {
		return all[1:]
	}
	return all
}

// Stats counts what Write wrote.
type Stats struct {
	Rows  int64             // data rows written, bad ones included
	Bad   map[BadKind]int64 // bad rows by kind
	Late  int64             // good rows whose event time is more than LateBy behind the newest good row before them
	Bytes int64             // bytes written, header and framing included
}

// BadRows is the number of bad rows of every kind.
func (s Stats) BadRows() int64 {
	var n int64
	for _, c := range s.Bad {
		n += c
	}
	return n
}

// Write generates opts.Rows rows of opts.Kind to w. It returns what it wrote
// so far with any error: an invalid Options, a write error or ctx's error.
// It is over 80 lines on purpose: one loop draws from three random streams
// in a fixed order, and that order is what makes a seed reproduce the same
// file; kept in one place, a change that reorders the draws shows.
func Write(ctx context.Context, w io.Writer, opts Options) (Stats, error) {
	st := Stats{Bad: map[BadKind]int64{}}
	if err := opts.Validate(); err != nil {
		return st, err
	}
	opts = opts.withDefaults()

	// Three independent streams: row content, bad-row choices and late
	// choices, so that adding bad rows does not change the good ones.
	data := rand.New(rand.NewPCG(opts.Seed, 0x6d6564616c6c696f))
	badRng := rand.New(rand.NewPCG(opts.Seed, 0x626164726f7773))
	lateRng := rand.New(rand.NewPCG(opts.Seed, 0x6c617465))

	g := newGenerator(opts.Kind, data, opts.Start, opts.Seed)
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	enc := encoder{format: opts.Format}

	rec := &record{cols: g.columns()}
	badKinds := BadKindsFor(opts.Format)
	var (
		line, prev []byte
		havePrev   bool
		badTurn    int
		maxSeen    = int64(math.MinInt64)
		lateBy     = opts.LateBy.Microseconds()
	)
	q := lateQueue{}
	fresh := int64(0)
	written := int64(math.MinInt64) // newest event time written
	last := int64(math.MinInt64)
	if opts.Rows > 0 {
		last = g.slotTime(opts.Rows - 1)
	}
	// next returns the slot to write at this position: a held-back late
	// event once an event newer than its due time was written, else the
	// next fresh slot (possibly holding that one back).
	next := func() int64 {
		for {
			if q.len() > 0 && (fresh >= opts.Rows || written >= q.head().due) {
				return q.pop().slot
			}
			s := fresh
			fresh++
			if opts.LateFraction > 0 && lateRng.Float64() < opts.LateFraction {
				delay := lateBy + 1e6 + lateRng.Int64N(lateBy+1)
				if due := g.slotTime(s) + delay; due <= last {
					q.push(lateSlot{slot: s, due: due})
					continue
				}
			}
			return s
		}
	}

	line = enc.begin(line[:0])
	if opts.Format == CSV {
		line = appendHeader(line, rec.cols)
	}
	if _, err := bw.Write(line); err != nil {
		return st, fmt.Errorf("generate %s: %w", opts.Kind, err)
	}
	for pos := int64(0); pos < opts.Rows; pos++ {
		if pos&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				bw.Flush()
				st.Bytes = cw.n
				return st, err
			}
		}
		slot := next()
		t := g.slotTime(slot)
		written = max(written, t)
		rec.reset()
		g.fill(rec, slot, t)

		bad := BadKind("")
		if opts.BadFraction > 0 && badRng.Float64() < opts.BadFraction {
			bad = badKinds[badTurn%len(badKinds)]
			badTurn++
			if bad == Duplicate && !havePrev {
				bad = WrongType
			}
		}
		line = line[:0]
		if pos > 0 {
			line = enc.sep(line)
		}
		if bad == Duplicate {
			line = append(line, prev...)
		} else {
			if bad != "" {
				spoil(rec, g, bad, opts.Format, badRng)
			}
			start := len(line)
			line = enc.row(line, rec)
			if bad == Malformed && opts.Format != CSV {
				// Cut the object short: no closing brace, so it never parses.
				line = line[:len(line)-1-badRng.IntN(4)]
			}
			if bad == "" {
				prev = append(prev[:0], line[start:]...)
				havePrev = true
				if maxSeen != math.MinInt64 && maxSeen-t > lateBy {
					st.Late++
				}
				maxSeen = max(maxSeen, t)
			}
		}
		if bad != "" {
			st.Bad[bad]++
		}
		line = enc.end(line)
		if _, err := bw.Write(line); err != nil {
			return st, fmt.Errorf("generate %s: %w", opts.Kind, err)
		}
		st.Rows++
	}
	if _, err := bw.Write(enc.finish(line[:0], opts.Rows)); err != nil {
		return st, fmt.Errorf("generate %s: %w", opts.Kind, err)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("generate %s: %w", opts.Kind, err)
	}
	st.Bytes = cw.n
	return st, nil
}

// spoil turns a good record into a bad one of kind bad. Malformed JSON and
// duplicates are handled by the caller, on the encoded bytes.
func spoil(rec *record, g generator, bad BadKind, format string, r *rand.Rand) {
	ix := g.indexes()
	switch bad {
	case Malformed:
		if format == CSV {
			rec.malformCSV(ix.text, r)
		}
	case WrongType:
		rec.setString(ix.number, wrongValues[r.IntN(len(wrongValues))])
	case MissingField:
		if format == CSV {
			rec.remove(len(rec.f) - 1)
		} else {
			rec.remove(ix.required)
		}
	case ExtraField:
		rec.addExtra("unexpected")
	case OutOfRange:
		g.outOfRange(rec, r)
	case InvalidUTF8:
		rec.insertInvalidUTF8(ix.text)
	case EmptyRequired:
		rec.set(ix.required, "")
	case BadTimestamp:
		g.badTimestamp(rec, r)
	}
}

var wrongValues = []string{"abc", "N/A", "12,5", "1.2.3", "true"}

// generator produces the rows of one kind. Row content is a function of the
// slot (the row's place in event-time order), its event time and the data
// random stream, consumed in the order rows are written.
type generator interface {
	columns() []column
	// slotTime is the event time of slot s, in Unix microseconds, already
	// truncated to the resolution the kind writes.
	slotTime(s int64) int64
	fill(rec *record, s, t int64)
	indexes() fieldIndexes
	outOfRange(rec *record, r *rand.Rand)
	badTimestamp(rec *record, r *rand.Rand)
}

// fieldIndexes point at the columns that bad rows spoil.
type fieldIndexes struct {
	required int // a required text column (emptied; missing in JSON)
	number   int // a numeric column (given text)
	text     int // a text column (invalid UTF-8, broken quoting)
}

func newGenerator(kind string, r *rand.Rand, start time.Time, seed uint64) generator {
	us := start.UnixMicro()
	switch kind {
	case Energy:
		return newEnergy(r, us)
	case Ecommerce:
		return newEcommerce(r, us, seed)
	case Sensor:
		return newSensor(r, us)
	case Turnstile:
		return newTurnstile(r, us)
	}
	panic("generate: unknown kind " + kind) // Validate refused it
}

// lateSlot is an event held back until events newer than due were written.
type lateSlot struct{ slot, due int64 }

// lateQueue is a FIFO of held-back events.
type lateQueue struct {
	items []lateSlot
	head0 int
}

func (q *lateQueue) len() int        { return len(q.items) - q.head0 }
func (q *lateQueue) head() lateSlot  { return q.items[q.head0] }
func (q *lateQueue) push(s lateSlot) { q.items = append(q.items, s) }
func (q *lateQueue) pop() lateSlot {
	s := q.items[q.head0]
	q.head0++
	if q.head0 > 4096 && q.head0*2 > len(q.items) {
		q.items = slices.Delete(q.items, 0, q.head0)
		q.head0 = 0
	}
	return s
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
