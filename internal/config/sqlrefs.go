package config

import (
	"strings"
)

// sqlRef is one layer.name table reference found in SQL text.
type sqlRef struct {
	Layer string // bronze | silver | gold, lower case
	Name  string // as written (unquoted)
	Off   int    // byte offset of the reference in the SQL
	Raw   string // the reference as written: silver.meter_usage_1m, Silver."x"
}

// TableRefs returns the tables an SQL model reads: every bronze.x,
// silver.x and gold.x outside string literals, quoted identifiers and
// comments, as "layer.name", each once, in order of first appearance.
// The layer is matched case-insensitively and returned in lower case.
func TableRefs(sql string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range scanSQL(sql).refs {
		k := r.Layer + "." + r.Name
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// sqlScan is what scanSQL learns about an SQL text.
type sqlScan struct {
	refs       []sqlRef
	firstWord  string // the first keyword, lower case ("select", "with")
	statements int    // statements separated by ';' (a trailing ';' starts none)
	unclosed   string // a literal, identifier or comment left open, if any
}

// scanSQL tokenizes just enough SQL to find table references, the first
// keyword and statement boundaries. It is one state machine over the
// bytes, kept in one function on purpose: the states share the position
// and the literal/comment context, which helpers would pass back and forth.
func scanSQL(s string) sqlScan {
	var sc sqlScan
	pendingStmt := false // a ';' was seen; the next token starts a statement
	startToken := func() {
		if sc.statements == 0 || pendingStmt {
			sc.statements++
			pendingStmt = false
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return sc
			}
			i += j + 1
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				sc.unclosed = "/* comment"
				return sc
			}
			i += j + 4
		case c == '\'':
			startToken()
			j := closeQuote(s, i, '\'')
			if j < 0 {
				sc.unclosed = "' string"
				return sc
			}
			i = j
		case c == '"':
			startToken()
			j := closeQuote(s, i, '"')
			if j < 0 {
				sc.unclosed = `" identifier`
				return sc
			}
			// "silver"."x" names a table too.
			layer := s[i+1 : j-1]
			if (layer == "bronze" || layer == "silver" || layer == "gold") && j < len(s) && s[j] == '.' {
				if name, end := sqlIdent(s, j+1); name != "" {
					sc.refs = append(sc.refs, sqlRef{Layer: layer, Name: name, Off: i, Raw: s[i:end]})
					j = end
				}
			}
			i = j
		case c == '$' && dollarTag(s[i:]) != "":
			startToken()
			tag := dollarTag(s[i:])
			j := strings.Index(s[i+len(tag):], tag)
			if j < 0 {
				sc.unclosed = tag + " string"
				return sc
			}
			i += len(tag) + j + len(tag)
		case c == ';':
			pendingStmt = true
			i++
		case c == '_' || isAlpha(c) || c >= 0x80:
			startToken()
			j := i
			for j < len(s) && (s[j] == '_' || isAlpha(s[j]) || isDigit(s[j]) || s[j] >= 0x80 || s[j] == '$') {
				j++
			}
			word := s[i:j]
			if sc.firstWord == "" {
				sc.firstWord = strings.ToLower(word)
			}
			prevDot := i > 0 && s[i-1] == '.'
			layer := strings.ToLower(word)
			if !prevDot && (layer == "bronze" || layer == "silver" || layer == "gold") && j < len(s) && s[j] == '.' {
				if name, end := sqlIdent(s, j+1); name != "" {
					sc.refs = append(sc.refs, sqlRef{Layer: layer, Name: name, Off: i, Raw: s[i:end]})
					i = end
					continue
				}
			}
			i = j
		default:
			startToken()
			if sc.firstWord == "" && c == '(' {
				sc.firstWord = "("
			}
			i++
		}
	}
	return sc
}

// sqlIdent reads a bare or double-quoted identifier at i and returns its
// name and the index after it, or "" if there is none.
func sqlIdent(s string, i int) (string, int) {
	if i >= len(s) {
		return "", i
	}
	if s[i] == '"' {
		j := closeQuote(s, i, '"')
		if j < 0 {
			return "", i
		}
		return strings.ReplaceAll(s[i+1:j-1], `""`, `"`), j
	}
	j := i
	for j < len(s) && (s[j] == '_' || isAlpha(s[j]) || isDigit(s[j]) || s[j] >= 0x80) {
		j++
	}
	if j == i || isDigit(s[i]) {
		return "", i
	}
	return s[i:j], j
}

// closeQuote returns the index after the quote closing the literal opened
// at s[i] (a doubled quote is an escaped one), or -1.
func closeQuote(s string, i int, q byte) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] != q {
			continue
		}
		if j+1 < len(s) && s[j+1] == q {
			j++
			continue
		}
		return j + 1
	}
	return -1
}

// dollarTag returns the opening tag of a dollar-quoted string ($$ or
// $tag$) at the start of s, or "".
func dollarTag(s string) string {
	if len(s) < 2 || s[0] != '$' {
		return ""
	}
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1]
		}
		if !(c == '_' || isAlpha(c) || (j > 1 && isDigit(c))) {
			return ""
		}
	}
	return ""
}
