package pgmirror

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestEncodeValue: the fast binary encodings are byte for byte what pgx
// sends for the same value and type; values out of a type's range fail
// with a clear error.
func TestEncodeValue(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("CET", 3600)
	}
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	day := func(s string) time.Time {
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		pgType string
		value  any
		want   any    // what pgx encodes (nil: value)
		err    string // wanted error
	}{
		{pgType: "text", value: ""},
		{pgType: "text", value: "héllo \"x\"\n"},
		{pgType: "jsonb", value: `{"a":[1,null,"b"]}`},
		{pgType: "bytea", value: []byte{}},
		{pgType: "bytea", value: []byte{0xaa, 0, 0xff}},
		{pgType: "bigint", value: int64(math.MinInt64)},
		{pgType: "bigint", value: int32(-7), want: int64(-7)},
		{pgType: "integer", value: int32(math.MaxInt32)},
		{pgType: "integer", value: int64(math.MaxInt32 + 1), err: "out of range for integer"},
		{pgType: "smallint", value: int16(-300)},
		{pgType: "smallint", value: int8(-100), want: int16(-100)},
		{pgType: "smallint", value: int32(40000), err: "out of range for smallint"},
		{pgType: "double precision", value: 1.0 / 3},
		{pgType: "double precision", value: math.NaN()},
		{pgType: "double precision", value: math.Inf(-1)},
		{pgType: "real", value: float32(2.5)},
		{pgType: "real", value: float32(math.Inf(1))},
		{pgType: "boolean", value: true},
		{pgType: "boolean", value: false},
		{pgType: "date", value: day("2024-02-29")},
		{pgType: "date", value: day("1999-12-31")},
		{pgType: "date", value: day("0001-01-01")},
		{pgType: "date", value: day("9999-12-31")},
		{pgType: "timestamp with time zone", value: ts("2024-01-01T10:00:00.123456Z")},
		{pgType: "timestamp with time zone", value: ts("1969-12-31T23:59:59.999999Z")},
		{pgType: "timestamp with time zone", value: ts("0001-01-01T00:00:00Z")},
		{pgType: "timestamp with time zone", value: time.Date(2024, 6, 1, 12, 0, 0, 0, berlin)},
		{pgType: "timestamp without time zone", value: ts("2024-01-01T10:00:00.5Z")},
		{pgType: "timestamp without time zone", value: time.Date(2024, 6, 1, 12, 0, 0, 0, berlin)},
		{pgType: "numeric(12,3)", value: "-1234.500"},
		{pgType: "numeric(12,3)", value: 1.5, err: "decimal arrived as float64"},
		{pgType: "numeric(12,3)", value: "x", err: `decimal "x"`},
	}
	types := pgtype.NewMap()
	for _, tt := range tests {
		enc, oid := encodingOf(tt.pgType)
		col := column{name: "c", pgType: tt.pgType, decimal: strings.HasPrefix(tt.pgType, "numeric")}
		r := newCopyReader(t.Context(), nil, types, nil, []column{col}, false)
		err := r.value(0, tt.value)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s %v: error %v, want %q", tt.pgType, tt.value, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %v: %v", tt.pgType, tt.value, err)
			continue
		}
		want := tt.want
		if want == nil {
			want = tt.value
		}
		if col.decimal {
			var n pgtype.Numeric
			if err := n.Scan(want.(string)); err != nil {
				t.Fatal(err)
			}
			want = n
		}
		if enc == encTimestamp {
			// pgx sends the wall clock of a timestamp without time zone.
			tm := want.(time.Time)
			want = time.Date(tm.Year(), tm.Month(), tm.Day(), tm.Hour(), tm.Minute(), tm.Second(), tm.Nanosecond(), time.UTC)
		}
		body, err := types.Encode(oid, pgtype.BinaryFormatCode, want, nil)
		if err != nil {
			t.Fatalf("pgx encoding of %s %v: %v", tt.pgType, want, err)
		}
		wantField := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		wantField = append(wantField, body...)
		if !bytes.Equal(r.buf, wantField) {
			t.Errorf("%s %v: encoded %x, pgx encodes %x", tt.pgType, tt.value, r.buf, wantField)
		}
	}
}
