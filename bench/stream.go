package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// streamTarget is the target for case 9: sustained events/s.
const streamTarget = 100_000

// streamMaxP99 is the latency target at half the sustained rate.
const streamMaxP99 = 3 * time.Second

// streamStep is one rate held for a while: what was posted and how the
// backlog behaved.
type streamStep struct {
	rate     int
	counts   loadCounts
	mid, end float64       // largest backlog (raw objects) in the second and the last quarter of the step
	perSec   float64       // raw objects landed per second during the step
	maxLag   float64       // largest stream lag gauge seen
	drain    time.Duration // from the end of posting until the backlog was empty
	drained  bool
	serveCPU float64    // cores serve used during the step
	genCPU   float64    // cores the bench (the generator) used
	bytesPer float64    // bytes per event posted
	batches  float64    // micro-batches committed during the step and its drain
	layerSec [3]float64 // mean seconds per micro-batch of bronze, silver, gold
	p50, p99 float64    // gold latency of the step's objects, seconds
	p99Over  bool       // p99 is past the largest finite bucket
	ok       bool
	why      string // why the rate is not sustained
}

func (s *streamStep) String() string {
	mark := "sustained"
	if !s.ok {
		mark = "NOT sustained (" + s.why + ")"
	}
	return fmt.Sprintf("%s ev/s: %s; acked %s ev/s, backlog mid %.0f / end %.0f objects (%.1f objects/s), drained in %s, p50 %.2f s, p99 %.2f s, serve %.2f cores, generator %.2f cores; %.0f micro-batches, %s",
		count(int64(s.rate)), mark, count(int64(s.achieved())), s.mid, s.end, s.perSec, s.drain.Round(100*time.Millisecond), s.p50, s.p99, s.serveCPU, s.genCPU, s.batches, s.layers())
}

// layers is the mean time per micro-batch of each layer.
func (s *streamStep) layers() string {
	return fmt.Sprintf("bronze %.2f s + silver %.2f s + gold %.2f s per micro-batch", s.layerSec[0], s.layerSec[1], s.layerSec[2])
}

// achieved is the acknowledged events per second.
func (s *streamStep) achieved() float64 {
	if s.counts.elapsed <= 0 {
		return 0
	}
	return float64(s.counts.acked) / s.counts.elapsed.Seconds()
}

// streamFigures is case 9's outcome.
type streamFigures struct {
	steps     []*streamStep
	sustained int // highest rate sustained (0: none)
	half      *streamStep
	serveRSS  int64 // largest peak RSS of the serve processes
}

// bytesPer is the size of one posted event.
func (f *streamFigures) bytesPer() float64 {
	for _, s := range f.steps {
		if s.bytesPer > 0 {
			return s.bytesPer
		}
	}
	return 0
}

// drainGrace is how long after posting stops the backlog may take to empty
// for the rate to count as sustained: one trigger, one micro-batch of what
// was waiting, and the flush interval, with room to spare.
const drainGrace = 5 * time.Second

