package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is a problem in the pipeline file, with the place to fix it.
//
// Error() reads "file:line:col: path: msg", e.g.
//
//	medallion.yaml:7:22: sources.meters.schema.energy_usage.min: expected a number, got "abc"
//
// Parts that are unknown are left out: no column gives "file:line: path: msg",
// and an empty Path gives "file:line:col: msg". Unknown-key errors leave Path
// empty because their message already says where the key is:
//
//	medallion.yaml:12:5: unknown key "windw" in silver.meter_usage_1m (did you mean "window"?)
type Error struct {
	File   string // the pipeline file as given to Load or Parse
	Line   int    // 1-based; 0 when not known
	Column int    // 1-based, in characters; 0 when not known
	Path   string // key path of the offending value: silver.meter_usage_1m.window.size, mirror[0].table
	Msg    string
}

// Error formats the error as one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// joinErrors orders errs by place in the file and joins them, one per line,
// so the first line of the result is the first problem in the file.
// errors.As(err, &target) on the result yields that first *Error.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	// The same problem reached through two paths (an alias, say) is said once.
	errs = slices.CompactFunc(errs, func(a, b *Error) bool { return *a == *b })
	if len(errs) == 1 {
		return errs[0]
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// didYouMean returns ` (did you mean "x"?)` when one of candidates is a
// likely misspelling of word, and "" otherwise.
func didYouMean(word string, candidates []string) string {
	if s := closest(word, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// closest returns the candidate nearest to word by edit distance, if it is
// near enough to be a typo, or "".
func closest(word string, candidates []string) string {
	best, bestD := "", 0
	lw := strings.ToLower(word)
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := editDistance(lw, lc)
		limit := 2
		if n := len([]rune(c)); n <= 4 {
			limit = 1
		}
		if d > limit && len(lw) >= 3 && (strings.HasPrefix(lc, lw) || strings.HasPrefix(lw, lc)) {
			// "meter" for "meter_id": a shortened name, after closer typos.
			d = limit
		}
		if d > limit || (best != "" && d >= bestD) {
			continue
		}
		best, bestD = c, d
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Long words are never typos of our short keys; avoid quadratic work.
		if a == b {
			return 0
		}
		return 1 << 10
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// oneOf formats a list of allowed values: "csv, json or ndjson".
func oneOf(vals []string) string {
	switch len(vals) {
	case 0:
		return ""
	case 1:
		return vals[0]
	}
	return strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1]
}
