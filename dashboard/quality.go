package dashboard

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// qualityRun is one run's quality: a bronze batch's quarantined rows, or a
// silver batch's late rows (the two name their batches differently, so a
// run has one or the other).
type qualityRun struct {
	Run         string    `json:"run"`
	Label       string    `json:"label"` // short form for the page
	Time        time.Time `json:"time,omitzero"`
	Quarantined int64     `json:"quarantined"`
	Late        int64     `json:"late"`
	Where       string    `json:"where"`       // sources or silver tables involved
	TopReasons  []string  `json:"top_reasons"` // up to 3, "reason (count)"
}

type reasonRow struct {
	Reason string `json:"reason"`
	Column string `json:"column"`
	Count  int64  `json:"count"`
}

// qualityPage is the data of /quality.
type qualityPage struct {
	Runs    []*qualityRun `json:"runs"`
	Reasons []reasonRow   `json:"reasons"`
	// QuarantineRows and LateRows are the tables' totals.
	QuarantineRows int64 `json:"quarantine_rows"`
	LateRows       int64 `json:"late_rows"`
	// Rescued and LateTrend are the quality trends: rows rescued by
	// schema drift per bronze run, late rows per silver run.
	Rescued   *trend `json:"rescued_trend"`
	LateTrend *trend `json:"late_trend"`
	// Objects are the newest raw objects (files, HTTP requests) with
	// quarantined or rescued rows.
	Objects []objectQuality `json:"objects"`
}

func (p qualityPage) title() string { return "Quality" }

// runSet is the quality page's runs by id.
type runSet map[string]*qualityRun

// get returns the run id, adding it when it is new.
func (rs runSet) get(id string) *qualityRun {
	r := rs[id]
	if r == nil {
		r = &qualityRun{Run: id, Label: runLabel(id), TopReasons: []string{}}
		rs[id] = r
	}
	return r
}

// qualityData is the data of /quality: recent runs with their quarantined
// and late rows, the top reasons and the trends.
func (d *Dashboard) qualityData(ctx context.Context) (*qualityPage, error) {
	pg := &qualityPage{Runs: []*qualityRun{}, Reasons: []reasonRow{}}
	runs := runSet{}
	if err := d.quarantineQuality(ctx, pg, runs); err != nil {
		return nil, err
	}
	if err := d.lateQuality(ctx, pg, runs); err != nil {
		return nil, err
	}
	var err error
	for _, r := range runs {
		pg.Runs = append(pg.Runs, r)
	}
	slices.SortFunc(pg.Runs, func(a, b *qualityRun) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.Run, a.Run)
	})
	if len(pg.Runs) > qualityRuns {
		pg.Runs = pg.Runs[:qualityRuns]
	}
	if pg.Rescued, err = d.rescuedTrend(ctx); err != nil {
		return nil, err
	}
	if pg.LateTrend, err = d.lateTrend(ctx); err != nil {
		return nil, err
	}
	if pg.Objects, err = d.qualityByObject(ctx); err != nil {
		return nil, err
	}
	return pg, nil
}

