package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/bronze"
	"github.com/medallion-dev/medallion/layers/raw"
)

// streamDiscovery is how a stream's trigger finds landings no batch took:
// from bronze's discovery cursor, as bronze does (docs/discovery.md), so a
// trigger that finds nothing new lists a grace window of the landing
// index, not every manifest ever written. A source whose bronze table has
// no cursor yet is listed in full, as before the index existed.
type streamDiscovery struct {
	cursors map[string]streamCursor // by source
	stamps  map[string]time.Time    // index stamp of each object returned, by "source/sha256"
}

type streamCursor struct {
	at time.Time
	ok bool // bronze has a cursor
}

func (s *Stream) discovery() *streamDiscovery {
	if s.disc == nil {
		s.disc = &streamDiscovery{cursors: map[string]streamCursor{}, stamps: map[string]time.Time{}}
	}
	return s.disc
}

func (s *Stream) grace() time.Duration {
	if g := s.Runner.Pipeline.Bronze.DiscoveryGrace; g > 0 {
		return g
	}
	return bronze.DefaultDiscoveryGrace
}

// bronzeCursor reads the discovery cursor of source from its bronze table.
func (s *Stream) bronzeCursor(ctx context.Context, source string) (streamCursor, error) {
	ref := layers.TableRef{Layer: layers.Bronze, Name: source}
	snap, err := s.bronzeTable(source).Snapshot(ctx)
	if errors.Is(err, delta.ErrNoTable) {
		return streamCursor{}, nil
	}
	if err != nil {
		return streamCursor{}, fmt.Errorf("read %s: %w", ref, err)
	}
	at, ok := bronze.Cursor(snap, source)
	return streamCursor{at: at, ok: ok}, nil
}

// fresh returns the objects of source landed and not in seen.
func (s *Stream) fresh(ctx context.Context, source string, seen map[string]bool) ([]raw.Manifest, error) {
	d := s.discovery()
	cur, loaded := d.cursors[source]
	if !loaded {
		c, err := s.bronzeCursor(ctx, source)
		if err != nil {
			return nil, err
		}
		cur, d.cursors[source] = c, c
	}
	if !cur.ok {
		return s.allManifests(ctx, source, seen)
	}
	entries, err := raw.ListIndex(ctx, s.Runner.Store, source, bronze.ListFrom(cur.at, s.grace()))
	if err != nil {
		return nil, err
	}
	var out []raw.Manifest
	for _, e := range entries {
		key := source + "/" + e.SHA256
		if seen[key] {
			continue
		}
		m, err := raw.ReadManifest(ctx, s.Runner.Store, source, e.SHA256)
		if errors.Is(err, lake.ErrNotExist) {
			continue // in flight: a later trigger sees it
		}
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: %w", key, err)
		}
		if !e.Lands(m) {
			continue
		}
		d.stamps[key] = e.Stamp
		out = append(out, m)
	}
	return out, nil
}

// allManifests lists every manifest of source not in seen: the discovery
// of a source whose bronze table has no cursor yet. The index is listed
// too, for the stamps settle prunes seen by.
func (s *Stream) allManifests(ctx context.Context, source string, seen map[string]bool) ([]raw.Manifest, error) {
	shas, err := raw.ListManifests(ctx, s.Runner.Store, source)
	if err != nil {
		return nil, err
	}
	entries, err := raw.ListIndex(ctx, s.Runner.Store, source, time.Time{})
	if err != nil {
		return nil, err
	}
	stamps := make(map[string]raw.IndexEntry, len(entries))
	for _, e := range entries {
		stamps[e.SHA256] = e
	}
	var out []raw.Manifest
	for _, sha := range shas {
		if seen[source+"/"+sha] {
			continue
		}
		m, err := raw.ReadManifest(ctx, s.Runner.Store, source, sha)
		if errors.Is(err, lake.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read manifest %s/%s: %w", source, sha, err)
		}
		if e, ok := stamps[sha]; ok && e.Lands(m) {
			s.discovery().stamps[source+"/"+sha] = e.Stamp
		}
		out = append(out, m)
	}
	return out, nil
}

// settle runs after a batch: it re-reads bronze's cursors and forgets the
// objects of seen that no listing from them can return again, so seen
// stays as small as the grace window.
func (s *Stream) settle(ctx context.Context, seen map[string]bool) {
	d := s.discovery()
	for _, src := range s.Runner.Pipeline.SourceOrder {
		c, err := s.bronzeCursor(ctx, src)
		if err != nil {
			s.Log.Warn("stream: read the discovery cursor", "source", src, "err", err)
			delete(d.cursors, src) // read again at the next trigger
			continue
		}
		d.cursors[src] = c
		if !c.ok {
			continue
		}
		from := bronze.ListFrom(c.at, s.grace())
		for key := range seen {
			if !strings.HasPrefix(key, src+"/") {
				continue
			}
			if at, ok := d.stamps[key]; !ok || at.Before(from) {
				delete(seen, key)
				delete(d.stamps, key)
			}
		}
	}
}