// streamStepRun posts rate events/s for d and watches the backlog (raw
// objects landed but not yet through gold) every 250 ms. The rate is
// sustained when every post was acknowledged (no 429/503), at least 95% of
// the due events were acknowledged in time, the backlog of the last quarter
// is not larger than that of the second quarter (by more than a fifth plus
// one second of objects: the sawtooth of micro-batches), and after posting
// stops the backlog empties within drainGrace. It waits (up to a few
// minutes) for the backlog to empty before returning, so the next step
// starts from nothing.
func (b *bench) streamStepRun(ctx context.Context, srv *serveProc, gen *loadGen, rate int, d time.Duration) (*streamStep, error) {
	st := &streamStep{rate: rate}
	before, err := srv.scrape(ctx)
	if err != nil {
		return nil, err
	}
	cpu0, self0, t0 := srv.cpu(), selfCPU(), time.Now()
	done := make(chan loadCounts, 1)
	go func() { done <- gen.run(ctx, rate, d) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last promText
	var scrapeErr error
posting:
	for {
		select {
		case st.counts = <-done:
			break posting
		case <-tick.C:
		}
		p, err := srv.scrape(ctx)
		if err != nil {
			scrapeErr = err
			continue
		}
		last = p
		el := time.Since(t0)
		switch q := el * 4 / d; {
		case q == 1:
			st.mid = max(st.mid, p.backlog())
		case q >= 3:
			st.end = max(st.end, p.backlog())
		}
		st.maxLag = max(st.maxLag, p[seriesLag])
	}
	el := time.Since(t0)
	st.serveCPU = (srv.cpu() - cpu0).Seconds() / el.Seconds()
	st.genCPU = (selfCPU() - self0).Seconds() / el.Seconds()
	if last == nil {
		return nil, fmt.Errorf("no /metrics scrape during the step: %v", scrapeErr)
	}
	st.perSec = (last[seriesLanded] - before[seriesLanded]) / el.Seconds()

	stopped := time.Now()
	after, err := b.waitDrained(ctx, srv, 3*time.Minute)
	st.drain = time.Since(stopped)
	switch {
	case errors.Is(err, errNotDrained):
		st.drained = false
	case err != nil:
		return nil, err
	default:
		st.drained = true
	}
	if after != nil {
		st.measure(before, after)
	}
	st.judge(rate, d)
	if !st.drained {
		return st, fmt.Errorf("%d ev/s: the backlog did not empty within 3 minutes after posting stopped", rate)
	}
	return st, nil
}

// measure fills in the step's latencies, batch count, mean job time per
// layer and failed batches from the scrapes before and after it.
func (st *streamStep) measure(before, after promText) {
	bs := goldBuckets(before, after)
	st.p50, _, _ = quantile(0.5, bs)
	st.p99, st.p99Over, _ = quantile(0.99, bs)
	st.batches = after[seriesBatchOK] - before[seriesBatchOK]
	for i, l := range []string{"bronze", "silver", "gold"} {
		sum := `medallion_job_duration_seconds_sum{layer="` + l + `"}`
		n := `medallion_job_duration_seconds_count{layer="` + l + `"}`
		if dn := after[n] - before[n]; dn > 0 {
			st.layerSec[i] = (after[sum] - before[sum]) / dn
		}
	}
	if after[seriesBatchFail] > before[seriesBatchFail] {
		st.why = fmt.Sprintf("%.0f micro-batches failed (see serve's log)", after[seriesBatchFail]-before[seriesBatchFail])
	}
}

// judge decides whether the step sustained its rate, setting ok or, when
// not, why (the first failed condition of streamStepRun's list).
func (st *streamStep) judge(rate int, d time.Duration) {
	due := float64(rate) * d.Seconds()
	slack := st.mid/5 + st.perSec
	switch {
	case st.why != "":
	case st.counts.rejected > 0 || st.counts.failed > 0:
		st.why = fmt.Sprintf("%d events rejected, %d failed (%s)", st.counts.rejected, st.counts.failed, st.counts.lastErr)
	case float64(st.counts.acked) < 0.95*due:
		st.why = fmt.Sprintf("only %s of %s due events acknowledged in time", count(st.counts.acked), count(int64(due)))
	case st.end > st.mid+slack:
		st.why = fmt.Sprintf("backlog grew from %.0f to %.0f objects", st.mid, st.end)
	case !st.drained || st.drain > drainGrace:
		st.why = fmt.Sprintf("backlog took %s to empty after posting stopped", st.drain.Round(100*time.Millisecond))
	default:
		st.ok = true
	}
}

var errNotDrained = errors.New("backlog not drained")

// waitDrained waits until every acknowledged event is landed and every
// landed object is through gold, and returns that scrape.
func (b *bench) waitDrained(ctx context.Context, srv *serveProc, limit time.Duration) (promText, error) {
	deadline := time.Now().Add(limit)
	var last promText
	for {
		p, err := srv.scrape(ctx)
		if err != nil {
			return last, err
		}
		last = p
		if p.backlog() <= 0 && p[seriesPending] == 0 {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, errNotDrained
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// case 9: the load generator against `medallion serve` in stream mode.
func (b *bench) caseStream(ctx context.Context) *result {
	r := &result{id: 9, kind: streamKind,
		figure: fmt.Sprintf("9. Stream mode: sustained events/s posted to `medallion serve` (1 s trigger, NDJSON batches of %s events, %d keep-alive posters), p50/p99 received-to-gold latency at half that rate",
			count(int64(b.cfg.streamBatch)), b.cfg.streamPosters),
		target: fmt.Sprintf(">= %s events/s; p99 <= %s", count(streamTarget), secs(streamMaxP99))}
	fig := &streamFigures{}
	if err := b.streamSteps(ctx, fig); err != nil {
		return r.fail(err)
	}
	r.stream = fig
	r.rows = int64(fig.sustained)
	r.bytes = int64(float64(fig.sustained) * fig.bytesPer())
	r.note = fig.note()
	return r
}

// streamSteps climbs the rate ladder until a rate is not sustained (then
// tries the midpoint once), and measures latency at half the highest
// sustained rate.
func (b *bench) streamSteps(ctx context.Context, fig *streamFigures) error {
	rates := b.cfg.streamRates
	step := func(rate int) (*streamStep, error) {
		st, err := b.streamStepFresh(ctx, rate, fig)
		if st != nil {
			fig.steps = append(fig.steps, st)
			b.logf("case 9: %s", st)
			if st.ok {
				fig.sustained = max(fig.sustained, rate)
			}
		}
		return st, err
	}
	failedAt := 0
	for _, rate := range rates {
		st, err := step(rate)
		if err != nil {
			return err
		}
		if !st.ok {
			failedAt = rate
			break
		}
	}
	if failedAt > 0 && fig.sustained > 0 {
		if mid := (fig.sustained + failedAt) / 2 / 5000 * 5000; mid > fig.sustained && mid < failedAt {
			if _, err := step(mid); err != nil {
				return err
			}
		}
	}
	half := fig.sustained / 2
	if half == 0 {
		half = rates[0] / 2
	}
	half = max(half, b.cfg.streamBatch)
	b.logf("case 9: latency at %s ev/s", count(int64(half)))
	st, err := b.streamStepFresh(ctx, half, fig)
	if err != nil {
		return err
	}
	fig.half = st
	b.logf("case 9: half rate: %s; p50 %.2f s", st, st.p50)
	return nil
}

// streamStepFresh holds one rate against a fresh `medallion serve` on an
// empty lake, after a warm-up (the first micro-batches create the tables,
// DuckDB loads its extensions, connections open). Every step starts from
// the same state, so the ladder's order does not weigh on the figures;
// within a step the tables grow as they would in production.
func (b *bench) streamStepFresh(ctx context.Context, rate int, fig *streamFigures) (*streamStep, error) {
	p := b.basePipeline()
	p.meters = true
	p.trigger = "1s"
	dir, err := b.runDir("stream", p, "")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := b.startServe(ctx, dir)
	if err != nil {
		return nil, err
	}
	st, err := b.streamStepOn(ctx, srv, rate)
	rss, stopErr := srv.stop()
	fig.serveRSS = max(fig.serveRSS, rss)
	if err == nil {
		err = stopErr
	}
	return st, err
}

func (b *bench) streamStepOn(ctx context.Context, srv *serveProc, rate int) (*streamStep, error) {
	d := b.cfg.streamDuration
	gen := newLoadGen(srv.base+"/v1/ingest/meters", b.cfg.streamBatch, b.cfg.streamPosters)
	defer gen.close()
	warm := max(d/5, 2*time.Second)
	if c := gen.run(ctx, max(b.cfg.streamRates[0]/2, b.cfg.streamBatch), warm); c.acked == 0 {
		return nil, fmt.Errorf("warm-up: no post acknowledged (%s)\n%s", c.lastErr, srv.output())
	}
	if _, err := b.waitDrained(ctx, srv, 3*time.Minute); err != nil {
		return nil, fmt.Errorf("warm-up: %w\n%s", err, srv.output())
	}
	bytes0 := gen.bytes.Load()
	st, err := b.streamStepRun(ctx, srv, gen, rate, d)
	if err != nil {
		return st, err
	}
	if st.counts.acked > 0 {
		st.bytesPer = float64(gen.bytes.Load()-bytes0) / float64(st.counts.acked)
	}
	// Every acknowledged event is in bronze exactly once (the generated
	// events are all distinct and valid).
	final, err := srv.scrape(ctx)
	if err != nil {
		return st, err
	}
	if landed, bronze := final[seriesRowsLanded], final[seriesBronzeRows]; landed != bronze {
		return st, fmt.Errorf("%d ev/s: rows landed by ingest (%.0f) and written to bronze (%.0f) differ", rate, landed, bronze)
	}
	return st, nil
}

// note is the footnote of case 9: every step, the CPU split and how the
// figures were read.
func (f *streamFigures) note() string {
	var b strings.Builder
	b.WriteString("Case 9: no DuckDB equivalent, so the reference column holds the issue's target. ")
	b.WriteString("Each rate is held for the step duration against a fresh `medallion serve` on an empty local lake, after a warm-up; sustained = every post acknowledged (no 429/503), " +
		"at least 95% of the due events acknowledged in time, the backlog (raw objects landed but not yet through gold, sampled every 250 ms) growing by no more than the slack: " +
		"its largest sample in the last quarter of the step at most its largest in the second quarter plus a fifth of that plus one second's worth of landed objects " +
		"(the sawtooth of micro-batches), and the backlog empty within 5 s of the last post. Steps: ")
	var parts []string
	for _, s := range f.steps {
		v := "ok"
		if !s.ok {
			v = "no: " + s.why
		}
		parts = append(parts, fmt.Sprintf("%s ev/s %s (p99 %.2f s, serve %.2f cores, generator %.2f; %s)", count(int64(s.rate)), v, s.p99, s.serveCPU, s.genCPU, s.layers()))
	}
	b.WriteString(strings.Join(parts, "; "))
	b.WriteString(". ")
	if h := f.half; h != nil {
		over := ""
		if h.p99Over {
			over = " (past the largest bucket)"
		}
		fmt.Fprintf(&b, "Latency at %s ev/s: p50 %.2f s, p99 %.2f s%s, from the difference of two scrapes of `medallion_stream_latency_seconds{stage=\"gold\"}`, "+
			"interpolated linearly inside its buckets (0.25 s wide from 0.5 s to 3 s). ", count(int64(h.rate)), h.p50, h.p99, over)
		fmt.Fprintf(&b, "CPU at that rate: serve %.2f cores, the load generator %.2f cores (%.0f%% of the machine's %d). ",
			h.serveCPU, h.genCPU, 100*h.genCPU/float64(runtime.NumCPU()), runtime.NumCPU())
	}
	return b.String()
}

// ours is the figure in the "ours" column.
func (f *streamFigures) ours() string {
	s := count(int64(f.sustained)) + " events/s sustained"
	if f.sustained == 0 {
		s = "no rate tried sustained"
	}
	if h := f.half; h != nil {
		s += fmt.Sprintf("; p50 %s, p99 %s at %s events/s", secs(seconds(h.p50)), secs(seconds(h.p99)), count(int64(h.rate)))
	}
	return s
}

// targetText says which of the two targets were met.
func (f *streamFigures) targetText() string {
	rate, lat := "met", "met"
	if f.sustained < streamTarget {
		rate = "**missed**"
	}
	if f.half == nil || f.half.p99Over || seconds(f.half.p99) > streamMaxP99 {
		lat = "**missed**"
	}
	return fmt.Sprintf(">= %s events/s: %s; p99 <= %s: %s", count(streamTarget), rate, secs(streamMaxP99), lat)
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
