package config

// JobID returns the canonical id of a job name as a schedule entry or an
// after: may write it: a layer ("bronze") stays as it is, a table becomes
// layer.name ("meters" -> "bronze.meters"). It returns an error naming the
// known jobs when the name is unknown or ambiguous. The loader has already
// checked every name in Schedule, so for those it cannot fail.
func (p *Pipeline) JobID(name string) (string, error) {
	return resolveJob(p, name)
}
