package warehouse

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/medallion-dev/medallion/lake/delta"
)

// QuoteIdent quotes a DuckDB identifier: SQL built from table and column
// names never splices them raw.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteString quotes a DuckDB string literal.
func QuoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// DuckType renders a Delta type as the DuckDB type that reads and writes it.
func DuckType(t delta.DataType) (string, error) {
	switch t.Name {
	case delta.TypeString:
		return "VARCHAR", nil
	case delta.TypeLong:
		return "BIGINT", nil
	case delta.TypeInteger:
		return "INTEGER", nil
	case delta.TypeShort:
		return "SMALLINT", nil
	case delta.TypeByte:
		return "TINYINT", nil
	case delta.TypeFloat:
		return "FLOAT", nil
	case delta.TypeDouble:
		return "DOUBLE", nil
	case delta.TypeBoolean:
		return "BOOLEAN", nil
	case delta.TypeBinary:
		return "BLOB", nil
	case delta.TypeDate:
		return "DATE", nil
	case delta.TypeTimestamp:
		return "TIMESTAMP WITH TIME ZONE", nil
	case delta.TypeTimestampNTZ:
		return "TIMESTAMP", nil
	case "array":
		if t.ElementType == nil {
			return "", fmt.Errorf("array without an element type")
		}
		e, err := DuckType(*t.ElementType)
		if err != nil {
			return "", err
		}
		return e + "[]", nil
	case "map":
		if t.KeyType == nil || t.ValueType == nil {
			return "", fmt.Errorf("map without a key or value type")
		}
		k, err := DuckType(*t.KeyType)
		if err != nil {
			return "", err
		}
		v, err := DuckType(*t.ValueType)
		if err != nil {
			return "", err
		}
		return "MAP(" + k + ", " + v + ")", nil
	case "struct":
		parts := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			ft, err := DuckType(f.Type)
			if err != nil {
				return "", fmt.Errorf("field %s: %w", f.Name, err)
			}
			parts[i] = QuoteIdent(f.Name) + " " + ft
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")", nil
	}
	if p, s, ok := t.Decimal(); ok {
		return fmt.Sprintf("DECIMAL(%d,%d)", p, s), nil
	}
	return "", fmt.Errorf("unsupported delta type %q", t.Name)
}

// DeltaType maps a DuckDB type (as DESCRIBE prints it) to the Delta type a
// gold table stores it as. Types Delta has no counterpart for are mapped to
// the closest one (HUGEINT to long, as Spark's sum(long) is; TIME, INTERVAL,
// UUID, ENUM and the like to string); writing then casts the column to
// DuckType(DeltaType(t)) so the Parquet files match the table schema.
func DeltaType(duck string) (delta.DataType, error) {
	p := typeParser{s: duck}
	t, err := p.parse()
	if err != nil {
		return delta.DataType{}, fmt.Errorf("duckdb type %q: %w", duck, err)
	}
	if p.skipSpace(); p.i != len(p.s) {
		return delta.DataType{}, fmt.Errorf("duckdb type %q: unexpected %q", duck, p.s[p.i:])
	}
	return t, nil
}

// typeParser is a small recursive-descent parser over DuckDB type strings:
// NAME, NAME(args), T[], T[N], STRUCT(name T, ...), MAP(K, V).
type typeParser struct {
	s string
	i int
}

func (p *typeParser) skipSpace() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *typeParser) parse() (delta.DataType, error) {
	p.skipSpace()
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune("([,)", rune(p.s[p.i])) {
		p.i++
	}
	name := strings.ToUpper(strings.TrimSpace(p.s[start:p.i]))
	var t delta.DataType
	var err error
	switch name {
	case "STRUCT":
		t, err = p.parseStruct()
	case "MAP":
		t, err = p.parseMap()
	case "DECIMAL", "NUMERIC":
		t, err = p.parseDecimal()
	default:
		// ENUM('a', 'b'), UNION(...), VARCHAR(10) and friends: skip the arguments.
		if p.i < len(p.s) && p.s[p.i] == '(' {
			if err := p.skipParens(); err != nil {
				return t, err
			}
		}
		t, err = primitiveFor(name)
	}
	if err != nil {
		return t, err
	}
	for p.skipSpace(); p.i < len(p.s) && p.s[p.i] == '['; p.skipSpace() {
		end := strings.IndexByte(p.s[p.i:], ']')
		if end < 0 {
			return t, fmt.Errorf("unclosed '['")
		}
		p.i += end + 1
		elem := t
		t = delta.DataType{Name: "array", ElementType: &elem, ContainsNull: true}
	}
	return t, nil
}

