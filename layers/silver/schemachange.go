package silver

import (
	"fmt"
	"strings"

	"github.com/medallion-dev/medallion/layers"
)

// definitionChanged is the error refusing a run whose window, group_by,
// aggregates or output changed since the table's last commit (was, the
// fingerprint it recorded): the windows written so far and the partial
// aggregates of the open ones (the state) were computed with the earlier
// definition and cannot be carried over, not even for an added aggregate
// (the open windows have no partial value of it). It says what changed,
// where, and the way forward: rebuild the table from bronze.
func (j *job) definitionChanged(was string) error {
	sp := j.sp
	oldHead, oldAggs := splitFingerprint(was)
	newHead, newAggs := splitFingerprint(sp.fingerprint())
	var what []string
	if oldHead != newHead {
		what = append(what, fmt.Sprintf("the window, group_by or output changed (was %s, now %s)", oldHead, newHead))
	}
	place := layers.Place(j.deps.PipelineFile, sp.line, 0)
	placed := false
	at := func(a *agg) {
		if !placed && a.line > 0 {
			place, placed = layers.Place(j.deps.PipelineFile, a.line, a.col), true
		}
	}
	for _, a := range sp.aggs {
		def := fmt.Sprintf("%s(%s)", a.fn, a.arg)
		switch old, ok := oldAggs[strings.ToLower(a.name)]; {
		case !ok:
			what = append(what, fmt.Sprintf("aggregate %s: %s is new", a.name, def))
			at(a)
		case old != def:
			what = append(what, fmt.Sprintf("aggregate %s changed %s -> %s", a.name, old, def))
			at(a)
		}
	}
	for _, name := range oldOrder(was) {
		if _, ok := newAggs[name]; !ok {
			what = append(what, fmt.Sprintf("aggregate %s: %s was removed", name, oldAggs[name]))
		}
	}
	if len(what) == 0 {
		what = append(what, "the aggregates were reordered")
	}
	// No table name here: Run prefixes "silver.<name>: " to every error
	// of the job, and a second one would double it.
	ref := layers.TableRef{Layer: layers.Silver, Name: sp.name}
	msg := ""
	if place != "" {
		msg = place + ": "
	}
	return fmt.Errorf("%sschema change refused: %s; the table's windows and the partial aggregates of its open windows were computed with the earlier definition. Rebuild the table from bronze with the new definition: `medallion refresh %s`, or restore the earlier definition",
		msg, strings.Join(what, ", "), ref)
}

// splitFingerprint splits a fingerprint (spec.fingerprint) into its
// window/group part and its aggregates by lower-case name.
func splitFingerprint(f string) (head string, aggs map[string]string) {
	parts := strings.Split(f, ";")
	aggs = map[string]string{}
	var h []string
	for _, p := range parts {
		name, def, ok := strings.Cut(p, "=")
		if ok && strings.Contains(def, "(") && !strings.Contains(name, "_by") && name != "from" && name != "event_time" {
			aggs[strings.ToLower(name)] = def
			continue
		}
		h = append(h, p)
	}
	return strings.Join(h, ";"), aggs
}

// oldOrder returns the aggregate names of a fingerprint in order.
func oldOrder(f string) []string {
	var out []string
	for _, p := range strings.Split(f, ";") {
		name, def, ok := strings.Cut(p, "=")
		if ok && strings.Contains(def, "(") && !strings.Contains(name, "_by") && name != "from" && name != "event_time" {
			out = append(out, strings.ToLower(name))
		}
	}
	return out
}
