package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// runRecord is the raw output of one bench run, written as JSON to
// bench/results/<date>-<commit>.json. BENCHMARKS.md's table is rendered
// from it (renderMarkdown), so every figure there can be traced to a
// committed file. A case is a generic record: the report needs no code
// per case.
type runRecord struct {
	Started    time.Time     `json:"started"` // UTC
	ElapsedSec float64       `json:"elapsed_s"`
	Commit     string        `json:"commit"` // short HEAD, "-dirty" when the tree had changes
	Runs       int           `json:"runs"`   // runs per side
	Conditions string        `json:"conditions,omitempty"`
	Flags      []flagRecord  `json:"flags"` // every flag of the run (paths and the database URL left out)
	Machine    machineRecord `json:"machine"`
	Cases      []caseRecord  `json:"cases"`
}

// flagRecord is one flag of the run with its default.
type flagRecord struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	Default string `json:"default"`
}

// machineRecord is what the machine was and how busy it was.
type machineRecord struct {
	Nproc       int        `json:"nproc"`
	Description string     `json:"description"`
	LoadStart   [3]float64 `json:"loadavg_start"` // /proc/loadavg 1, 5, 15 min at the start
	LoadEnd     [3]float64 `json:"loadavg_end"`
	Go          string     `json:"go"`
	DuckDB      string     `json:"duckdb"`
	Psql        string     `json:"psql"`
}

// caseRecord is one case: what it measures, each side's runs and how the
// ratio reads. Cells replaces the timing cells for a case whose figure is
// not a wall time (case 9); Extra holds a case's own facts (objects
// listed, files per table, stream steps) as key/values.
type caseRecord struct {
	ID        int          `json:"id"`
	Name      string       `json:"name"`
	Kind      string       `json:"kind"` // speed, share, memory, s3, stream
	Rows      int64        `json:"rows,omitempty"`
	Bytes     int64        `json:"bytes,omitempty"`
	Sides     []sideRecord `json:"sides,omitempty"` // "ours" first, then the reference
	Ratio     float64      `json:"ratio,omitempty"`
	RatioText string       `json:"ratio_text,omitempty"`
	Target    string       `json:"target"` // what the target is, without met/missed
	Met       *bool        `json:"met,omitempty"`
	Cells     *cells       `json:"cells,omitempty"`
	Extra     []keyValue   `json:"extra,omitempty"`
	Note      string       `json:"note,omitempty"`
	Skip      string       `json:"skip,omitempty"`
	Error     string       `json:"error,omitempty"`
}

// sideRecord is one side of a case: every run, and min / median / max.
type sideRecord struct {
	Name        string      `json:"name"` // ours, reference
	Runs        []runSample `json:"runs"`
	MinSec      float64     `json:"min_s"`
	MedianSec   float64     `json:"median_s"`
	MaxSec      float64     `json:"max_s"`
	PeakRSSByte int64       `json:"peak_rss_bytes"`
}

// runSample is one run of one side.
type runSample struct {
	WallSec     float64 `json:"wall_s"`
	PeakRSSByte int64   `json:"peak_rss_bytes"`
}

// cells are the table cells of a case that is not timed run by run.
type cells struct {
	Ours      string `json:"ours"`
	Reference string `json:"reference"`
	Rate      string `json:"rate"`
	MBs       string `json:"mb_s"`
	RSS       string `json:"rss"`
}

// keyValue is one extra fact of a case.
type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func kindName(k kind) string {
	switch k {
	case shareKind:
		return "share"
	case memoryKind:
		return "memory"
	case s3Kind:
		return "s3"
	case streamKind:
		return "stream"
	case compareKind:
		return "compare"
	}
	return "speed"
}

