package bronze

import (
	"fmt"
	"strings"
)

// csvDelimiters are the delimiters a header is tried with when it matches
// no declared column with the configured one.
var csvDelimiters = []string{",", ";", "\t", "|"}

// delimiterHint returns the reason every record of a CSV object is refused
// when its header matches no declared column with the configured delimiter
// but does with another: the records would otherwise be typed as if every
// declared field were missing ("required field ... is missing"), hiding
// the cause. "" when the header is not explained by a wrong delimiter.
func (j *job) delimiterHint(path, delim, quote string, header []string) string {
	if len(header) == 0 || j.matchedColumns(header) > 0 {
		return ""
	}
	best, bestCols := "", []string(nil)
	for _, d := range csvDelimiters {
		if d == delim {
			continue
		}
		h, err := readCSVHeader(path, d, quote)
		if err != nil || len(h) < 2 {
			continue
		}
		if n := j.matchedColumns(h); n > len(bestCols) {
			best, bestCols = d, nil
			for _, c := range h {
				if j.matchedColumns([]string{c}) > 0 {
					bestCols = append(bestCols, strings.TrimSpace(c))
				}
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("the header (line 1) does not match the delimiter %s: it has no declared column, but split by %s it has %s; set csv: {delimiter: %s}",
		delimName(delim), delimName(best), strings.Join(bestCols, ", "), delimName(best))
}

// matchedColumns counts the header fields that name a declared column.
func (j *job) matchedColumns(header []string) int {
	n := 0
	for _, h := range header {
		for _, c := range j.plan.cols {
			if h == c.srcName || normName(h) == normName(c.srcName) {
				n++
				break
			}
		}
	}
	return n
}

// delimName quotes a delimiter as YAML would take it.
func delimName(d string) string {
	if d == "\t" {
		return `"\t"`
	}
	return `"` + d + `"`
}
