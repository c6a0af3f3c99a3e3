package dashboard

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/medallion-dev/medallion/layers"
)

// nodeCounts are the quality counts the lineage shows per node: rows
// quarantined per bronze table and rows late per silver table, keyed by
// the node's table name (bronze.meters, silver.usage_1m).
type nodeCounts map[string]int64

// nodeQuality counts bronze._quarantine by source and silver._late by
// table, each cached while its table's version stays.
func (d *Dashboard) nodeQuality(ctx context.Context) (quarantined, late nodeCounts, err error) {
	quarantined, err = d.countBy(ctx, &d.quarantineBy, layers.Quarantine(), "source", layers.Bronze)
	if err != nil {
		return nil, nil, err
	}
	late, err = d.countBy(ctx, &d.lateBy, layers.Late(), `"table"`, layers.Silver)
	if err != nil {
		return nil, nil, err
	}
	return quarantined, late, nil
}

// countBy counts ref's rows grouped by col, whose values name a table of
// layer (with or without the layer's prefix). A table not created yet
// counts nothing.
func (d *Dashboard) countBy(ctx context.Context, c *versionCache[nodeCounts], ref layers.TableRef, col string, layer layers.Layer) (nodeCounts, error) {
	snap, err := d.snaps.get(ctx, ref)
	if err != nil || snap == nil {
		return nodeCounts{}, err
	}
	return c.get(ref, snap.Version, func() (nodeCounts, error) {
		out := nodeCounts{}
		err := d.rd.with(ctx, ref, snap.Version, func(db *sql.DB) error {
			rows, err := db.QueryContext(ctx, "SELECT coalesce("+col+", ''), count(*) FROM "+view(ref)+" GROUP BY 1")
			if err != nil {
				return err
			}
			return scanAll(rows, func() error {
				var name string
				var n int64
				if err := rows.Scan(&name, &n); err != nil {
					return err
				}
				if prefix := string(layer) + "."; !strings.HasPrefix(name, prefix) {
					name = prefix + name
				}
				out[name] += n
				return nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("count %s by %s: %w", ref, col, err)
		}
		return out, nil
	})
}