func newSide(name string, ss []sample) sideRecord {
	s := sideRecord{Name: name, Runs: []runSample{}}
	for _, x := range ss {
		s.Runs = append(s.Runs, runSample{WallSec: x.wall.Seconds(), PeakRSSByte: x.rss})
	}
	if len(ss) > 0 {
		w := make([]float64, len(ss))
		for i, x := range ss {
			w[i] = x.wall.Seconds()
		}
		s.MinSec, s.MaxSec = slices.Min(w), slices.Max(w)
		s.MedianSec = medianWall(ss).Seconds()
		s.PeakRSSByte = peakRSS(ss)
	}
	return s
}

// record is the case as written to the JSON file.
func (r *result) record() caseRecord {
	c := caseRecord{ID: r.id, Name: r.figure, Kind: kindName(r.kind), Rows: r.rows, Bytes: r.bytes,
		Target: r.targetText(), Extra: r.extra, Note: r.note, Skip: r.skip}
	c.Target, _, _ = strings.Cut(c.Target, ": ") // the met/missed suffix is Met
	if r.kind == streamKind {
		c.Target = r.target
	}
	if r.err != nil {
		c.Error = strings.TrimSpace(r.err.Error())
	}
	if r.kind != streamKind && (len(r.ours) > 0 || len(r.ref) > 0) {
		c.Sides = []sideRecord{newSide("ours", r.ours), newSide("reference", r.ref)}
	}
	if !r.measured() {
		return c
	}
	met := !strings.Contains(r.targetText(), "missed") && strings.HasSuffix(r.targetText(), "met")
	if r.targetText() != "none set" {
		c.Met = &met
	}
	c.RatioText = r.ratioText()
	c.Ratio = r.ratio()
	if r.kind == streamKind {
		f := r.stream
		c.Ratio = float64(f.sustained) / streamTarget
		c.RatioText = fmt.Sprintf("%.2f", c.Ratio)
		c.Target = r.stream.targetText()
		c.Met = nil
		c.Cells = &cells{Ours: f.ours(), Reference: r.target + " (target)", Rate: count(int64(f.sustained)) + " events/s",
			MBs: fmt.Sprintf("%.1f MB/s", float64(f.sustained)*f.bytesPer()/1e6), RSS: mib(f.serveRSS) + " / -"}
		c.Extra = append(c.Extra, keyValue{"sustained events/s", fmt.Sprint(f.sustained)}, keyValue{"serve peak RSS bytes", fmt.Sprint(f.serveRSS)})
		for _, s := range f.steps {
			c.Extra = append(c.Extra, keyValue{fmt.Sprintf("step %d ev/s", s.rate), s.String()})
		}
	}
	return c
}

// record is the whole run as written to the JSON file.
func (rep *report) record() *runRecord {
	rec := &runRecord{Started: rep.date, ElapsedSec: rep.elapsed.Seconds(), Commit: rep.commit, Runs: rep.cfg.runs,
		Conditions: rep.cfg.underLoadMsg, Flags: flagRecords(rep.cfg), Machine: rep.mach, Cases: []caseRecord{}}
	rec.Machine.DuckDB = rep.duckdb
	for _, r := range rep.results {
		rec.Cases = append(rec.Cases, r.record())
	}
	return rec
}

// writeJSON writes the run to dir as <date>-<commit>.json (a -2, -3 ...
// suffix when that name is taken) and returns its path.
func (rec *runRecord) writeJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results directory: %w", err)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode results: %w", err)
	}
	base := rec.Started.UTC().Format("2006-01-02") + "-" + rec.Commit
	for i := 1; ; i++ {
		name := base + ".json"
		if i > 1 {
			name = fmt.Sprintf("%s-%d.json", base, i)
		}
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("write results: %w", err)
		}
		_, err = f.Write(append(b, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("write results %s: %w", p, err)
		}
		return p, nil
	}
}

// loadRun reads a results file.
func loadRun(path string) (*runRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	var rec runRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("results file %s: %w", path, err)
	}
	if rec.Started.IsZero() || rec.Commit == "" {
		return nil, fmt.Errorf("results file %s: no start time or commit: not a bench results file", path)
	}
	return &rec, nil
}

