// Package dashboard is the read-only web UI that `medallion serve` shows at
// /: every table with its freshness, the lineage from raw to PostgreSQL, a
// table's schema, history, sample rows and a live chart of its time series,
// the quality of each run (quarantined and late rows) and the job runs with
// their lease holders. JSON under /api/ carries the same data.
//
// The pages are rendered on the server with html/template; the only
// scripts are a hand-written SVG chart (static/chart.js: the series API,
// downsampled on the server to the chart's pixels) and the live updates
// (static/live.js: server-sent events from /api/events, see events.go,
// polling where a stream cannot be held). Templates, CSS and script are embedded with
// go:embed. There is deliberately no front-end framework, no build step, no
// npm at run time and nothing fetched from the internet: the binary serves
// a few hundred lines we own, and works offline and behind strict egress.
//
// Rows are read with the dashboard's own DuckDB engine (never the runner's),
// attaching only the table a request needs at the version it saw; every
// statement is built here from quoted identifiers and literals, never from
// user SQL. Table versions are read per request from the Delta log, cached
// about a second per table so a page of many tables stays cheap on S3.
package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/warehouse"
)

//go:embed templates/*.html static/*
var assets embed.FS

// DefaultSnapshotTTL is how long a table's version is reused before the
// Delta log is read again.
const DefaultSnapshotTTL = time.Second

// Options configure a Dashboard. Store and Pipeline are required.
type Options struct {
	Store    lake.Store
	Pipeline *config.Pipeline
	// Cache holds local copies of lake objects for S3 lakes (the same
	// cache the rest of medallion uses).
	Cache *lake.Cache
	// Engine bounds the dashboard's own DuckDB engine; see
	// DefaultEngineOptions.
	Engine warehouse.Options
	// Token, when set, is required on every page and API call, as
	// "Authorization: Bearer <token>", or typed in once at /login, which
	// sets a session cookie (CookieName) that holds a signed expiry, never
	// the token.
	Token string
	// SessionTTL is how long a login lasts; 0: DefaultSessionTTL.
	SessionTTL time.Duration
	// SnapshotTTL is how long a table version is cached; 0:
	// DefaultSnapshotTTL.
	SnapshotTTL time.Duration
	// Log receives request errors; nil discards them.
	Log *slog.Logger
	// Recent, when set, adds runs kept in memory (stream mode's
	// micro-batches, which are not written to the lake's run history) to
	// the runs page.
	Recent RecentRuns
	// Now tells time (freshness); nil: time.Now.
	Now func() time.Time
}

// RecentRuns is where the runs page finds runs kept in memory.
type RecentRuns interface {
	Recent(limit int) []jobs.RunRecord
}

// DefaultEngineOptions bounds the dashboard's engine well below a job's:
// it reads a sample, a chart's points and a few aggregates.
func DefaultEngineOptions() warehouse.Options {
	return warehouse.Options{MemoryLimit: "512MB", Threads: 2}
}

// Dashboard serves the UI and its JSON API. Create it with New and Close it
// to release its DuckDB engine.
type Dashboard struct {
	o     Options
	snaps *snapCache
	rd    *reader
	pages map[string]*template.Template
	mux   *http.ServeMux
	runs  *ttlCache[runsData]

	sessionKey []byte // signs session cookies; derived from Options.Token

	hub       *hub               // live commit events (/api/events)
	stopWatch context.CancelFunc // ends the events watcher

	history   versionCache[[]delta.CommitInfo] // the last historyRows commits
	lateTimes versionCache[map[string]time.Time]
	rescued   versionCache[[]trendPoint]    // per bronze table: rescued rows per run
	lateRuns  versionCache[[]trendPoint]    // per silver table: late rows per run
	objects   versionCache[[]objectQuality] // per bronze table and quarantine: its newest objects' counts

	quarantineBy versionCache[nodeCounts] // quarantined rows per bronze table
	lateBy       versionCache[nodeCounts] // late rows per silver table
}

