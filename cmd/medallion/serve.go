package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/medallion-dev/medallion/dashboard"
	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/metrics"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/layers/raw/brokers"
	"github.com/medallion-dev/medallion/layers/raw/receiver"
)

// serveLeaseWait is how long a job of serve waits for a table's lease held
// by another runner.
const serveLeaseWait = 2 * time.Second

// shutdownGrace bounds how long SIGTERM waits for acknowledged data to be
// landed.
const shutdownGrace = 45 * time.Second

// runServe is `medallion serve`: the HTTP ingest endpoint and TCP line
// listeners, /healthz, /readyz and /metrics, and either stream mode
// (micro-batches every stream.trigger) or the scheduler (schedule:). The
// server type owns the order of its parts.
func runServe(ctx context.Context, a *app, args []string) error {
	f, err := parseServeFlags(a, args)
	if err != nil {
		return err
	}
	p, ws, err := a.pipelineWorkspace(ctx)
	if err != nil {
		return err
	}
	defer ws.Close()
	s := &server{a: a, p: p, ws: ws, flags: f, reg: metrics.NewRegistry(), errc: make(chan error, 2)}
	defer s.release()
	if err := s.start(ctx); err != nil {
		return err
	}
	return s.wait(ctx)
}

// serveFlags are the command line of `medallion serve`.
type serveFlags struct {
	addr     string
	noStream bool
	noUI     bool
	tls      *tls.Config // nil: plain HTTP
}

// parseServeFlags reads the command line, and the TLS files so that a bad
// one fails the start, before anything listens.
func parseServeFlags(a *app, args []string) (serveFlags, error) {
	fs := a.flags("serve")
	a.createLakeFlag(fs)
	addr := fs.String("addr", ":8080", "HTTP listen address for ingest, health and metrics")
	noStream := fs.Bool("no-stream", false, "run the schedule: section even when stream.trigger is set")
	noUI := fs.Bool("no-ui", false, "do not serve the read-only web dashboard at /")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	tlsKey := fs.String("tls-key", "", "the PEM private key of --tls-cert")
	pos, err := a.parse(fs, args)
	if err != nil {
		return serveFlags{}, err
	}
	if len(pos) > 0 {
		return serveFlags{}, usagef("unexpected argument %q", pos[0])
	}
	tlsConf, err := loadTLS(*tlsCert, *tlsKey)
	if err != nil {
		return serveFlags{}, err
	}
	return serveFlags{addr: *addr, noStream: *noStream, noUI: *noUI, tls: tlsConf}, nil
}

// server is one `medallion serve` process. It owns the order in which its
// parts start and stop.
//
// Start (start): the receiver and its TCP line listeners, then the broker
// sources (both land under a context of their own that outlives the
// command's, so that SIGTERM can still land what they hold), then the HTTP
// listener and its routes (the receiver's, and the dashboard for everything
// else), then the HTTP server, then the job loop: stream mode, the
// scheduler, or nothing (ingest only).
//
// Shutdown (wait, once the command's context ends or a part fails): the
// scheduler or stream loop saw the context end and stops; a job under way
// gives up before its commit, leaving its tables as they were (the next
// start redoes it). Then the broker sources land and acknowledge what they
// delivered, the receiver stops accepting ingest and lands everything it
// acknowledged, the HTTP server shuts down, the landing context is
// cancelled, the scheduler is stopped, and wait returns once the HTTP and
// stream goroutines have ended, all within shutdownGrace. release, deferred
// by runServe, closes what a failed start left open.
type server struct {
	a     *app
	p     *config.Pipeline
	ws    *workspace
	flags serveFlags

	reg   *metrics.Registry
	sayMu sync.Mutex // one line at a time on stdout from the job loops

	rcv         *receiver.Receiver
	landCtx     context.Context // the receiver's and brokers': outlives the command's
	stopLanding context.CancelFunc
	sources     []brokers.Source
	pollers     filePollers // watched folders and prefixes (from: {files: ...})
	ln          net.Listener
	scheme      string // http or https
	dash        *dashboard.Dashboard
	srv         *http.Server
	runner      *jobs.Runner
	sched       *jobs.Scheduler
	wg          sync.WaitGroup // the HTTP server and the stream loop
	errc        chan error     // their failures
}

// start brings the parts up in the order the type's comment gives.
func (s *server) start(ctx context.Context) error {
	if err := s.startReceiver(ctx); err != nil {
		return err
	}
	if err := s.startBrokers(); err != nil {
		return err
	}
	if err := s.listen(ctx); err != nil {
		return err
	}
	if err := s.newRunner(); err != nil {
		return err
	}
	s.serveHTTP()
	s.startMaintenance(ctx)
	return s.startJobs(ctx)
}