// priorRun is a committed results file: what it holds and how the text
// names it.
type priorRun struct {
	rec  *runRecord
	name string
}

// previousCommitted returns the committed results files in path's
// directory that started before cur, newest first (nil when there is none
// or the directory is not in a git work tree). Only files git knows at HEAD
// count: a comparison must be traceable too. Each case is compared with the
// newest of them that measured it, so a partial run (-cases 10,11) does not
// hide the last full one from the cases it did not run.
func previousCommitted(path string, cur *runRecord) []priorRun {
	dir := filepath.Dir(path)
	out, err := exec.Command("git", "-C", dir, "ls-tree", "--name-only", "HEAD", "./").Output()
	if err != nil {
		return nil
	}
	var runs []priorRun
	for _, name := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name = filepath.Base(name)
		if !strings.HasSuffix(name, ".json") || name == filepath.Base(path) {
			continue
		}
		p := filepath.Join(dir, name)
		rec, err := loadRun(p)
		if err != nil || !rec.Started.Before(cur.Started) {
			continue
		}
		runs = append(runs, priorRun{rec: rec, name: p})
	}
	slices.SortFunc(runs, func(a, b priorRun) int { return b.rec.Started.Compare(a.rec.Started) })
	return runs
}

// flagRecords lists the run's flags with their defaults, from the same
// flag set parseFlags uses, so a size that differs from the default shows
// without anyone typing it.
func flagRecords(cfg config) []flagRecord {
	def := defaultConfig()
	def.rowsIncr = def.rowsNDJSON
	if cfg.rowsIncr == 0 {
		cfg.rowsIncr = cfg.rowsNDJSON
	}
	cur, dflt := flagValues(cfg), flagValues(def)
	var out []flagRecord
	for _, name := range slices.Sorted(maps.Keys(cur)) {
		if unrecorded[name] {
			continue
		}
		out = append(out, flagRecord{Name: name, Value: cur[name], Default: dflt[name]})
	}
	return out
}

// unrecorded are flags that say where things are, not what was measured.
var unrecorded = map[string]bool{"medallion": true, "minio": true, "work": true, "keep": true, "out": true,
	"database-url": true, "conditions": true, "results": true, "render": true}

func flagValues(cfg config) map[string]string {
	fs, _, _ := newFlagSet(&cfg, nil)
	m := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { m[f.Name] = f.Value.String() })
	return m
}

// nonDefault is the flags line: each flag whose value is not its default.
func (rec *runRecord) nonDefault() string {
	var parts []string
	for _, f := range rec.Flags {
		if f.Value != f.Default {
			parts = append(parts, fmt.Sprintf("-%s %s", f.Name, f.Value))
		}
	}
	if len(parts) == 0 {
		return "none (every size at its default)"
	}
	return "`" + strings.Join(parts, " ") + "`"
}