// New opens the dashboard's engine and parses its templates.
func New(ctx context.Context, o Options) (*Dashboard, error) {
	if o.Store == nil || o.Pipeline == nil {
		return nil, errors.New("dashboard: store and pipeline are required")
	}
	if o.SnapshotTTL < 0 {
		return nil, fmt.Errorf("dashboard: snapshot ttl %s is negative", o.SnapshotTTL)
	}
	if o.SnapshotTTL == 0 {
		o.SnapshotTTL = DefaultSnapshotTTL
	}
	if o.SessionTTL < 0 {
		return nil, fmt.Errorf("dashboard: session ttl %s is negative", o.SessionTTL)
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	eng, err := warehouse.Open(ctx, o.Engine)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	d := &Dashboard{
		o:     o,
		snaps: newSnapCache(o.Store, o.SnapshotTTL, o.Now),
		rd:    newReader(eng, o.Store, o.Cache),
		pages: pages,
		runs:  &ttlCache[runsData]{ttl: 2 * o.SnapshotTTL, now: o.Now},

		sessionKey: sessionKey(o.Token),
		hub:        newHub(),
	}
	d.mux = d.routes()
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	d.stopWatch = stop
	go d.watch(wctx)
	return d, nil
}

// Close ends the event streams and closes the dashboard's DuckDB engine.
func (d *Dashboard) Close() error {
	d.stopWatch()
	d.StopEvents()
	return d.rd.close()
}

func (d *Dashboard) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheControl(http.FileServerFS(static))))
	mux.HandleFunc("GET /login", d.serveLoginForm)
	mux.HandleFunc("POST /login", d.serveLogin)
	mux.Handle("GET /{$}", d.auth(d.servePipeline))
	mux.Handle("GET /quality", d.auth(d.serveQuality))
	mux.Handle("GET /runs", d.auth(d.serveRuns))
	mux.Handle("GET /tables/{table}", d.auth(d.serveTable))
	mux.Handle("GET /api/pipeline", d.auth(d.apiPipeline))
	mux.Handle("GET /api/tables/{table}", d.auth(d.apiTable))
	mux.Handle("GET /api/tables/{table}/series", d.auth(d.apiSeries))
	mux.Handle("GET /api/quality", d.auth(d.apiQuality))
	mux.Handle("GET /api/runs", d.auth(d.apiRuns))
	mux.Handle("GET /api/events", d.auth(d.apiEvents))
	mux.Handle("GET /", d.auth(d.serveNotFound))
	return mux
}

// ServeHTTP serves the UI. It is read-only: any method but GET and HEAD is
// refused with 405, except POST /login.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	// Everything is served from here: no other origin is ever needed.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !(r.Method == http.MethodPost && r.URL.Path == "/login") {
		w.Header().Set("Allow", "GET, HEAD")
		d.errorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed",
			fmt.Sprintf("%s %s: the dashboard is read-only (GET and HEAD only).", r.Method, r.URL.Path), nil)
		return
	}
	d.mux.ServeHTTP(w, r)
}

func cacheControl(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// tokenOK compares in constant time over SHA-256 digests, so neither the
// content nor the length of the token leaks through timing.
func (d *Dashboard) tokenOK(got string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(d.o.Token))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// authorized reports whether r carries the token (bearer header) or a
// session cookie that is valid now.
func (d *Dashboard) authorized(r *http.Request) bool {
	if d.o.Token == "" {
		return true
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
		if ok && strings.EqualFold(scheme, "Bearer") && d.tokenOK(strings.TrimSpace(tok)) {
			return true
		}
	}
	if c, err := r.Cookie(CookieName); err == nil && sessionOK(d.sessionKey, c.Value, d.o.Now()) {
		return true
	}
	return false
}

// auth guards a page or API route. A ?token= on a GET sets the cookie and
// redirects to the same URL without it (so the token leaves the address
// bar and the history).
func (d *Dashboard) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.o.Token != "" && r.URL.Query().Has("token") {
			if !d.tokenOK(r.URL.Query().Get("token")) {
				d.unauthorized(w, r, "That token is wrong.")
				return
			}
			d.setCookie(w, r)
			q := r.URL.Query()
			q.Del("token")
			u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
		if !d.authorized(r) {
			d.unauthorized(w, r, "")
			return
		}
		h(w, r)
	})
}

// setCookie starts a session: the cookie is HttpOnly (no script reads it),
// SameSite=Strict (no other site's page sends it), Secure when the browser
// came over HTTPS, and ends after SessionTTL both in the browser and here
// (the expiry is signed into the value).
func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request) {
	exp := d.o.Now().Add(d.o.SessionTTL)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: sessionValue(d.sessionKey, exp), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(r),
		MaxAge: int(d.o.SessionTTL / time.Second),
	})
}

func (d *Dashboard) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="medallion"`)
	if isAPI(r) {
		writeJSONError(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer $MEDALLION_DASHBOARD_TOKEN (or $MEDALLION_INGEST_TOKEN when no dashboard token is set)")
		return
	}
	d.render(w, r, http.StatusUnauthorized, "login.html", loginPage{Title: "Sign in", Error: msg})
}

type loginPage struct {
	Title string
	Error string
}

func (d *Dashboard) serveLoginForm(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, http.StatusOK, "login.html", loginPage{Title: "Sign in"})
}

func (d *Dashboard) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		d.render(w, r, http.StatusBadRequest, "login.html", loginPage{Title: "Sign in", Error: "Could not read the form: " + err.Error()})
		return
	}
	if d.o.Token != "" && !d.tokenOK(r.PostForm.Get("token")) {
		d.unauthorized(w, r, "That token is wrong.")
		return
	}
	if d.o.Token != "" {
		d.setCookie(w, r)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// fail reports an error reading data: 500 with the error, logged.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	d.o.Log.Warn("dashboard", "path", r.URL.Path, "err", err)
	if isAPI(r) {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	d.errorPage(w, r, http.StatusInternalServerError, "Could not read the lake", err.Error(), nil)
}

func (d *Dashboard) serveNotFound(w http.ResponseWriter, r *http.Request) {
	if isAPI(r) {
		writeJSONError(w, http.StatusNotFound, "no such API: "+r.URL.Path)
		return
	}
	d.errorPage(w, r, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".", nil)
}