// startReceiver starts the HTTP ingest receiver and the TCP line listeners
// the pipeline configures.
func (s *server) startReceiver(ctx context.Context) error {
	lim := s.p.Serve.HTTP
	rcv, err := receiver.New(receiver.Options{
		Store: s.ws.store, Pipeline: s.p, Token: os.Getenv(receiver.EnvToken),
		MaxBodyBytes: lim.MaxBodyBytes, MaxPending: lim.MaxPendingBytes,
		MaxBuffered: lim.MaxBufferedBytes, BodyTimeout: lim.BodyTimeout,
		Log: s.a.log.WithGroup("ingest"), Metrics: s.reg,
	})
	if err != nil {
		return err
	}
	s.rcv = rcv
	// The receiver outlives ctx: on SIGTERM it must still land what it has.
	s.landCtx, s.stopLanding = context.WithCancel(context.WithoutCancel(ctx))
	if err := rcv.Start(s.landCtx); err != nil {
		return err
	}
	tcpAddrs, err := rcv.ListenConfigured(s.landCtx)
	if err != nil {
		return err
	}
	for _, addr := range tcpAddrs {
		fmt.Fprintf(s.a.stdout, "tcp line listener on %s\n", addr)
	}
	return nil
}

// startBrokers starts a consumer per broker source. They land under the
// receiver's context too: on SIGTERM they land and acknowledge what they
// buffered before the process exits.
func (s *server) startBrokers() error {
	for _, name := range s.p.SourceOrder {
		sc := s.p.Sources[name]
		if sc.Broker == nil {
			continue
		}
		src, err := brokers.FromConfig(s.ws.store, sc, s.a.log.WithGroup("broker"))
		if err != nil {
			return err
		}
		if err := src.Start(s.landCtx); err != nil {
			return fmt.Errorf("source %s: %w", name, err)
		}
		s.sources = append(s.sources, src)
		if st := src.Status(); !st.Up {
			fmt.Fprintf(s.a.stdout, "source %s: %s is down (%v); reconnecting in the background\n", name, sc.Broker.Kind, st.Err)
			continue
		}
		fmt.Fprintf(s.a.stdout, "consuming %s for source %s\n", sc.Broker.Kind, name)
	}
	pollers, err := startFilePollers(s.landCtx, s.a, s.p, s.ws.store)
	s.pollers = pollers
	return err
}

// closeSources finishes the file polls under way, then lands and
// acknowledges what the brokers delivered; a second call does nothing.
func (s *server) closeSources() {
	s.pollers.Close()
	s.pollers = nil
	for _, src := range s.sources {
		if err := src.Close(); err != nil {
			s.a.log.Warn("close broker source", "err", err)
		}
	}
	s.sources = nil
}

// listen opens the HTTP(S) listener and builds the server behind it: one
// mux with the receiver's routes, and the dashboard for everything else.
func (s *server) listen(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.flags.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.flags.addr, err)
	}
	s.ln, s.scheme = ln, "http"
	if s.flags.tls != nil {
		s.ln, s.scheme = tls.NewListener(ln, s.flags.tls), "https"
	}
	mux := http.NewServeMux()
	ingest := s.rcv.Handler()
	for _, route := range []string{"/v1/", "/healthz"} {
		mux.Handle(route, ingest)
	}
	status := newSourceStatus(s.reg, ingest, s.sources)
	mux.Handle("/readyz", status)
	mux.Handle("/metrics", status)
	uiNote := ""
	if !s.flags.noUI {
		// Its own engine (and spill directory): never the runner's.
		dash, err := dashboard.New(ctx, dashboard.Options{
			Store: s.ws.store, Pipeline: s.p, Cache: s.ws.cache, Engine: dashboard.DefaultEngineOptions(),
			Token: dashboardToken(), Log: s.a.log.WithGroup("dashboard"),
		})
		if err != nil {
			s.ln.Close()
			return err
		}
		s.dash = dash
		mux.Handle("/", dash)
		uiNote = fmt.Sprintf("; dashboard at %s://%s/", s.scheme, s.ln.Addr())
	}
	s.srv = newHTTPServer(mux)
	if s.dash != nil {
		s.srv.RegisterOnShutdown(s.dash.StopEvents) // open /api/events streams must not hold Shutdown
	}
	fmt.Fprintf(s.a.stdout, "medallion serve on %s://%s (POST /v1/ingest/{source}, /healthz, /readyz, /metrics)%s\n", s.scheme, s.ln.Addr(), uiNote)
	return nil
}

// newRunner makes the runner the stream loop and the scheduler run jobs
// with. Table leases keep a `medallion run` (or another serve) from running
// a table this process runs; a micro-batch or scheduled run waits a little
// for one, then fails and is retried (next trigger, next due time).
func (s *server) newRunner() error {
	r, err := s.ws.runner(s.a, s.p, serveLeaseWait)
	if err != nil {
		return err
	}
	r.Metrics = jobs.NewRunnerMetrics(s.reg)
	r.OnResult = func(jobs.Result) { s.dash.Notify() } // live pages: look for new versions now
	s.runner = r
	return nil
}

// serveHTTP serves the listener until the server is shut down.
func (s *server) serveHTTP() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("http: %w", err)
		}
	}()
}

