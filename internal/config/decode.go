package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/medallion-dev/medallion/internal/duration"
	"github.com/medallion-dev/medallion/internal/redact"
	"go.yaml.in/yaml/v3"
)

// loader turns the YAML node tree into a Pipeline (decode.go) and checks it
// (validate.go). Every value it reads is recorded in nodes under its key path,
// so validation can name the line of the value it refuses.
type loader struct {
	file  string
	src   []byte
	lines []int // byte offset of the start of each line
	env   func(string) (string, bool)
	errs  []*Error
	nodes map[string]*yaml.Node // key path -> value node (or the key node for map entries)

	// vars holds each value that ${VAR} expansion changed, by key path, and
	// secrets the values of every variable used: errors name the variable
	// and never show its value.
	vars    map[string]expanded
	secrets []varUse

	// visits bounds the work alias expansion can cause ("billion laughs").
	visits int
}

const maxVisits = 200_000

// expanded is a value with ${VAR} references: as written and as expanded.
type expanded struct {
	raw, val string
}

// errorf records a problem at node n (or, with n nil, at the recorded node of path).
func (l *loader) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: l.file, Path: path, Msg: l.message(path, format, args...)}
	if n == nil {
		n = l.at(path)
	}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	l.errs = append(l.errs, e)
}

// errorAt records a problem at an explicit place.
func (l *loader) errorAt(line, col int, path, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Column: col, Path: path, Msg: l.message(path, format, args...)})
}

// message formats an error message about the value at path on one line,
// with the values of variables replaced by their ${NAME} and passwords in
// URLs and connection strings masked.
func (l *loader) message(path, format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	if len(l.vars) > 0 {
		msg = l.hideVars(path, format, msg)
	}
	return oneLine(redact.String(msg))
}

// minSecret is the length from which a variable's value is hidden wherever
// it appears in a message, not only in messages about its own key: short
// values ("true", "csv") would hide the words of the message itself.
const minSecret = 8

// hideVars replaces in msg the values that came from variables by the text
// written in the file (format is msg's format, whose own words stay):
//   - the value of path, whole (validation prints it quoted, bare, trimmed
//     or lower-cased) and the words of it that the message quotes in part
//     (a column named in an expression, a regular expression's fragment);
//   - quoted, the value of every other key that came from a variable;
//   - the value of every variable used, when long enough to be a secret.
func (l *loader) hideVars(path, format, msg string) string {
	hide := func(val, by string, bare bool) {
		for _, v := range []string{val, strings.TrimSpace(val)} {
			if v != "" {
				msg = replaceFold(msg, strconv.Quote(v), by)
				if bare {
					msg = replaceFold(msg, v, by)
				}
			}
		}
	}
	if v, ok := l.varAt(path); ok {
		hide(v.val, v.raw, len(strings.TrimSpace(v.val)) >= 4)
		for _, w := range strings.FieldsFunc(v.val, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' }) {
			if len(w) >= 6 && !strings.Contains(strings.ToLower(format), strings.ToLower(w)) {
				msg = replaceFold(msg, w, v.raw)
			}
		}
		if !strings.Contains(msg, v.raw) {
			// Say where the value came from even when the message does not show it.
			msg = v.raw + ": " + msg
		}
	}
	for _, v := range l.vars {
		hide(v.val, v.raw, false)
	}
	for _, s := range l.secrets {
		hide(s.value, "${"+s.name+"}", len(s.value) >= minSecret)
	}
	return msg
}

