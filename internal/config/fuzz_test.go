package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that any file either loads into a consistent pipeline or
// fails with one-line *Error values in file order; never a panic or a hang.
func FuzzParse(f *testing.F) {
	base := string(readFile(f, "base.yaml"))
	f.Add(base)
	f.Add(string(readFile(f, "spec.yaml")))
	f.Add(string(Starter()))
	f.Add("")
	f.Add("lake: ${A:-${B:-file://x}}\n")
	f.Add("a: &a [*a]\n")
	f.Add("sources: {s: {format: csv, schema: {x: int64}, csv: {delimiter: \"\\t\"}}}\n")
	f.Add("gold: {a: {sql: SELECT * FROM gold.b}, b: {sql: 'SELECT * FROM gold.a'}}\n")
	f.Add("schedule: {bronze: {after: silver}, silver: {after: bronze}}\n")
	f.Add(strings.Replace(base, "window: {size: 1m}", "window: {size: 1m, slide: 30s}", 1))
	f.Add(strings.Replace(base, "lake: file://./lake", "lake: ${X", 1))
	f.Add("<<: {lake: s3://b/p}\ns3: {endpoint: \"h:1\"}\n")
	f.Fuzz(func(t *testing.T, src string) {
		env := envOf(map[string]string{"A": "1", "B": "file://./b"})
		p, err := Parse("f.yaml", []byte(src), env)
		if err != nil {
			checkErrors(t, err)
			return
		}
		checkPipeline(t, p)
		// Loading is deterministic.
		p2, err := Parse("f.yaml", []byte(src), env)
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}

func checkErrors(t *testing.T, err error) {
	t.Helper()
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	prev := 0
	for _, e := range list {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("%T %v is not an *Error", e, e)
		}
		if ce.File != "f.yaml" || ce.Msg == "" {
			t.Fatalf("incomplete error %#v", ce)
		}
		if strings.ContainsAny(ce.Error(), "\n\r") {
			t.Fatalf("error spans lines: %q", ce.Error())
		}
		if ce.Line < prev {
			t.Fatalf("errors out of order: %v", err)
		}
		prev = ce.Line
	}
	first, _, _ := strings.Cut(err.Error(), "\n")
	var ce *Error
	if errors.As(err, &ce); ce.Error() != first {
		t.Fatalf("errors.As gives %q, first line is %q", ce.Error(), first)
	}
}

func checkPipeline(t *testing.T, p *Pipeline) {
	t.Helper()
	if len(p.SourceOrder) != len(p.Sources) || len(p.SilverOrder) != len(p.Silver) || len(p.GoldOrder) != len(p.Gold) || len(p.ScheduleOrder) != len(p.Schedule) {
		t.Fatal("order slices do not match the maps")
	}
	for _, n := range p.SourceOrder {
		s := p.Sources[n]
		if !isIdent(n) || len(s.Schema) == 0 || !slices.Contains(formats, s.Format) {
			t.Fatalf("source %q accepted: %+v", n, s)
		}
		for _, c := range s.Schema {
			if c.From == "" || c.Trim == nil || c.EmptyAsNull == nil || !isIdent(c.Name) {
				t.Fatalf("column %+v not filled", c)
			}
		}
	}
	for _, n := range p.SilverOrder {
		s := p.Silver[n]
		src := p.Sources[s.From]
		if src == nil || src.column(s.EventTime) == nil || src.column(s.EventTime).Type != "timestamp" {
			t.Fatalf("silver %q: bad from or event_time", n)
		}
		if s.Size <= 0 || s.Slide < 0 || (s.Slide > 0 && s.Size%s.Slide != 0) || s.Watermark < 0 {
			t.Fatalf("silver %q: bad window %v/%v", n, s.Size, s.Slide)
		}
		for _, a := range s.Aggregates {
			if !slices.Contains(aggregateFuncs, a.Func) || a.Arg == "" {
				t.Fatalf("aggregate %+v not parsed", a)
			}
		}
	}
	for _, n := range p.GoldOrder {
		g := p.Gold[n]
		if (g.From == "") == (g.SQL == "") {
			t.Fatalf("gold %q: from %q sql %q", n, g.From, g.SQL)
		}
		for _, d := range g.DependsOn {
			layer, name, _ := strings.Cut(d, ".")
			if _, ok := columnsOrTable(p, layer, name); !ok && d != "bronze._quarantine" && d != "silver._late" {
				t.Fatalf("gold %q depends on undeclared %s", n, d)
			}
		}
	}
	for _, m := range p.Mirror {
		if m.Table == "" || m.To == "" || len(m.Key) == 0 {
			t.Fatalf("mirror %+v", m)
		}
	}
	for _, j := range p.ScheduleOrder {
		s := p.Schedule[j]
		if (s.Cron == "") == (s.After == "") {
			t.Fatalf("schedule %q: %+v", j, s)
		}
		if s.Cron != "" && ValidateCron(s.Cron) != nil {
			t.Fatalf("schedule %q: bad cron accepted", j)
		}
	}
}

// FuzzAggregate checks that accepted aggregates parse back to themselves.
func FuzzAggregate(f *testing.F) {
	for _, s := range []string{"count(*)", "count(x)", "sum(x)", "min(x)", "max(x)", "avg(x)", "count_if(a > 1)",
		"approx_count_distinct(user_id)", "AVG ( x )", "count_if(x = ')')", "sum((x))", "f(x)(y)", "count(", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fn, arg, err := ParseAggregate(s)
		if err != nil {
			return
		}
		if !slices.Contains(aggregateFuncs, fn) || arg == "" {
			t.Fatalf("ParseAggregate(%q) = %q, %q", s, fn, arg)
		}
		if arg == "*" && fn != "count" {
			t.Fatalf("ParseAggregate(%q) accepted %s(*)", s, fn)
		}
		fn2, arg2, err := ParseAggregate(fn + "(" + arg + ")")
		if err != nil || fn2 != fn || arg2 != arg {
			t.Fatalf("round trip of %q: %q, %q, %v", s, fn2, arg2, err)
		}
	})
}

// FuzzCron checks that the validator never panics and ignores surrounding space.
func FuzzCron(f *testing.F) {
	for _, s := range []string{"@every 1m", "@daily", "*/5 * * * *", "0 9-17/2 * jan-dec mon-fri", "1,2,3 * * * *",
		"5/15 * * * *", "* * * * 7", "*/0 * * * *", "@every", "60 * * * *", "- * * * *", "1-2-3 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateCron(s)
		if err2 := ValidateCron(" \t" + s + " "); (err == nil) != (err2 == nil) {
			t.Fatalf("ValidateCron(%q) = %v, but with spaces around %v", s, err, err2)
		}
	})
}

// FuzzExpand checks that expansion never panics and leaves text without $ alone.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"${A}", "${A:-b}", "$$", "${", "${A:-${B:-${C}}}", "x$y", "${A:-}}"} {
		f.Add(s)
	}
	env := envOf(map[string]string{"A": "a", "B": ""})
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Expand(s, env)
		if err != nil {
			var ee *expandError
			if !errors.As(err, &ee) || ee.Off < 0 || ee.Off >= len(s) || !strings.HasPrefix(s[ee.Off:], "${") {
				t.Fatalf("Expand(%q): error %v at a bad offset", s, err)
			}
			return
		}
		if !strings.Contains(s, "$") && out != s {
			t.Fatalf("Expand(%q) = %q", s, out)
		}
	})
}