func primitiveFor(name string) (delta.DataType, error) {
	switch name {
	case "VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "JSON", "UUID", "TIME", "TIME WITH TIME ZONE",
		"TIMETZ", "INTERVAL", "ENUM", "BIT", "BITSTRING", "UNION", "VARINT", "BIGNUM":
		return delta.Primitive(delta.TypeString), nil
	case "BIGINT", "INT8", "LONG", "HUGEINT", "INT128", "UINTEGER", "UINT32":
		return delta.Primitive(delta.TypeLong), nil
	case "UBIGINT", "UINT64":
		return delta.Primitive("decimal(20,0)"), nil
	case "UHUGEINT", "UINT128":
		return delta.Primitive("decimal(38,0)"), nil
	case "INTEGER", "INT", "INT4", "INT32", "USMALLINT", "UINT16":
		return delta.Primitive(delta.TypeInteger), nil
	case "SMALLINT", "INT2", "INT16", "UTINYINT", "UINT8":
		return delta.Primitive(delta.TypeShort), nil
	case "TINYINT", "INT1":
		return delta.Primitive(delta.TypeByte), nil
	case "DOUBLE", "FLOAT8":
		return delta.Primitive(delta.TypeDouble), nil
	case "FLOAT", "FLOAT4", "REAL":
		return delta.Primitive(delta.TypeFloat), nil
	case "BOOLEAN", "BOOL", "LOGICAL":
		return delta.Primitive(delta.TypeBoolean), nil
	case "BLOB", "BYTEA", "VARBINARY", "BINARY":
		return delta.Primitive(delta.TypeBinary), nil
	case "DATE":
		return delta.Primitive(delta.TypeDate), nil
	case "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ",
		"TIMESTAMP", "DATETIME", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP_US":
		// Naive timestamps are read as UTC and stored as Delta timestamp:
		// timestamp_ntz needs table features (writer version 7) that the
		// tables we write (reader 1, writer 2) do not declare.
		return delta.Primitive(delta.TypeTimestamp), nil
	}
	return delta.DataType{}, fmt.Errorf("no delta type for %s", name)
}

func (p *typeParser) expect(c byte) error {
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != c {
		return fmt.Errorf("want %q at offset %d", c, p.i)
	}
	p.i++
	return nil
}

func (p *typeParser) skipParens() error {
	depth := 0
	inQuote := byte(0)
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		switch {
		case inQuote != 0:
			if c == inQuote {
				inQuote = 0
			}
		case c == '\'' || c == '"':
			inQuote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				p.i++
				return nil
			}
		}
	}
	return fmt.Errorf("unclosed '('")
}

func (p *typeParser) parseDecimal() (delta.DataType, error) {
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != '(' {
		return delta.Primitive("decimal(18,3)"), nil // DuckDB's default
	}
	end := strings.IndexByte(p.s[p.i:], ')')
	if end < 0 {
		return delta.DataType{}, fmt.Errorf("unclosed DECIMAL(")
	}
	args := strings.Split(p.s[p.i+1:p.i+end], ",")
	p.i += end + 1
	prec, err := strconv.Atoi(strings.TrimSpace(args[0]))
	if err != nil {
		return delta.DataType{}, fmt.Errorf("decimal precision: %w", err)
	}
	scale := 0
	if len(args) > 1 {
		if scale, err = strconv.Atoi(strings.TrimSpace(args[1])); err != nil {
			return delta.DataType{}, fmt.Errorf("decimal scale: %w", err)
		}
	}
	return delta.Primitive(fmt.Sprintf("decimal(%d,%d)", prec, scale)), nil
}

func (p *typeParser) parseMap() (delta.DataType, error) {
	if err := p.expect('('); err != nil {
		return delta.DataType{}, err
	}
	k, err := p.parse()
	if err != nil {
		return k, err
	}
	if err := p.expect(','); err != nil {
		return k, err
	}
	v, err := p.parse()
	if err != nil {
		return v, err
	}
	if err := p.expect(')'); err != nil {
		return v, err
	}
	return delta.DataType{Name: "map", KeyType: &k, ValueType: &v, ValueContainsNull: true}, nil
}

func (p *typeParser) parseStruct() (delta.DataType, error) {
	if err := p.expect('('); err != nil {
		return delta.DataType{}, err
	}
	t := delta.DataType{Name: "struct"}
	for {
		p.skipSpace()
		name, err := p.parseName()
		if err != nil {
			return t, err
		}
		ft, err := p.parse()
		if err != nil {
			return t, fmt.Errorf("struct field %s: %w", name, err)
		}
		t.Fields = append(t.Fields, delta.Field{Name: name, Type: ft, Nullable: true})
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		return t, p.expect(')')
	}
}

// parseName reads a struct field name: "quoted ""name""" or a bare word.
func (p *typeParser) parseName() (string, error) {
	if p.i < len(p.s) && p.s[p.i] == '"' {
		var b strings.Builder
		for p.i++; p.i < len(p.s); p.i++ {
			if p.s[p.i] == '"' {
				if p.i+1 < len(p.s) && p.s[p.i+1] == '"' {
					b.WriteByte('"')
					p.i++
					continue
				}
				p.i++
				return b.String(), nil
			}
			b.WriteByte(p.s[p.i])
		}
		return "", fmt.Errorf("unclosed quoted name")
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ' ' {
		p.i++
	}
	if start == p.i {
		return "", fmt.Errorf("struct field without a name at offset %d", start)
	}
	return p.s[start:p.i], nil
}