// startJobs starts stream mode, or else the scheduler, or says that this
// process only takes ingest.
func (s *server) startJobs(ctx context.Context) error {
	switch {
	case s.p.Stream.Trigger > 0 && !s.flags.noStream:
		return s.startStream(ctx)
	case len(s.p.Schedule) > 0:
		return s.startScheduler(ctx)
	default:
		fmt.Fprintln(s.a.stdout, "no stream.trigger and no schedule: serving ingest only")
		return nil
	}
}

// startStream runs the whole plan as a micro-batch every stream.trigger
// when something new landed, until ctx ends.
func (s *server) startStream(ctx context.Context) error {
	plan, err := jobs.Plan(s.p, nil)
	if err != nil {
		return err
	}
	st := &jobs.Stream{
		Runner: s.runner, Plan: plan, Trigger: s.p.Stream.Trigger, Owner: s.runner.Owner,
		Lease: s.runner.Lease, Log: s.a.log.WithGroup("stream"),
		Metrics: jobs.NewStreamMetrics(s.reg), History: true, OnBatch: s.logBatch,
		Compact: s.streamCompactor(),
	}
	fmt.Fprintf(s.a.stdout, "stream mode: a micro-batch every %s when something new landed\n", s.p.Stream.Trigger)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := st.Run(ctx); err != nil {
			s.errc <- err
		}
	}()
	return nil
}

// startScheduler starts the schedule: section's jobs.
func (s *server) startScheduler(ctx context.Context) error {
	entries, err := jobs.ScheduleEntries(s.p)
	if err != nil {
		return err
	}
	opts := jobs.DefaultSchedulerOptions()
	opts.Owner, opts.Log, opts.Lease = s.runner.Owner, s.a.log.WithGroup("scheduler"), s.runner.Lease
	opts.OnRun = func(r jobs.RunRecord) {
		s.runner.Metrics.ObserveScheduled(r)
		s.logScheduled(r)
	}
	sched, err := jobs.NewScheduler(s.ws.store, entries, scheduledRun(s.runner), opts)
	if err != nil {
		return err
	}
	s.sched = sched
	if err := sched.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(s.a.stdout, "scheduler: %d jobs\n", len(entries))
	return nil
}

// wait runs until ctx ends or a part fails, then shuts down in the order
// the type's comment gives and returns the failure, if any.
func (s *server) wait(ctx context.Context) error {
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-s.errc:
	}
	fmt.Fprintln(s.a.stdout, "shutting down: landing what was acknowledged")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	s.closeSources()
	if err := s.rcv.Close(shutCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("flush ingest: %w", err))
	}
	if err := s.srv.Shutdown(shutCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	s.stopLanding()
	if s.sched != nil {
		s.sched.Stop()
	}
	s.wg.Wait()
	return runErr
}

// release closes what is still open when runServe returns: the
// dashboard's engine, the broker sources a start that failed half way
// left running, and the landing context. After wait they are closed
// already but for the dashboard, which serves until the HTTP server stops.
func (s *server) release() {
	if s.dash != nil {
		s.dash.Close()
	}
	s.closeSources()
	if s.stopLanding != nil {
		s.stopLanding()
	}
}

// scheduledRun runs one scheduled job: the tables it names, without their
// upstream (their own schedule runs those).
func scheduledRun(r *jobs.Runner) jobs.RunFunc {
	return func(ctx context.Context, job string, _ time.Time) (jobs.Rows, error) {
		plan, err := jobs.Select(r.Pipeline, []string{job})
		if err != nil {
			return jobs.Rows{}, err
		}
		results, err := r.Run(ctx, plan, nil)
		var rows jobs.Rows
		for _, res := range results {
			rows.In += res.RowsIn
			rows.Out += res.RowsOut
		}
		return rows, err
	}
}

// newHTTPServer sets the timeouts a server facing the network needs: a
// client must send its headers promptly and an idle keep-alive connection
// is closed. There is no ReadTimeout or WriteTimeout: an ingest body has its
// own deadline (serve.http.body_timeout, answered 408), and an ingest answer
// waits for its batch to be landed, which may take longer than any fixed
// write deadline.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// envDashboardToken names the dashboard's own token. Unset, the dashboard
// asks for the ingest token (MEDALLION_INGEST_TOKEN), as before it existed.
const envDashboardToken = "MEDALLION_DASHBOARD_TOKEN"

// dashboardToken is the token the dashboard asks for: its own when set, so
// that people who read the dashboard cannot push rows and senders cannot
// read it.
func dashboardToken() string {
	if t := os.Getenv(envDashboardToken); t != "" {
		return t
	}
	return os.Getenv(receiver.EnvToken)
}

// loadTLS reads --tls-cert and --tls-key (nil, nil when neither is given):
// both or neither, read at start so a bad file fails the start, not the
// first request.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, usagef("--tls-cert and --tls-key go together: give both or neither")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"}, // HTTP/1.1 only: the body deadline and its 408 are written for it
	}, nil
}