// renderMarkdown is the generated part of BENCHMARKS.md, from a results
// file (name is how the text names it) and the committed runs before it,
// newest first.
func renderMarkdown(rec *runRecord, name string, prevs []priorRun) string {
	var b strings.Builder
	m := rec.Machine
	fmt.Fprintf(&b, "Raw output: [`%s`](%s), commit `%s`, run %s; runs per side: %d; total bench time %s.\n\n",
		name, name, rec.Commit, rec.Started.UTC().Format("2006-01-02 15:04 UTC"), rec.Runs, (time.Duration(rec.ElapsedSec * float64(time.Second))).Round(time.Second))
	fmt.Fprintf(&b, "Machine: %s; nproc %d; load average %s at the start, %s at the end; %s; DuckDB %s; %s.\n\n",
		m.Description, m.Nproc, loadText(m.LoadStart), loadText(m.LoadEnd), m.Go, m.DuckDB, cmp.Or(m.Psql, "psql unknown"))
	if rec.Conditions != "" {
		fmt.Fprintf(&b, "Conditions: %s\n\n", rec.Conditions)
	}
	fmt.Fprintf(&b, "Flags that differ from the defaults: %s.\n\n", rec.nonDefault())
	b.WriteString("| figure | ours: min / median / max | reference: min / median / max | ratio | target | rows/s (ours) | MB/s (ours) | peak RSS ours / ref |\n")
	b.WriteString("|---|---:|---:|---:|---|---:|---:|---:|\n")
	for _, c := range rec.Cases {
		b.WriteString(c.row())
		b.WriteByte('\n')
	}
	b.WriteString("\nRatio: of the medians, reference time / our time (>= 1: we are faster), except case 6 (our 1% run as a share of the full run), " +
		"case 8 (local-lake time / MinIO-lake time) and case 9 (sustained events/s / the target's 100k; its reference column is the issue's target, " +
		"there being no DuckDB equivalent, and its peak RSS is that of `medallion serve` over the whole case). Rows/s and MB/s are of the input, over our median time; " +
		"peak RSS is the largest of the runs.\n")
	b.WriteString("\n" + sinceText(rec, prevs) + "\n")
	for _, c := range rec.Cases {
		if len(c.Extra) > 0 && c.Cells == nil {
			var kv []string
			for _, e := range c.Extra {
				kv = append(kv, e.Key+": "+e.Value)
			}
			fmt.Fprintf(&b, "\nCase %d: %s.\n", c.ID, strings.Join(kv, "; "))
		}
		if c.Note != "" {
			b.WriteString("\n" + c.Note + "\n")
		}
	}
	var errs []string
	for _, c := range rec.Cases {
		if c.Error != "" {
			errs = append(errs, fmt.Sprintf("- case %d: %s", c.ID, strings.ReplaceAll(c.Error, "\n", "\n  ")))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nFailures:\n\n```\n" + strings.Join(errs, "\n") + "\n```\n")
	}
	return b.String()
}

// sinceText compares each case's ratio with the newest earlier committed
// run that measured that case, naming the file each comparison comes from.
func sinceText(rec *runRecord, prevs []priorRun) string {
	if len(prevs) == 0 {
		return "Since the previous run: no earlier committed results file in bench/results to compare with."
	}
	byFile := map[int][]string{} // index in prevs -> comparisons
	var fresh []string
	for _, c := range rec.Cases {
		if c.RatioText == "" {
			continue
		}
		found := false
		for i, p := range prevs {
			if o, ok := p.rec.caseByID(c.ID); ok && o.RatioText != "" {
				byFile[i] = append(byFile[i], fmt.Sprintf("case %d %s -> %s", c.ID, o.RatioText, c.RatioText))
				found = true
				break
			}
		}
		if !found {
			fresh = append(fresh, fmt.Sprintf("case %d", c.ID))
		}
	}
	var groups []string
	for i, p := range prevs {
		if len(byFile[i]) == 0 {
			continue
		}
		g := fmt.Sprintf("%s (from [`%s`](%s), commit `%s`", strings.Join(byFile[i], ", "), p.name, p.name, p.rec.Commit)
		if a, b := rec.nonDefault(), p.rec.nonDefault(); a != b {
			g += fmt.Sprintf("; the flags differ, that run: %s, so sizes may not match", b)
		}
		groups = append(groups, g+")")
	}
	s := "Since the newest earlier committed run measuring each case: "
	if len(groups) == 0 {
		s += "no case measured in both"
	} else {
		s += strings.Join(groups, "; ")
	}
	if len(fresh) > 0 {
		s += "; not measured in any earlier committed run: " + strings.Join(fresh, ", ")
	}
	return s + "."
}

// caseByID returns the run's record of case id.
func (r *runRecord) caseByID(id int) (caseRecord, bool) {
	for _, c := range r.Cases {
		if c.ID == id {
			return c, true
		}
	}
	return caseRecord{}, false
}

func loadText(l [3]float64) string {
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
}

// row renders the case as a table row.
func (c caseRecord) row() string {
	target := c.Target
	if c.Met != nil {
		if *c.Met {
			target += ": met"
		} else {
			target += ": **missed**"
		}
	}
	switch {
	case c.Skip != "":
		return fmt.Sprintf("| %s | %s | | | %s | | | |", c.Name, escape(c.Skip), target)
	case c.Error != "":
		return fmt.Sprintf("| %s | %s | | | %s | | | |", c.Name, escape("FAILED: "+c.Error), target)
	case c.Cells != nil:
		x := c.Cells
		return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s |", c.Name, x.Ours, x.Reference, c.RatioText, target, x.Rate, x.MBs, x.RSS)
	case len(c.Sides) < 2 || len(c.Sides[0].Runs) == 0:
		return fmt.Sprintf("| %s | no runs | | | %s | | | |", c.Name, target)
	}
	o, f := c.Sides[0], c.Sides[1]
	rate, mbs := "", ""
	if c.Rows > 0 && o.MedianSec > 0 {
		rate = fmt.Sprintf("%s rows/s", count(int64(float64(c.Rows)/o.MedianSec)))
	}
	if c.Bytes > 0 && o.MedianSec > 0 {
		mbs = fmt.Sprintf("%.1f MB/s", float64(c.Bytes)/1e6/o.MedianSec)
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s / %s |", c.Name, o.triple(), f.triple(), c.RatioText, target,
		rate, mbs, mib(o.PeakRSSByte), mib(f.PeakRSSByte))
}

// triple is "min / median / max" in one unit (that of the median).
func (s sideRecord) triple() string {
	if len(s.Runs) == 0 {
		return "-"
	}
	med := s.MedianSec
	f := func(v float64) string { return fmt.Sprintf("%.0f", v*1000) }
	unit := "ms"
	switch {
	case med >= 10:
		f, unit = func(v float64) string { return fmt.Sprintf("%.1f", v) }, "s"
	case med >= 1:
		f, unit = func(v float64) string { return fmt.Sprintf("%.2f", v) }, "s"
	}
	return fmt.Sprintf("%s / %s / %s %s", f(s.MinSec), f(med), f(s.MaxSec), unit)
}

// gitCommit is HEAD's short hash in dir, with "-dirty" when tracked files
// differ from it.
func gitCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil || len(strings.TrimSpace(string(st))) > 0 {
		c += "-dirty"
	}
	return c
}

