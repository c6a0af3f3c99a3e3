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

	"github.com/medallion-dev/medallion/internal/dashboard"
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
// (micro-batches every stream.trigger) or the scheduler (schedule:).
func runServe(ctx context.Context, a *app, args []string) error {
	fs := a.flags("serve")
	addr := fs.String("addr", ":8080", "HTTP listen address for ingest, health and metrics")
	noStream := fs.Bool("no-stream", false, "run the schedule: section even when stream.trigger is set")
	noUI := fs.Bool("no-ui", false, "do not serve the read-only web dashboard at /")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	tlsKey := fs.String("tls-key", "", "the PEM private key of --tls-cert")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	tlsConf, err := loadTLS(*tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	p, err := a.loadPipeline()
	if err != nil {
		return err
	}
	ws, err := a.openWorkspace(ctx, p)
	if err != nil {
		return err
	}
	defer ws.Close()
	st := ws.store

	reg := metrics.NewRegistry()
	lim := p.Serve.HTTP
	rcv, err := receiver.New(receiver.Options{
		Store: st, Pipeline: p, Token: os.Getenv(receiver.EnvToken),
		MaxBodyBytes: lim.MaxBodyBytes, MaxPending: lim.MaxPendingBytes,
		MaxBuffered: lim.MaxBufferedBytes, BodyTimeout: lim.BodyTimeout,
		Log: a.log.WithGroup("ingest"), Metrics: reg,
	})
	if err != nil {
		return err
	}
	// The receiver outlives ctx: on SIGTERM it must still land what it has.
	rcvCtx, stopReceiver := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReceiver()
	if err := rcv.Start(rcvCtx); err != nil {
		return err
	}
	tcpAddrs, err := rcv.ListenConfigured(rcvCtx)
	if err != nil {
		return err
	}
	for _, addr := range tcpAddrs {
		fmt.Fprintf(a.stdout, "tcp line listener on %s\n", addr)
	}
	// Broker sources land under the receiver's context too: on SIGTERM they
	// land and acknowledge what they buffered before the process exits.
	var sources []brokers.Source
	closeSources := func() {
		for _, src := range sources {
			if err := src.Close(); err != nil {
				a.log.Warn("close broker source", "err", err)
			}
		}
		sources = nil
	}
	defer closeSources()
	for _, name := range p.SourceOrder {
		sc := p.Sources[name]
		if sc.Broker == nil {
			continue
		}
		src, err := brokers.FromConfig(st, sc, a.log.WithGroup("broker"))
		if err != nil {
			return err
		}
		if err := src.Start(rcvCtx); err != nil {
			return fmt.Errorf("source %s: %w", name, err)
		}
		sources = append(sources, src)
		fmt.Fprintf(a.stdout, "consuming %s for source %s\n", sc.Broker.Kind, name)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	scheme := "http"
	if tlsConf != nil {
		ln, scheme = tls.NewListener(ln, tlsConf), "https"
	}
	// One mux: the receiver's routes, and the dashboard for everything else.
	mux := http.NewServeMux()
	ingest := rcv.Handler()
	for _, route := range []string{"/v1/", "/healthz", "/readyz", "/metrics"} {
		mux.Handle(route, ingest)
	}
	uiNote := ""
	recent := jobs.NewRecentRuns(0) // stream micro-batches, for the runs page
	var dash *dashboard.Dashboard   // nil with --no-ui
	if !*noUI {
		// Its own engine (and spill directory): never the runner's.
		dash, err = dashboard.New(ctx, dashboard.Options{
			Store: st, Pipeline: p, Cache: ws.cache, Engine: dashboard.DefaultEngineOptions(),
			Token: dashboardToken(), Log: a.log.WithGroup("dashboard"),
			Recent: recent,
		})
		if err != nil {
			ln.Close()
			return err
		}
		defer dash.Close()
		mux.Handle("/", dash)
		uiNote = fmt.Sprintf("; dashboard at %s://%s/", scheme, ln.Addr())
	}
	srv := newHTTPServer(mux)
	if dash != nil {
		srv.RegisterOnShutdown(dash.StopEvents) // open /api/events streams must not hold Shutdown
	}
	fmt.Fprintf(a.stdout, "medallion serve on %s://%s (POST /v1/ingest/{source}, /healthz, /readyz, /metrics)%s\n", scheme, ln.Addr(), uiNote)

	lo, err := leaseOptions()
	if err != nil {
		return err
	}
	owner := jobs.DefaultOwner()
	// Table leases keep a `medallion run` (or another serve) from running a
	// table this process runs; a micro-batch or scheduled run waits a little
	// for one, then fails and is retried (next trigger, next due time).
	runner := &jobs.Runner{Store: st, Pipeline: p, Engine: ws.eng, Cache: ws.cache, Log: a.log, Metrics: jobs.NewRunnerMetrics(reg),
		Owner: owner, Lease: lo, LeaseWait: serveLeaseWait,
		OnResult: func(jobs.Result) { dash.Notify() }} // live pages: look for new versions now
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()

	var sched *jobs.Scheduler
	switch {
	case p.Stream.Trigger > 0 && !*noStream:
		plan, err := jobs.Plan(p, nil)
		if err != nil {
			return err
		}
		s := &jobs.Stream{
			Runner: runner, Plan: plan, Trigger: p.Stream.Trigger, Owner: owner,
			Lease: lo, Log: a.log.WithGroup("stream"),
			Metrics: jobs.NewStreamMetrics(reg), Recent: recent,
		}
		fmt.Fprintf(a.stdout, "stream mode: a micro-batch every %s when something new landed\n", p.Stream.Trigger)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx); err != nil {
				errc <- err
			}
		}()
	case len(p.Schedule) > 0:
		entries, err := jobs.ScheduleEntries(p)
		if err != nil {
			return err
		}
		opts := jobs.DefaultSchedulerOptions()
		opts.Owner, opts.Log, opts.Lease = owner, a.log.WithGroup("scheduler"), lo
		opts.OnRun = runner.Metrics.ObserveScheduled
		sched, err = jobs.NewScheduler(st, entries, scheduledRun(runner), opts)
		if err != nil {
			return err
		}
		if err := sched.Start(ctx); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "scheduler: %d jobs\n", len(entries))
	default:
		fmt.Fprintln(a.stdout, "no stream.trigger and no schedule: serving ingest only")
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	// Shutdown: the scheduler or stream loop saw ctx end and stops; a job
	// under way gives up before its commit, leaving its tables as they were
	// (the next start redoes it). Then: land and acknowledge what the
	// brokers delivered, stop accepting ingest and land everything
	// acknowledged, stop the HTTP server.
	fmt.Fprintln(a.stdout, "shutting down: landing what was acknowledged")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	closeSources() // land and acknowledge what the brokers delivered
	if err := rcv.Close(shutCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("flush ingest: %w", err))
	}
	if err := srv.Shutdown(shutCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	stopReceiver()
	if sched != nil {
		sched.Stop()
	}
	wg.Wait()
	return runErr
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
