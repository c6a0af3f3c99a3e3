package config

import (
	"fmt"
	"strings"
)

// expandError is a malformed ${...} reference at byte offset Off of the text.
type expandError struct {
	Off int
	Msg string
}

func (e *expandError) Error() string { return e.Msg }

// Expand replaces ${VAR} and ${VAR:-default} in s with values from env, and
// $$ with a single $. ${VAR} of an unset variable is empty; ${VAR:-default}
// gives default when VAR is unset or empty, and default may itself hold
// references. A $ followed by anything else is kept as it is, so regular
// expressions ending in $ need no escaping. A nil env has no variables.
//
// The error for a malformed reference (an unterminated "${", a bad variable
// name) says what is wrong; Parse adds the line and column.
func Expand(s string, env func(string) (string, bool)) (string, error) {
	out, _, err := expand(s, env)
	return out, err
}

// varUse is a variable whose value went into an expanded text.
type varUse struct {
	name, value string
}

// expand is Expand that also lists the variables whose values it used, so
// errors about the result can name them instead of showing their values.
func expand(s string, env func(string) (string, bool)) (string, []varUse, error) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	x := expander{s: s, env: env}
	out, _, err := x.run(0, false)
	if err != nil {
		return "", nil, err
	}
	return out, x.used, nil
}

type expander struct {
	s     string
	env   func(string) (string, bool)
	depth int
	used  []varUse
}

// use remembers that the value of variable name went into the result.
func (x *expander) use(name, value string) string {
	if value != "" {
		x.used = append(x.used, varUse{name, value})
	}
	return value
}

// maxExpandDepth bounds nesting of defaults: ${A:-${B:-${C}}}.
const maxExpandDepth = 16

// run expands s from i to its end or, when nested, to the '}' closing the
// enclosing reference, and returns the text and the index where it stopped.
func (x *expander) run(i int, nested bool) (string, int, error) {
	var b strings.Builder
	s := x.s
	for i < len(s) {
		c := s[i]
		if nested && c == '}' {
			return b.String(), i, nil
		}
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			v, j, err := x.ref(i)
			if err != nil {
				return "", 0, err
			}
			b.WriteString(v)
			i = j
		default:
			b.WriteByte('$')
			i++
		}
	}
	if nested {
		return "", 0, errUnterminated(-1)
	}
	return b.String(), i, nil
}

// ref expands the reference starting with "${" at start and returns its
// value and the index after its closing brace.
func (x *expander) ref(start int) (string, int, error) {
	s := x.s
	i := start + 2
	j := i
	for j < len(s) && (s[j] == '_' || isAlpha(s[j]) || (j > i && isDigit(s[j]))) {
		j++
	}
	name := s[i:j]
	if j >= len(s) {
		return "", 0, errUnterminated(start)
	}
	bad := func() error {
		end := strings.IndexByte(s[start:], '}')
		if end < 0 || end > 40 {
			end = min(len(s)-start, 40) - 1
		}
		return &expandError{Off: start, Msg: fmt.Sprintf("bad variable reference %q: want ${NAME} or ${NAME:-default}", s[start:start+end+1])}
	}
	if name == "" {
		if strings.IndexByte(s[start:], '}') < 0 {
			return "", 0, errUnterminated(start)
		}
		return "", 0, bad()
	}
	switch {
	case s[j] == '}':
		v, _ := x.env(name)
		return x.use(name, v), j + 1, nil
	case strings.HasPrefix(s[j:], ":-"):
		if x.depth >= maxExpandDepth {
			return "", 0, &expandError{Off: start, Msg: "variable defaults nested too deeply"}
		}
		x.depth++
		def, k, err := x.run(j+2, true)
		x.depth--
		if err != nil {
			if e, ok := err.(*expandError); ok && e.Off < 0 {
				e.Off = start
			}
			return "", 0, err
		}
		if v, ok := x.env(name); ok && v != "" {
			return x.use(name, v), k + 1, nil
		}
		return def, k + 1, nil
	default:
		if strings.IndexByte(s[start:], '}') < 0 {
			return "", 0, errUnterminated(start)
		}
		return "", 0, bad()
	}
}

func errUnterminated(off int) error {
	return &expandError{Off: off, Msg: `unterminated "${": close it with "}", or write "$$" for a literal "$"`}
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
