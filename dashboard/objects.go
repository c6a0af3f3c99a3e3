package dashboard

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// qualityObjects is how many raw objects (one per file, HTTP request or
// message batch) the per-object quality table shows: the newest.
const qualityObjects = 50

// objectQuality is one raw object's quality: its rows quarantined by
// bronze and its rows that kept undeclared keys in _rescued (schema
// drift). An HTTP ingest request lands as one object, so this is the
// per-request view.
type objectQuality struct {
	Source      string    `json:"source"`
	Object      string    `json:"object"` // the raw key (or in-place URL): _source_file, quarantine's source_file
	Time        time.Time `json:"time,omitzero"`
	Quarantined int64     `json:"quarantined"`
	Rescued     int64     `json:"rescued"`
}

// qualityByObject merges the newest objects with quarantined rows and the
// newest with rescued rows, newest first, at most qualityObjects.
func (d *Dashboard) qualityByObject(ctx context.Context) ([]objectQuality, error) {
	byKey := map[[2]string]*objectQuality{}
	add := func(rows []objectQuality, quarantined bool) {
		for _, o := range rows {
			k := [2]string{o.Source, o.Object}
			m := byKey[k]
			if m == nil {
				m = &objectQuality{Source: o.Source, Object: o.Object}
				byKey[k] = m
			}
			if quarantined {
				m.Quarantined = o.Quarantined
			} else {
				m.Rescued = o.Rescued
			}
			if o.Time.After(m.Time) {
				m.Time = o.Time
			}
		}
	}
	qref := layers.Quarantine()
	qsnap, err := d.snaps.get(ctx, qref)
	if err != nil {
		return nil, err
	}
	if qsnap != nil {
		rows, err := d.objects.get(qref, qsnap.Version, func() ([]objectQuality, error) {
			return d.objectRows(ctx, qref, qsnap.Version, `SELECT coalesce(source, ''), coalesce(source_file, ''), max(quarantined_at), count(*)
				FROM `+view(qref)+` GROUP BY ALL ORDER BY 3 DESC NULLS LAST, 2 DESC LIMIT `+strconv.Itoa(qualityObjects))
		})
		if err != nil {
			return nil, err
		}
		add(rows, true)
	}
	for _, name := range d.o.Pipeline.SourceOrder {
		ref := layers.TableRef{Layer: layers.Bronze, Name: name}
		snap, err := d.snaps.get(ctx, ref)
		if err != nil {
			return nil, err
		}
		if snap == nil {
			continue
		}
		rows, err := d.objects.get(ref, snap.Version, func() ([]objectQuality, error) {
			return d.objectRows(ctx, ref, snap.Version, `SELECT `+warehouse.QuoteString(name)+`, coalesce(_source_file, ''), max(_ingested_at),
				count(*) FILTER (WHERE `+rescuedRow+`) AS n
				FROM `+view(ref)+` GROUP BY 1, 2 HAVING n > 0 ORDER BY 3 DESC NULLS LAST, 2 DESC LIMIT `+strconv.Itoa(qualityObjects))
		})
		if err != nil {
			return nil, err
		}
		add(rows, false)
	}
	out := make([]objectQuality, 0, len(byKey))
	for _, o := range byKey {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b objectQuality) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(b.Object, a.Object), cmp.Compare(a.Source, b.Source))
	})
	return out[:min(len(out), qualityObjects)], nil
}

// objectRows runs query (source, object, time, count) on ref at version;
// the count goes to Quarantined and Rescued alike, the caller keeps one.
func (d *Dashboard) objectRows(ctx context.Context, ref layers.TableRef, version int64, query string) ([]objectQuality, error) {
	var out []objectQuality
	err := d.rd.with(ctx, ref, version, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		return scanAll(rows, func() error {
			var o objectQuality
			var t sql.NullTime
			if err := rows.Scan(&o.Source, &o.Object, &t, &o.Quarantined); err != nil {
				return err
			}
			o.Rescued = o.Quarantined
			if t.Valid {
				o.Time = t.Time.UTC()
			}
			out = append(out, o)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("quality per object of %s: %w", ref, err)
	}
	return out, nil
}
