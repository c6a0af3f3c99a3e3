package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/maintenance"
)

// maintenanceJob is the lease name of the maintenance pass: one serve
// process of a lake runs it at a time.
const maintenanceJob = "maintenance"

// startMaintenance runs a maintenance pass (maintenance.Pass: compaction,
// vacuum, run history and lease pruning) every maintenance.every until ctx
// ends; every: off runs none. The first pass comes one period after the
// start, so a restart loop does not compact over and over.
func (s *server) startMaintenance(ctx context.Context) {
	m := s.p.Maintenance
	if m.Off || m.Every <= 0 {
		return
	}
	fmt.Fprintf(s.a.stdout, "maintenance: compaction and retention every %s\n", m.Every)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(m.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s.maintenancePass(ctx)
		}
	}()
}

// maintenancePass runs one pass under the maintenance lease; a pass another
// process holds the lease for is skipped, and a failed pass is logged (the
// next one tries again), never fatal to serve.
func (s *server) maintenancePass(ctx context.Context) {
	log := s.a.log.WithGroup("maintenance")
	held, err := jobs.AcquireWith(ctx, s.ws.store, maintenanceJob, s.runner.Owner, s.runner.Lease)
	if errors.Is(err, jobs.ErrLeaseHeld) {
		log.Debug("maintenance pass skipped: another process runs it", "err", err)
		return
	}
	if err != nil {
		log.Warn("maintenance pass: lease", "err", err)
		return
	}
	defer held.Release(context.WithoutCancel(ctx))
	env := layers.Env{Store: s.ws.store, DB: s.ws.eng.DB(), Cache: s.ws.cache, Log: log}
	res, err := maintenance.Pass(held.Context(), env, s.p)
	files, compacted := 0, 0
	for _, o := range res.Optimized {
		compacted += o.FilesRemoved
	}
	for _, v := range res.Vacuumed {
		files += len(v.Files)
	}
	log.Info("maintenance pass", "files_compacted", compacted, "files_vacuumed", files,
		"runs_pruned", res.Pruned.Runs, "leases_pruned", res.Pruned.Leases, "err", err)
	if err != nil {
		log.Warn("maintenance pass failed", "err", err)
	}
}

// streamCompactor is the compaction stream mode runs between micro-batches
// (maintenance.CompactNewest with the maintenance: section's target size
// and stream_compact_files). It runs whatever maintenance.every says: a
// stream writes a file per micro-batch and partition, and without it a day
// of 1 s triggers leaves 86,400 of them per table.
func (s *server) streamCompactor() jobs.Compactor {
	m := s.p.Maintenance
	return &maintenance.StreamCompactor{
		Env: layers.Env{Store: s.ws.store, DB: s.ws.eng.DB(), Cache: s.ws.cache, Log: s.a.log.WithGroup("compaction"),
			Tables: s.runner.TableCache()},
		Options: maintenance.StreamCompactOptions{TargetSize: m.TargetFileSize, MaxFiles: m.StreamCompactFiles},
	}
}
