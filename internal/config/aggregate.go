package config

import (
	"fmt"
	"strings"
)

// aggregateFuncs are the silver aggregate functions, with what they take.
var aggregateFuncs = []string{"count", "sum", "min", "max", "avg", "count_if", "approx_count_distinct"}

// ParseAggregate parses one silver aggregate expression: count(*), count(x),
// sum(x), min(x), max(x), avg(x), count_if(cond) or approx_count_distinct(x),
// where x is a column name and cond a DuckDB boolean expression. It returns
// the function name in lower case and the argument ("*" for count(*)).
func ParseAggregate(expr string) (fn, arg string, err error) {
	s := strings.TrimSpace(expr)
	if s == "" {
		return "", "", fmt.Errorf("empty aggregate: want e.g. count(*) or avg(x)")
	}
	open := strings.IndexByte(s, '(')
	if open < 0 || !strings.HasSuffix(s, ")") {
		return "", "", fmt.Errorf("%q is not an aggregate: want one of %s, e.g. avg(x)", expr, aggregateList())
	}
	name := strings.ToLower(strings.TrimSpace(s[:open]))
	arg = strings.TrimSpace(s[open+1 : len(s)-1])
	if !isIdent(name) {
		return "", "", fmt.Errorf("%q is not an aggregate: want one of %s, e.g. avg(x)", expr, aggregateList())
	}
	known := false
	for _, f := range aggregateFuncs {
		known = known || f == name
	}
	if !known {
		return "", "", fmt.Errorf("unknown aggregate function %q: want one of %s%s", name, aggregateList(), didYouMean(name, aggregateFuncs))
	}
	if err := balanced(arg); err != nil {
		return "", "", fmt.Errorf("%q: want one call like %s(x): %v", expr, name, err)
	}
	switch {
	case arg == "":
		return "", "", fmt.Errorf("%s() needs an argument", name)
	case arg == "*" && name != "count":
		return "", "", fmt.Errorf("%s(*) is not allowed: only count(*) takes *", name)
	case arg == "*":
	case name == "count_if":
		// Any boolean expression; DuckDB checks it when the table is built.
	case !isIdent(arg):
		return "", "", fmt.Errorf("%s(%s): the argument must be a column name", name, strings.Join(strings.Fields(arg), " "))
	}
	return name, arg, nil
}

func aggregateList() string {
	return "count(*), count(x), sum(x), min(x), max(x), avg(x), count_if(cond) or approx_count_distinct(x)"
}

// balanced reports whether parentheses in s pair up outside string
// literals and quoted identifiers, and no literal is left open.
func balanced(s string) error {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return fmt.Errorf("unterminated %c", c)
			}
			i += j + 1
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return fmt.Errorf("unbalanced parentheses")
			}
		}
	}
	if depth != 0 {
		return fmt.Errorf("unbalanced parentheses")
	}
	return nil
}

// isIdent reports whether s is a table or column name: [A-Za-z_][A-Za-z0-9_]*.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || isAlpha(c) || (i > 0 && isDigit(c)) {
			continue
		}
		return false
	}
	return true
}