// binaryCommit is the commit a `medallion version` line names (what make
// build stamps, or the "dev-" revision a plain go build records), shortened
// as gitCommit's, with its "-dirty"; ok is false when the line names none
// (a binary built outside a checkout).
func binaryCommit(versionLine string) (commit string, ok bool) {
	f := strings.Fields(versionLine)
	if len(f) < 2 || f[0] != "medallion" || f[1] == "dev" {
		return "", false
	}
	v := strings.TrimPrefix(f[1], "dev-")
	v, dirty := strings.CutSuffix(v, "-dirty")
	if len(v) > 7 && strings.Trim(v, "0123456789abcdef") == "" {
		v = v[:7]
	}
	if dirty {
		v += "-dirty"
	}
	return v, true
}

// loadAvg reads /proc/loadavg (zeros where it cannot).
func loadAvg() [3]float64 {
	var l [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscanf(string(b), "%f %f %f", &l[0], &l[1], &l[2])
	}
	return l
}

// psqlVersion is `psql --version`, or "" when psql is not there.
func psqlVersion() string {
	out, err := exec.Command("psql", "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func machineFacts() machineRecord {
	return machineRecord{Nproc: runtime.NumCPU(), Description: machine(), LoadStart: loadAvg(), Go: runtime.Version(), Psql: psqlVersion()}
}
