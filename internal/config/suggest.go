package config

// Closest returns the candidate nearest to word by edit distance when it is
// near enough to be a typo (or word is a prefix of it), else "": what the
// "did you mean" of config errors uses, for the command line's own names.
func Closest(word string, candidates []string) string {
	return closest(word, candidates)
}
