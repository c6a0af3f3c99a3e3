package files

import (
	"fmt"
	"path"
	"strings"
)

// partialSuffixes are the endings writers give a file while it is still
// being written (curl, rsync-like tools, browsers): such a file is renamed
// when complete, and taking it before would land half of it.
var partialSuffixes = []string{".part", ".tmp", ".crdownload"}

// SkipName reports whether a file of this base name is never taken: a
// hidden file (".x") or one still being written (".part", ".tmp",
// ".crdownload").
func SkipName(base string) bool {
	if strings.HasPrefix(base, ".") {
		return true
	}
	for _, s := range partialSuffixes {
		if strings.HasSuffix(base, s) {
			return true
		}
	}
	return false
}

// partial reports whether the file at key is named as one still being written.
func partial(key string) bool {
	for _, s := range partialSuffixes {
		if strings.HasSuffix(key, s) {
			return true
		}
	}
	return false
}

// Matcher decides by name which files of a folder are taken.
type Matcher struct {
	glob string // matched against the base name; "" takes every name
}

// NewMatcher checks glob (path.Match syntax, matched against the base name).
func NewMatcher(glob string) (Matcher, error) {
	if glob != "" {
		if _, err := path.Match(glob, "x"); err != nil {
			return Matcher{}, fmt.Errorf("glob %q: %w", glob, err)
		}
	}
	return Matcher{glob: glob}, nil
}

// Take reports whether the file at rel (a '/'-separated path relative to
// the folder) is one to take: no part of it hidden, not a partial file, and
// its base name matching the glob.
func (m Matcher) Take(rel string) bool {
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		if strings.HasPrefix(p, ".") || strings.HasPrefix(p, "_") {
			return false
		}
	}
	base := parts[len(parts)-1]
	if base == "" || SkipName(base) {
		return false
	}
	if m.glob == "" {
		return true
	}
	ok, _ := path.Match(m.glob, base)
	return ok
}
