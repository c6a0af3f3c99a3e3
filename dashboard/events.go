package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/medallion-dev/medallion/layers"
)

// Live updates. `serve` calls Notify after each job it runs (stream
// micro-batches and scheduled runs alike); the dashboard then reads every
// table's latest version and sends a "commit" event to each open
// /api/events stream for each table whose version moved. With streams open
// it also looks every watchEvery by itself, so commits of another process
// (`medallion run`) reach the pages too, only later.
const (
	watchEvery     = 5 * time.Second
	heartbeatEvery = 15 * time.Second
	streamRetryMS  = 1000 // what EventSource waits before reconnecting
)

// liveHeader marks live.js's fetch of a page: the panels only.
const liveHeader = "X-Medallion-Live"

// commitEvent is the data of a "commit" event.
type commitEvent struct {
	Table   string `json:"table"`
	Version int64  `json:"version"`
}

// hub fans commit events out to the open streams.
type hub struct {
	mu       sync.Mutex
	subs     map[chan []commitEvent]struct{}
	versions map[string]int64 // last version seen per table (-1: none)
	stopped  bool
	stop     chan struct{} // closed by StopEvents: streams end
	kick     chan struct{} // Notify: look now
}

func newHub() *hub {
	return &hub{subs: map[chan []commitEvent]struct{}{}, stop: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// Notify tells the dashboard a job ran, so it looks for new table versions
// now. It never blocks, and is safe on a nil Dashboard (serve --no-ui).
func (d *Dashboard) Notify() {
	if d == nil {
		return
	}
	select {
	case d.hub.kick <- struct{}{}:
	default:
	}
}

// StopEvents ends the open event streams (the server is shutting down:
// a stream would otherwise hold http.Server.Shutdown until its deadline).
func (d *Dashboard) StopEvents() {
	d.hub.mu.Lock()
	defer d.hub.mu.Unlock()
	if !d.hub.stopped {
		d.hub.stopped = true
		close(d.hub.stop)
	}
}

func (h *hub) subscribe() (chan []commitEvent, func()) {
	c := make(chan []commitEvent, 8)
	h.mu.Lock()
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}
}

func (h *hub) listeners() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// publish sends evs to every stream; a stream too slow to take them misses
// them (its page catches up on the next event: it always reloads the
// latest version).
func (h *hub) publish(evs []commitEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- evs:
		default:
		}
	}
}

// watch runs until ctx ends: on each Notify, and every watchEvery while a
// stream is open, it compares the tables' versions with the last seen.
func (d *Dashboard) watch(ctx context.Context) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	d.changed(ctx) // the versions as of the start: no event for them
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.hub.kick:
		case <-t.C:
			if d.hub.listeners() == 0 {
				continue
			}
		}
		if evs := d.changed(ctx); len(evs) > 0 {
			d.hub.publish(evs)
		}
	}
}

// changed reads every table's latest version (bypassing the snapshot
// cache's TTL) and returns those that moved since the last look.
func (d *Dashboard) changed(ctx context.Context) []commitEvent {
	var evs []commitEvent
	for _, ref := range layers.Tables(d.o.Pipeline) {
		snap, err := d.snaps.refresh(ctx, ref)
		if err != nil {
			d.o.Log.Warn("dashboard events", "table", ref.String(), "err", err)
			continue
		}
		v := int64(-1)
		if snap != nil {
			v = snap.Version
		}
		d.hub.mu.Lock()
		old, seen := d.hub.versions[ref.String()]
		if d.hub.versions == nil {
			d.hub.versions = map[string]int64{}
		}
		d.hub.versions[ref.String()] = v
		d.hub.mu.Unlock()
		if seen && old != v && v >= 0 {
			evs = append(evs, commitEvent{Table: ref.String(), Version: v})
		}
	}
	return evs
}

// apiEvents is GET /api/events: a text/event-stream of "commit" events,
// one per table committed, with a comment every heartbeatEvery so proxies
// keep the connection. A client that cannot keep a stream open polls.
func (d *Dashboard) apiEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	c, done := d.hub.subscribe()
	defer done()
	if _, err := fmt.Fprintf(w, "retry: %d\n: medallion commits\n\n", streamRetryMS); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return // no streaming through this writer: the page polls
	}
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.hub.stop:
			return
		case <-beat.C:
			_, _ = fmt.Fprint(w, ": heartbeat\n\n")
		case evs := <-c:
			for _, ev := range evs {
				b, _ := json.Marshal(ev)
				_, _ = fmt.Fprintf(w, "event: commit\ndata: %s\n\n", b)
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