// varAt returns the expanded value of path or of the key it belongs to
// (an aggregate's .expr, a schedule's .cron), if it came from a variable.
func (l *loader) varAt(path string) (expanded, bool) {
	for path != "" {
		if v, ok := l.vars[path]; ok {
			return v, true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return expanded{}, false
}

// replaceFold replaces every instance of old in s, in any case, by new.
func replaceFold(s, old, new string) string {
	if old == "" || !strings.Contains(strings.ToLower(s), strings.ToLower(old)) {
		return s
	}
	return regexp.MustCompile("(?i)"+regexp.QuoteMeta(old)).ReplaceAllLiteralString(s, new)
}

// oneLine escapes line breaks and other control characters that user text
// may bring into a message, so every error stays on one line.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 && r != '\t' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// at returns the node recorded for path, or for its nearest recorded parent.
func (l *loader) at(path string) *yaml.Node {
	for path != "" {
		if n, ok := l.nodes[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return nil
}

// has reports whether the file gave a value for path.
func (l *loader) has(path string) bool {
	_, ok := l.nodes[path]
	return ok
}

// deref follows aliases and counts visits.
func (l *loader) deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	l.visits++
	return n
}

func (l *loader) overBudget(n *yaml.Node, path string) bool {
	if l.visits <= maxVisits {
		return false
	}
	if l.visits == maxVisits+1 {
		l.visits++
		l.errorf(n, path, "the file expands to too many values (aliases nested too deeply?)")
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe says what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node, val string) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if len(val) > 60 {
		val = val[:57] + "..."
	}
	return strconv.Quote(val)
}

// scalar returns the text of a scalar node with ${VAR} references expanded,
// and the node's tag after expansion. ok is false (and an error recorded)
// when n is not a scalar or its references are malformed.
func (l *loader) scalar(n *yaml.Node, path, want string) (val, tag string, ok bool) {
	n = l.deref(n)
	if l.overBudget(n, path) {
		return "", "", false
	}
	if n.Kind != yaml.ScalarNode {
		l.errorf(n, path, "expected %s, got %s", want, describe(n, ""))
		return "", "", false
	}
	tag = n.ShortTag()
	val = n.Value
	if strings.Contains(val, "$") {
		x, used, err := expand(val, l.env)
		if err != nil {
			var ee *expandError
			line, col := n.Line, n.Column
			if errors.As(err, &ee) {
				line, col = l.locate(n, val, ee.Off, "${")
			}
			l.errorAt(line, col, path, "%s", err.Error())
			return "", "", false
		}
		l.secrets = append(l.secrets, used...)
		if x != val {
			if l.vars == nil {
				l.vars = map[string]expanded{}
			}
			l.vars[path] = expanded{raw: val, val: x}
			// The expanded text is typed as if written plainly, quoted or
			// not: secure: ${S3_SECURE:-false} and, in a flow mapping where
			// braces need quotes, {secure: "${S3_SECURE:-false}"} are both
			// bools. Fields that want text take any scalar, so a secret
			// that reads "true" stays text. An explicit !!tag is kept.
			val = x
			if n.Style&yaml.TaggedStyle == 0 {
				tag = (&yaml.Node{Kind: yaml.ScalarNode, Value: val}).ShortTag()
			}
		}
	}
	return val, tag, true
}

// locate finds the place in the file of the text at byte offset off of the
// scalar value val of node n, where the value's text at off starts with
// needle. It falls back to the node's own place.
func (l *loader) locate(n *yaml.Node, val string, off int, needle string) (line, col int) {
	line, col = n.Line, n.Column
	if off < 0 || off > len(val) || needle == "" || line < 1 || line > len(l.lines) {
		return line, col
	}
	k := strings.Count(val[:off], needle)
	start := l.lines[line-1]
	// Advance col-1 characters along the line.
	for c := 1; c < col && start < len(l.src) && l.src[start] != '\n'; c++ {
		_, w := utf8.DecodeRune(l.src[start:])
		start += w
	}
	rest := string(l.src[start:])
	pos := 0
	for i := 0; i <= k; i++ {
		j := strings.Index(rest[pos:], needle)
		if j < 0 {
			return n.Line, n.Column
		}
		if i < k {
			pos += j + len(needle)
		} else {
			pos += j
		}
	}
	abs := start + pos
	// Convert the byte offset to line and column.
	li, _ := slices.BinarySearch(l.lines, abs+1)
	line = li
	col = utf8.RuneCount(l.src[l.lines[li-1]:abs]) + 1
	return line, col
}

func lineStarts(src []byte) []int {
	starts := []int{0}
	for i, c := range src {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// record remembers the node of path for later error messages.
func (l *loader) record(path string, n *yaml.Node) {
	if _, ok := l.nodes[path]; !ok {
		l.nodes[path] = n
	}
}

// str reads any scalar as text; null is "".
func (l *loader) str(n *yaml.Node, path string) string {
	val, tag, ok := l.scalar(n, path, "a string")
	if !ok || tag == "!!null" {
		return ""
	}
	return val
}

// boolean reads true or false.
func (l *loader) boolean(n *yaml.Node, path string) bool {
	val, tag, ok := l.scalar(n, path, "true or false")
	if !ok {
		return false
	}
	if tag != "!!bool" {
		l.refuse(n, path, "true or false", val, quotedHint(val, "!!bool"))
		return false
	}
	b, _ := strconv.ParseBool(strings.ToLower(val))
	return b
}

// refuse records that the value val of path is not want. A value that came
// from ${VAR} is named as written in the file, never shown:
//
//	medallion.yaml:12:11: s3.secure: ${S3_SECURE} is not true or false
func (l *loader) refuse(n *yaml.Node, path, want, val, hint string) {
	if v, ok := l.vars[path]; ok {
		l.errorf(l.deref(n), path, "%s is not %s", v.raw, want)
		return
	}
	l.errorf(l.deref(n), path, "expected %s, got %q%s", want, val, hint)
}

// quotedHint explains a typed value refused because it was quoted: "true"
// is text, true a bool.
func quotedHint(val string, tags ...string) string {
	t := (&yaml.Node{Kind: yaml.ScalarNode, Value: val}).ShortTag()
	if slices.Contains(tags, t) {
		return " in quotes, which makes it text: remove the quotes"
	}
	return ""
}

// number reads an int or float.
func (l *loader) number(n *yaml.Node, path string) *float64 {
	val, tag, ok := l.scalar(n, path, "a number")
	if !ok {
		return nil
	}
	var f float64
	if tag == "!!int" || tag == "!!float" {
		if err := (&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: val}).Decode(&f); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return &f
		}
	}
	l.refuse(n, path, "a number", val, quotedHint(val, "!!int", "!!float"))
	return nil
}

// integer reads a whole number.
func (l *loader) integer(n *yaml.Node, path string) int {
	val, tag, ok := l.scalar(n, path, "a whole number")
	if !ok {
		return 0
	}
	var i int
	if tag == "!!int" {
		if err := (&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: val}).Decode(&i); err == nil {
			return i
		}
	}
	l.refuse(n, path, "a whole number", val, quotedHint(val, "!!int"))
	return 0
}

// duration reads a Go duration (30s, 1m, 1h30m) or whole days (1d, 7d).
func (l *loader) duration(n *yaml.Node, path string) time.Duration {
	val, _, ok := l.scalar(n, path, "a duration")
	if !ok {
		return 0
	}
	d, err := ParseDuration(val)
	if err != nil {
		if _, ok := l.vars[path]; ok {
			l.refuse(n, path, "a duration like 30s, 1m, 1h or 1d", val, "")
			return 0
		}
		l.errorf(l.deref(n), path, "%s", err.Error())
		return 0
	}
	return d
}

// ParseDuration parses a duration of the pipeline file (see duration.Parse).
func ParseDuration(s string) (time.Duration, error) { return duration.Parse(s) }

// strs reads a list of scalars; a single scalar is a list of one.
func (l *loader) strs(n *yaml.Node, path string) []string {
	d := l.deref(n)
	if isNull(d) {
		return nil
	}
	if d.Kind == yaml.ScalarNode {
		v := l.str(n, path)
		if v == "" {
			return nil
		}
		return []string{v}
	}
	if d.Kind != yaml.SequenceNode {
		l.errorf(d, path, "expected a list, got %s", describe(d, ""))
		return nil
	}
	out := make([]string, 0, len(d.Content))
	for i, item := range d.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		l.record(p, l.deref(item))
		out = append(out, l.str(item, p))
	}
	return out
}

// entry is one key: value of a mapping.
type entry struct {
	key       string
	keyNode   *yaml.Node
	valueNode *yaml.Node
}

// entries lists the pairs of a mapping in file order, with merge keys
// (<<: *anchor) resolved; keys given explicitly win over merged ones.
// Duplicate keys and non-scalar keys are errors.
func (l *loader) entries(n *yaml.Node, path string) []entry {
	d := l.deref(n)
	if isNull(d) || l.overBudget(d, path) {
		return nil
	}
	if d.Kind != yaml.MappingNode {
		l.errorf(d, path, "expected a mapping, got %s", describe(d, d.Value))
		return nil
	}
	explicit := map[string]bool{}
	for i := 0; i+1 < len(d.Content); i += 2 {
		if k := d.Content[i]; k.Kind == yaml.ScalarNode && !isMerge(k) {
			explicit[k.Value] = true
		}
	}
	var out []entry
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(d.Content); i += 2 {
		k, v := d.Content[i], d.Content[i+1]
		if isMerge(k) {
			for _, e := range l.merged(v, path) {
				if explicit[e.key] || seen[e.key] != nil {
					continue
				}
				seen[e.key] = e.keyNode
				out = append(out, e)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			l.errorf(k, path, "keys must be plain names, got %s", describe(k, ""))
			continue
		}
		if first := seen[k.Value]; first != nil {
			l.errorf(k, path, "duplicate key %q (first given at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, entry{k.Value, k, v})
	}
	return out
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

// merged returns the entries a merge key brings in: one mapping or a list
// of them, earlier ones winning.
func (l *loader) merged(v *yaml.Node, path string) []entry {
	d := l.deref(v)
	switch d.Kind {
	case yaml.MappingNode:
		return l.entries(d, path)
	case yaml.SequenceNode:
		var out []entry
		seen := map[string]bool{}
		for _, item := range d.Content {
			if it := l.deref(item); it.Kind != yaml.MappingNode {
				l.errorf(it, path, "<< merges mappings, got %s", describe(it, it.Value))
				continue
			}
			for _, e := range l.entries(item, path) {
				if !seen[e.key] {
					seen[e.key] = true
					out = append(out, e)
				}
			}
		}
		return out
	}
	l.errorf(d, path, "<< merges mappings, got %s", describe(d, d.Value))
	return nil
}

// field is one fixed key of an object and how to read its value.
type field struct {
	name string
	read func(n *yaml.Node, path string)
}

// object reads a mapping with fixed keys; unknown keys are errors that
// suggest the nearest known key. A null value is an empty object.
func (l *loader) object(n *yaml.Node, path string, fields ...field) {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	for _, e := range l.entries(n, path) {
		i := slices.Index(names, e.key)
		if i < 0 {
			where := ""
			if path != "" {
				where = " in " + path
			}
			hint := didYouMean(e.key, names)
			if strings.HasSuffix(e.key, ")") && !strings.Contains(e.key, "(") {
				// {type: decimal(18,2)}: the comma ended the value.
				hint = " (a comma inside {...} starts a new key: quote the value, e.g. type: \"decimal(18,2)\")"
			}
			if hint == "" {
				hint = " (expected " + oneOf(names) + ")"
			}
			l.errorf(e.keyNode, "", "unknown key %q%s%s", e.key, where, hint)
			continue
		}
		p := join(path, e.key)
		l.record(p, l.deref(e.valueNode))
		fields[i].read(e.valueNode, p)
	}
}

// join appends a key to a key path. Keys that would make the path
// ambiguous or span lines (dots, spaces, control characters) are quoted.
func join(path, key string) string {
	if key == "" || strings.ContainsFunc(key, func(r rune) bool {
		return r == '.' || r == '[' || r == '"' || !unicode.IsPrint(r) || unicode.IsSpace(r)
	}) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodePipeline reads the document root into p.
func (l *loader) decodePipeline(root *yaml.Node, p *Pipeline) {
	l.object(root, "",
		field{"lake", func(n *yaml.Node, path string) { p.Lake = l.str(n, path) }},
		field{"s3", func(n *yaml.Node, path string) { l.decodeS3(n, path, &p.S3) }},
		field{"postgres", func(n *yaml.Node, path string) { p.Postgres = l.str(n, path) }},
		field{"cache", func(n *yaml.Node, path string) { p.Cache = l.str(n, path) }},
		field{"duckdb", func(n *yaml.Node, path string) { l.decodeDuckDB(n, path, &p.DuckDB) }},
		field{"sources", func(n *yaml.Node, path string) {
			for _, e := range l.entries(n, path) {
				p2 := join(path, e.key)
				l.record(p2, e.keyNode)
				s := defaultSource(e.key)
				s.Line = e.keyNode.Line
				l.decodeSource(e.valueNode, p2, s)
				p.Sources[e.key] = s
				p.SourceOrder = append(p.SourceOrder, e.key)
			}
		}},
		field{"silver", func(n *yaml.Node, path string) {
			for _, e := range l.entries(n, path) {
				p2 := join(path, e.key)
				l.record(p2, e.keyNode)
				s := defaultSilver(e.key)
				s.Line = e.keyNode.Line
				l.decodeSilver(e.valueNode, p2, s)
				p.Silver[e.key] = s
				p.SilverOrder = append(p.SilverOrder, e.key)
			}
		}},
		field{"gold", func(n *yaml.Node, path string) {
			for _, e := range l.entries(n, path) {
				p2 := join(path, e.key)
				l.record(p2, e.keyNode)
				g := defaultGold(e.key)
				g.Line = e.keyNode.Line
				l.decodeGold(e.valueNode, p2, g)
				p.Gold[e.key] = g
				p.GoldOrder = append(p.GoldOrder, e.key)
			}
		}},
		field{"mirror", func(n *yaml.Node, path string) { p.Mirror = l.decodeMirrors(n, path) }},
		field{"schedule", func(n *yaml.Node, path string) {
			for _, e := range l.entries(n, path) {
				p2 := join(path, e.key)
				l.record(p2, e.keyNode)
				s := &Schedule{Line: e.keyNode.Line}
				l.decodeSchedule(e.valueNode, p2, s)
				p.Schedule[e.key] = s
				p.ScheduleOrder = append(p.ScheduleOrder, e.key)
			}
		}},
		field{"serve", func(n *yaml.Node, path string) { l.decodeServe(n, path, &p.Serve) }},
		field{"bronze", func(n *yaml.Node, path string) { l.decodeBronze(n, path, &p.Bronze) }},
		field{"maintenance", func(n *yaml.Node, path string) { l.decodeMaintenance(n, path, &p.Maintenance) }},
		field{"stream", func(n *yaml.Node, path string) {
			l.object(n, path,
				field{"trigger", func(n *yaml.Node, path string) { p.Stream.Trigger = l.duration(n, path) }},
			)
		}},
	)
}

func (l *loader) decodeS3(n *yaml.Node, path string, s *S3) {
	l.object(n, path,
		field{"endpoint", func(n *yaml.Node, path string) { s.Endpoint = l.str(n, path) }},
		field{"access_key", func(n *yaml.Node, path string) { s.AccessKey = l.str(n, path) }},
		field{"secret_key", func(n *yaml.Node, path string) { s.SecretKey = l.str(n, path) }},
		field{"region", func(n *yaml.Node, path string) { s.Region = l.str(n, path) }},
		field{"secure", func(n *yaml.Node, path string) { s.Secure = l.boolean(n, path) }},
	)
}

func (l *loader) decodeDuckDB(n *yaml.Node, path string, d *DuckDB) {
	l.object(n, path,
		field{"memory_limit", func(n *yaml.Node, path string) {
			if v := l.str(n, path); v != "" {
				d.MemoryLimit = v
			}
		}},
		field{"threads", func(n *yaml.Node, path string) { d.Threads = l.integer(n, path) }},
		field{"temp_dir", func(n *yaml.Node, path string) { d.TempDir = l.str(n, path) }},
	)
}

// decodeSource decodes one entry of sources: into s, recording each key's
// position for error messages. It is over 80 lines on purpose: one
// declarative table of the source's keys in documented order, where a
// reader checks a key's spelling and target next to its siblings.
func (l *loader) decodeSource(n *yaml.Node, path string, s *Source) {
	l.object(n, path,
		field{"format", func(n *yaml.Node, path string) { s.Format = l.str(n, path) }},
		// csv: the dialect of a CSV source (delimiter, quote, header) and, for a broker source, the columns of its lines.
		field{"csv", func(n *yaml.Node, path string) {
			l.object(n, path,
				field{"delimiter", func(n *yaml.Node, path string) {
					if v := l.str(n, path); v != "" {
						s.CSV.Delimiter = v
					}
				}},
				field{"quote", func(n *yaml.Node, path string) {
					if v := l.str(n, path); v != "" {
						s.CSV.Quote = v
					}
				}},
				field{"header", func(n *yaml.Node, path string) { s.CSV.Header = l.boolean(n, path) }},
				field{"columns", func(n *yaml.Node, path string) { s.CSVColumns = l.strs(n, path) }},
			)
		}},
		// schema: the typed bronze columns by name, in the order of the table.
		field{"schema", func(n *yaml.Node, path string) {
			for _, e := range l.entries(n, path) {
				p := join(path, e.key)
				l.record(p, e.keyNode)
				c := &Column{Name: e.key, Line: e.keyNode.Line, Col: e.keyNode.Column}
				l.decodeColumn(e.valueNode, p, c)
				s.Schema = append(s.Schema, c)
			}
		}},
		field{"dedupe", func(n *yaml.Node, path string) { s.Dedupe = l.strs(n, path) }},
		// derive: computed columns, name: a DuckDB SQL expression over the typed columns.
		field{"derive", func(n *yaml.Node, path string) {
			for _, e := range l.entries(n, path) {
				p := join(path, e.key)
				l.record(p, e.keyNode)
				v := l.deref(e.valueNode)
				l.record(p+".expr", v)
				s.Derive = append(s.Derive, &Derived{Name: e.key, Expr: strings.TrimSpace(l.str(v, p)), Line: e.keyNode.Line, Col: e.keyNode.Column})
			}
		}},
		field{"on_error", func(n *yaml.Node, path string) { s.OnError = l.str(n, path) }},
		field{"partition_by", func(n *yaml.Node, path string) { s.PartitionBy = l.str(n, path) }},
		field{"listen", func(n *yaml.Node, path string) { s.Listen = l.str(n, path) }},
		// from: an input `serve` consumes besides HTTP and ingest: one of files, kafka, nats or mqtt.
		field{"from", func(n *yaml.Node, path string) {
			fromLine := l.deref(n).Line
			// The broker is made only when a broker key is given, so that
			// from: {files: ...} alone declares no broker.
			b := &Broker{Line: fromLine}
			if s.Broker != nil {
				b = s.Broker
			}
			useBroker := func() {
				if s.Broker == nil {
					s.Broker = b
				}
			}
			l.object(n, path,
				field{"files", func(n *yaml.Node, path string) { l.decodeFiles(n, path, s) }},
				// kafka: a Kafka topic read as a consumer group member; offsets are committed once the batch is landed.
				field{"kafka", func(n *yaml.Node, path string) {
					useBroker()
					b.Kind = addKind(b.Kind, "kafka")
					l.object(n, path,
						field{"brokers", func(n *yaml.Node, path string) { b.Brokers = l.strs(n, path) }},
						field{"topic", func(n *yaml.Node, path string) { b.Topic = l.str(n, path) }},
						field{"group", func(n *yaml.Node, path string) { b.Group = l.str(n, path) }},
					)
				}},
				// nats: a NATS JetStream durable consumer; messages are acknowledged once the batch is landed.
				field{"nats", func(n *yaml.Node, path string) {
					useBroker()
					b.Kind = addKind(b.Kind, "nats")
					l.object(n, path,
						field{"url", func(n *yaml.Node, path string) { b.URL = l.str(n, path) }},
						field{"stream", func(n *yaml.Node, path string) { b.Stream = l.str(n, path) }},
						field{"subject", func(n *yaml.Node, path string) { b.Subject = l.str(n, path) }},
						field{"durable", func(n *yaml.Node, path string) { b.Durable = l.str(n, path) }},
						field{"ack_wait", func(n *yaml.Node, path string) { b.AckWait = l.duration(n, path) }},
						field{"create", func(n *yaml.Node, path string) { b.Create = l.boolean(n, path) }},
					)
				}},
				// mqtt: an MQTT topic at QoS 1 with a persistent session; messages are acknowledged once the batch is landed.
				field{"mqtt", func(n *yaml.Node, path string) {
					useBroker()
					b.Kind = addKind(b.Kind, "mqtt")
					l.object(n, path,
						field{"url", func(n *yaml.Node, path string) { b.URL = l.str(n, path) }},
						field{"topic", func(n *yaml.Node, path string) { b.Topic = l.str(n, path) }},
						field{"qos", func(n *yaml.Node, path string) { b.QoS = l.integer(n, path) }},
						field{"client_id", func(n *yaml.Node, path string) { b.ClientID = l.str(n, path) }},
						field{"username", func(n *yaml.Node, path string) { b.Username = l.str(n, path) }},
						field{"password", func(n *yaml.Node, path string) { b.Password = l.str(n, path) }},
					)
				}},
			)
		}},
		// batch: how broker messages are grouped into one raw object; the first limit reached closes the batch. It sits beside from:, not inside from.kafka (or nats, mqtt).
		field{"batch", func(n *yaml.Node, path string) {
			if s.Broker == nil {
				s.Broker = &Broker{Line: l.deref(n).Line}
			}
			b := s.Broker
			l.object(n, path,
				field{"max_messages", func(n *yaml.Node, path string) { b.BatchMessages = l.integer(n, path) }},
				field{"max_bytes", func(n *yaml.Node, path string) { b.BatchBytes = l.integer(n, path) }},
				field{"max_wait", func(n *yaml.Node, path string) { b.BatchWait = l.duration(n, path) }},
			)
		}},
	)
}

// addKind records a broker kind; two kinds in one from: become "a+b", which
// validation refuses.
func addKind(have, kind string) string {
	if have == "" {
		return kind
	}
	return have + "+" + kind
}

func (l *loader) decodeColumn(n *yaml.Node, path string, c *Column) {
	if d := l.deref(n); d.Kind == yaml.ScalarNode && !isNull(d) {
		// Shorthand: "meter_id: string".
		l.record(path+".type", d)
		c.Type = l.str(d, path+".type")
		return
	}
	l.object(n, path,
		field{"type", func(n *yaml.Node, path string) { c.Type = l.str(n, path) }},
		field{"format", func(n *yaml.Node, path string) { c.Format = l.str(n, path) }},
		field{"tz", func(n *yaml.Node, path string) { c.TZ = l.str(n, path) }},
		// required: a row with no value (or an empty one, with empty_as_null) is refused.
		field{"required", func(n *yaml.Node, path string) { c.Required = l.boolean(n, path) }},
		// min: the smallest allowed value of a number column.
		field{"min", func(n *yaml.Node, path string) { c.Min = l.number(n, path) }},
		// max: the largest allowed value of a number column.
		field{"max", func(n *yaml.Node, path string) { c.Max = l.number(n, path) }},
		// regex: a Go regular expression (RE2) the text must match, e.g. ^MTR-[0-9]+$.
		field{"regex", func(n *yaml.Node, path string) { c.Regex = l.str(n, path) }},
		field{"accepted", func(n *yaml.Node, path string) { c.Accepted = l.strs(n, path) }},
		field{"from", func(n *yaml.Node, path string) { c.From = l.str(n, path) }},
		field{"trim", func(n *yaml.Node, path string) { b := l.boolean(n, path); c.Trim = &b }},
		field{"empty_as_null", func(n *yaml.Node, path string) { b := l.boolean(n, path); c.EmptyAsNull = &b }},
		field{"allow_nan", func(n *yaml.Node, path string) { c.AllowNaN = l.boolean(n, path) }},
		field{"unit", func(n *yaml.Node, path string) { c.Unit = l.str(n, path) }},
		field{"renamed_from", func(n *yaml.Node, path string) { c.RenamedFrom = strings.TrimSpace(l.str(n, path)) }},
		field{"cast_from", func(n *yaml.Node, path string) { c.CastFrom = l.str(n, path) }},
	)
}

func (l *loader) decodeSilver(n *yaml.Node, path string, s *Silver) {
	l.object(n, path,
		field{"from", func(n *yaml.Node, path string) { s.From = l.str(n, path) }},
		field{"event_time", func(n *yaml.Node, path string) { s.EventTime = l.str(n, path) }},
		// window: a duration for a tumbling window, or {size, slide} for a sliding (hopping) one.
		field{"window", func(n *yaml.Node, path string) {
			if d := l.deref(n); d.Kind == yaml.ScalarNode && !isNull(d) {
				// Shorthand: "window: 1m" is a tumbling window.
				l.record(path+".size", d)
				s.Size = l.duration(d, path+".size")
				return
			}
			l.object(n, path,
				field{"size", func(n *yaml.Node, path string) { s.Size = l.duration(n, path) }},
				field{"slide", func(n *yaml.Node, path string) { s.Slide = l.duration(n, path) }},
			)
		}},
		field{"watermark", func(n *yaml.Node, path string) { s.Watermark = l.duration(n, path) }},
		field{"output", func(n *yaml.Node, path string) { s.Output = l.str(n, path) }},
		// group_by: the bronze columns each window is grouped by, e.g. [meter_id].
		field{"group_by", func(n *yaml.Node, path string) { s.GroupBy = l.strs(n, path) }},
		// aggregates: the measures of each window, name: aggregate expression.
		field{"aggregates", func(n *yaml.Node, path string) {
			for _, e := range l.entries(n, path) {
				p := join(path, e.key)
				l.record(p, e.keyNode)
				v := l.deref(e.valueNode)
				l.record(p+".expr", v)
				s.Aggregates = append(s.Aggregates, &Aggregate{Name: e.key, Expr: strings.TrimSpace(l.str(v, p)), Line: e.keyNode.Line, Col: e.keyNode.Column})
			}
		}},
	)
}

func (l *loader) decodeGold(n *yaml.Node, path string, g *Gold) {
	decodeFlag := func(n *yaml.Node, path string) *Flag {
		f := &Flag{}
		l.object(n, path,
			field{"name", func(n *yaml.Node, path string) { f.Name = l.str(n, path) }},
			field{"when", func(n *yaml.Node, path string) { f.When = strings.TrimSpace(l.str(n, path)) }},
		)
		return f
	}
	var flag *Flag
	l.object(n, path,
		field{"from", func(n *yaml.Node, path string) { g.From = l.str(n, path) }},
		// partition_by: the columns the moving average is computed within, e.g. [meter_id].
		field{"partition_by", func(n *yaml.Node, path string) { g.PartitionBy = l.strs(n, path) }},
		field{"order_by", func(n *yaml.Node, path string) { g.OrderBy = l.str(n, path) }},
		field{"moving_average", func(n *yaml.Node, path string) {
			ma := defaultMovingAverage()
			l.object(n, path,
				field{"column", func(n *yaml.Node, path string) { ma.Column = l.str(n, path) }},
				field{"rows", func(n *yaml.Node, path string) { ma.Rows = l.integer(n, path) }},
				field{"range", func(n *yaml.Node, path string) { ma.Range = l.duration(n, path) }},
				// ema: an exponential moving average instead of rows or range: {alpha: 0.2}, or the alpha alone.
				field{"ema", func(n *yaml.Node, path string) {
					if d := l.deref(n); d.Kind == yaml.ScalarNode && !isNull(d) {
						// Shorthand: "ema: 0.2".
						l.record(path+".alpha", d)
						if f := l.number(d, path+".alpha"); f != nil {
							ma.EMAAlpha = *f
						}
						return
					}
					l.object(n, path,
						field{"alpha", func(n *yaml.Node, path string) {
							if f := l.number(n, path); f != nil {
								ma.EMAAlpha = *f
							}
						}},
					)
				}},
				field{"as", func(n *yaml.Node, path string) {
					if v := l.str(n, path); v != "" {
						ma.As = v
					}
				}},
			)
			g.MovingAverage = ma
		}},
		field{"flag", func(n *yaml.Node, path string) { flag = decodeFlag(n, path) }},
		// flags: a list of {name, when}; flag: takes one.
		field{"flags", func(n *yaml.Node, path string) {
			d := l.deref(n)
			if isNull(d) {
				return
			}
			if d.Kind != yaml.SequenceNode {
				l.errorf(d, path, "expected a list of {name, when}, got %s", describe(d, d.Value))
				return
			}
			for i, item := range d.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				l.record(p, l.deref(item))
				g.Flags = append(g.Flags, decodeFlag(item, p))
			}
		}},
		field{"sql", func(n *yaml.Node, path string) { g.SQL = strings.TrimSpace(l.str(n, path)) }},
	)
	if flag != nil {
		g.Flags = append([]*Flag{flag}, g.Flags...)
	}
}

func (l *loader) decodeMirrors(n *yaml.Node, path string) []*Mirror {
	d := l.deref(n)
	if isNull(d) {
		return nil
	}
	if d.Kind != yaml.SequenceNode {
		l.errorf(d, path, "expected a list of {table, to, key}, got %s", describe(d, d.Value))
		return nil
	}
	var out []*Mirror
	for i, item := range d.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		it := l.deref(item)
		l.record(p, it)
		m := &Mirror{Line: it.Line}
		l.object(item, p,
			field{"table", func(n *yaml.Node, path string) { m.Table = l.str(n, path) }},
			field{"to", func(n *yaml.Node, path string) { m.To = l.str(n, path) }},
			field{"key", func(n *yaml.Node, path string) { m.Key = l.strs(n, path) }},
			field{"columns", func(n *yaml.Node, path string) { m.Columns = l.strs(n, path) }},
			field{"exclude", func(n *yaml.Node, path string) { m.Exclude = l.strs(n, path) }},
			field{"names", func(n *yaml.Node, path string) { m.Names = l.str(n, path) }},
		)
		out = append(out, m)
	}
	return out
}

func (l *loader) decodeSchedule(n *yaml.Node, path string, s *Schedule) {
	if d := l.deref(n); d.Kind == yaml.ScalarNode {
		// "@every 1m" or "*/5 * * * *".
		l.record(path+".cron", d)
		s.Cron = strings.TrimSpace(l.str(d, path))
		return
	}
	l.object(n, path,
		field{"cron", func(n *yaml.Node, path string) { s.Cron = strings.TrimSpace(l.str(n, path)) }},
		field{"after", func(n *yaml.Node, path string) { s.After = strings.TrimSpace(l.str(n, path)) }},
	)
}