// quarantineQuality adds each recent run's quarantined rows and top
// reasons to runs, and the overall top reasons and total to pg.
func (d *Dashboard) quarantineQuality(ctx context.Context, pg *qualityPage, runs runSet) error {
	qref := layers.Quarantine()
	qsnap, err := d.snaps.get(ctx, qref)
	if err != nil {
		return err
	}
	if qsnap != nil {
		err := d.rd.with(ctx, qref, qsnap.Version, func(db *sql.DB) error {
			q := view(qref)
			qs, _ := qsnap.Schema()
			col := warehouse.QuoteIdent(quarantineColumn(qs))
			rows, err := db.QueryContext(ctx, `SELECT coalesce(batch_id, ''), max(quarantined_at), count(*), string_agg(DISTINCT source, ', ' ORDER BY source)
				FROM `+q+` GROUP BY ALL ORDER BY 2 DESC NULLS LAST, 1 DESC LIMIT `+fmt.Sprint(qualityRuns))
			if err != nil {
				return fmt.Errorf("quarantine runs: %w", err)
			}
			err = scanAll(rows, func() error {
				var id string
				var t sql.NullTime
				var n int64
				var where sql.NullString
				if err := rows.Scan(&id, &t, &n, &where); err != nil {
					return err
				}
				r := runs.get(id)
				r.Quarantined, r.Where = n, where.String
				if t.Valid {
					r.Time = t.Time.UTC()
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("quarantine runs: %w", err)
			}
			rows, err = db.QueryContext(ctx, `SELECT id, reason, n FROM (
				SELECT coalesce(batch_id, '') AS id, coalesce(reason, '(none)') AS reason, count(*) AS n FROM `+q+` GROUP BY ALL)
				QUALIFY row_number() OVER (PARTITION BY id ORDER BY n DESC, reason) <= 3 ORDER BY id, n DESC, reason`)
			if err != nil {
				return fmt.Errorf("quarantine reasons per run: %w", err)
			}
			err = scanAll(rows, func() error {
				var id, reason string
				var n int64
				if err := rows.Scan(&id, &reason, &n); err != nil {
					return err
				}
				if r := runs[id]; r != nil {
					r.TopReasons = append(r.TopReasons, fmt.Sprintf("%s (%d)", reason, n))
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("quarantine reasons per run: %w", err)
			}
			rows, err = db.QueryContext(ctx, `SELECT coalesce(reason, '(none)'), coalesce(`+col+`, ''), count(*) AS n FROM `+q+`
				GROUP BY ALL ORDER BY n DESC, 1, 2 LIMIT `+fmt.Sprint(topReasons))
			if err != nil {
				return fmt.Errorf("top reasons: %w", err)
			}
			err = scanAll(rows, func() error {
				var rr reasonRow
				if err := rows.Scan(&rr.Reason, &rr.Column, &rr.Count); err != nil {
					return err
				}
				pg.Reasons = append(pg.Reasons, rr)
				return nil
			})
			if err != nil {
				return fmt.Errorf("top reasons: %w", err)
			}
			return db.QueryRowContext(ctx, "SELECT count(*) FROM "+q).Scan(&pg.QuarantineRows)
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", qref, err)
		}
	}
	return nil
}

// lateQuality adds each recent run's late rows to runs and the total to pg.
func (d *Dashboard) lateQuality(ctx context.Context, pg *qualityPage, runs runSet) error {
	lref := layers.Late()
	lsnap, err := d.snaps.get(ctx, lref)
	if err != nil {
		return err
	}
	if lsnap != nil {
		// A late batch has no time column of its own: its commit says when.
		when, err := d.lateTimes.get(lref, lsnap.Version, func() (map[string]time.Time, error) {
			return lateCommitTimes(ctx, d, lref)
		})
		if err != nil {
			return err
		}
		err = d.rd.with(ctx, lref, lsnap.Version, func(db *sql.DB) error {
			q := view(lref)
			rows, err := db.QueryContext(ctx, `SELECT coalesce(batch, ''), count(*), string_agg(DISTINCT "table", ', ' ORDER BY "table")
				FROM `+q+` GROUP BY ALL ORDER BY 1 DESC LIMIT `+fmt.Sprint(qualityRuns))
			if err != nil {
				return fmt.Errorf("late runs: %w", err)
			}
			err = scanAll(rows, func() error {
				var id string
				var n int64
				var where sql.NullString
				if err := rows.Scan(&id, &n, &where); err != nil {
					return err
				}
				r := runs.get(id)
				r.Late = n
				r.Where = strings.TrimPrefix(strings.Join([]string{r.Where, where.String}, ", "), ", ")
				if t, ok := when[id]; ok && t.After(r.Time) {
					r.Time = t
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("late runs: %w", err)
			}
			return db.QueryRowContext(ctx, "SELECT count(*) FROM "+q).Scan(&pg.LateRows)
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", lref, err)
		}
	}
	return nil
}

// lateCommitTimes maps the batches of silver._late's recent commits to
// their commit times.
func lateCommitTimes(ctx context.Context, d *Dashboard, ref layers.TableRef) (map[string]time.Time, error) {
	commits, err := delta.Open(d.o.Store, ref.Dir()).History(ctx, 4*qualityRuns)
	if errors.Is(err, delta.ErrNoTable) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", ref, err)
	}
	out := map[string]time.Time{}
	for _, c := range commits {
		if b, ok := c.Medallion["batch"].(string); ok {
			t := time.UnixMilli(c.Timestamp).UTC()
			if t.After(out[b]) {
				out[b] = t
			}
		}
	}
	return out, nil
}

// runLabel shortens a run id: a bronze batch is a SHA-256 (its first 12
// digits are plenty), a silver batch the bronze version it read up to.
func runLabel(id string) string {
	if len(id) == 20 && strings.Trim(id, "0123456789") == "" {
		return "bronze v" + strings.TrimLeft(id[:19], "0") + id[19:]
	}
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

func scanAll(rows *sql.Rows, each func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := each(); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (d *Dashboard) serveQuality(w http.ResponseWriter, r *http.Request) {
	pg, err := d.qualityData(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "quality.html", pg)
}

func (d *Dashboard) apiQuality(w http.ResponseWriter, r *http.Request) {
	pg, err := d.qualityData(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

// runsData is the data of /runs.
type runsData struct {
	Runs   []runRow         `json:"runs"`
	Leases []jobs.LeaseInfo `json:"leases"`
	now    func() time.Time
}

type runRow struct {
	jobs.RunRecord
	Duration time.Duration `json:"duration_ns"`
}

func (p runsData) title() string { return "Runs" }

// HeldNow reports whether a lease still binds (for the template).
func (p runsData) HeldNow(l jobs.LeaseInfo) bool { return l.Held(p.now()) }

func (d *Dashboard) runsData(ctx context.Context) (runsData, error) {
	return d.runs.get(func() (runsData, error) {
		recs, err := jobs.ListRuns(ctx, d.o.Store, "", recentRuns)
		if err != nil {
			return runsData{}, err
		}
		leases, err := jobs.ListLeases(ctx, d.o.Store)
		if err != nil {
			return runsData{}, err
		}
		if d.o.Recent != nil {
			recs = append(recs, d.o.Recent.Recent(recentRuns)...)
			slices.SortStableFunc(recs, func(a, b jobs.RunRecord) int { return b.Start.Compare(a.Start) })
			recs = recs[:min(len(recs), recentRuns)]
		}
		out := runsData{Runs: []runRow{}, Leases: leases, now: d.o.Now}
		for _, rec := range recs {
			out.Runs = append(out.Runs, runRow{RunRecord: rec, Duration: rec.End.Sub(rec.Start)})
		}
		return out, nil
	})
}

func (d *Dashboard) serveRuns(w http.ResponseWriter, r *http.Request) {
	data, err := d.runsData(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "runs.html", data)
}

func (d *Dashboard) apiRuns(w http.ResponseWriter, r *http.Request) {
	data, err := d.runsData(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, data)
}
