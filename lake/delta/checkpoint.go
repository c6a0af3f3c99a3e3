package delta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"

	"github.com/medallion-dev/medallion/lake"
)

// Checkpoint rows: one action per row, exactly one struct column set, with
// the column layout Spark writes (so Spark, delta-rs and DuckDB read ours,
// and we read theirs). Columns Spark has that we do not use (deletion
// vectors, row tracking, domain metadata) are absent from ours and ignored
// in theirs.
type cpRow struct {
	Txn      *cpTxn      `parquet:"txn,optional"`
	Add      *cpAdd      `parquet:"add,optional"`
	Remove   *cpRemove   `parquet:"remove,optional"`
	MetaData *cpMetadata `parquet:"metaData,optional"`
	Protocol *cpProtocol `parquet:"protocol,optional"`
}

type cpTxn struct {
	AppID       *string `parquet:"appId,optional"`
	Version     *int64  `parquet:"version,optional"`
	LastUpdated *int64  `parquet:"lastUpdated,optional"`
}

type cpAdd struct {
	Path             *string           `parquet:"path,optional"`
	PartitionValues  cpPartitionValues `parquet:"partitionValues,optional"`
	Size             *int64            `parquet:"size,optional"`
	ModificationTime *int64            `parquet:"modificationTime,optional"`
	DataChange       *bool             `parquet:"dataChange,optional"`
	Tags             map[string]string `parquet:"tags,optional"`
	Stats            *string           `parquet:"stats,optional"`
}

// cpPartitionValues is a checkpoint's partitionValues: a map with optional
// values (Spark's valueContainsNull), null for a null partition value.
type cpPartitionValues = map[string]*string

type cpRemove struct {
	Path                 *string           `parquet:"path,optional"`
	DeletionTimestamp    *int64            `parquet:"deletionTimestamp,optional"`
	DataChange           *bool             `parquet:"dataChange,optional"`
	ExtendedFileMetadata *bool             `parquet:"extendedFileMetadata,optional"`
	PartitionValues      cpPartitionValues `parquet:"partitionValues,optional"`
	Size                 *int64            `parquet:"size,optional"`
}

type cpFormat struct {
	Provider *string           `parquet:"provider,optional"`
	Options  map[string]string `parquet:"options,optional"`
}

type cpMetadata struct {
	ID               *string           `parquet:"id,optional"`
	Name             *string           `parquet:"name,optional"`
	Description      *string           `parquet:"description,optional"`
	Format           *cpFormat         `parquet:"format,optional"`
	SchemaString     *string           `parquet:"schemaString,optional"`
	PartitionColumns []string          `parquet:"partitionColumns,optional,list"`
	Configuration    map[string]string `parquet:"configuration,optional"`
	CreatedTime      *int64            `parquet:"createdTime,optional"`
}

type cpProtocol struct {
	MinReaderVersion *int32   `parquet:"minReaderVersion,optional"`
	MinWriterVersion *int32   `parquet:"minWriterVersion,optional"`
	ReaderFeatures   []string `parquet:"readerFeatures,optional,list"`
	WriterFeatures   []string `parquet:"writerFeatures,optional,list"`
}

func val[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// action turns a checkpoint row into a log action; ok is false for rows
// with no action this package uses.
func (r *cpRow) action() (a action, ok bool, err error) {
	switch {
	case r.Add != nil:
		p, err := decodePath(val(r.Add.Path))
		if err != nil {
			return a, false, err
		}
		a.Add = &Add{
			Path: p, PartitionValues: normalizePartitionValues(r.Add.PartitionValues), Size: val(r.Add.Size),
			ModificationTime: val(r.Add.ModificationTime), DataChange: val(r.Add.DataChange),
			Stats: val(r.Add.Stats), Tags: r.Add.Tags,
		}
		if a.Add.PartitionValues == nil {
			a.Add.PartitionValues = PartitionValues{}
		}
	case r.Remove != nil:
		p, err := decodePath(val(r.Remove.Path))
		if err != nil {
			return a, false, err
		}
		a.Remove = &Remove{
			Path: p, DeletionTimestamp: val(r.Remove.DeletionTimestamp), DataChange: val(r.Remove.DataChange),
			ExtendedFileMetadata: val(r.Remove.ExtendedFileMetadata), PartitionValues: normalizePartitionValues(r.Remove.PartitionValues),
			Size: val(r.Remove.Size),
		}
	case r.Txn != nil:
		a.Txn = &Txn{AppID: val(r.Txn.AppID), Version: val(r.Txn.Version), LastUpdated: val(r.Txn.LastUpdated)}
	case r.MetaData != nil:
		m := Metadata{
			ID: val(r.MetaData.ID), Name: val(r.MetaData.Name), Description: val(r.MetaData.Description),
			SchemaString: val(r.MetaData.SchemaString), PartitionColumns: r.MetaData.PartitionColumns,
			Configuration: r.MetaData.Configuration, CreatedTime: r.MetaData.CreatedTime,
		}
		if f := r.MetaData.Format; f != nil {
			m.Format = Format{Provider: val(f.Provider), Options: f.Options}
		}
		m = m.normalized()
		a.MetaData = &m
	case r.Protocol != nil:
		a.Protocol = &Protocol{
			MinReaderVersion: int(val(r.Protocol.MinReaderVersion)), MinWriterVersion: int(val(r.Protocol.MinWriterVersion)),
			ReaderFeatures: r.Protocol.ReaderFeatures, WriterFeatures: r.Protocol.WriterFeatures,
		}
	default:
		return a, false, nil
	}
	return a, true, nil
}

// loadCheckpoint reads the actions of part (partHead or partAll) of every
// file of a checkpoint into a state: from the Table's cache (its own, or
// shared through Options.Cache), else from the process-wide cache, else by
// decoding them (and caching the state in both). A cached state that holds
// only the head is completed by decoding only the files' columns; one that
// holds more than part asked for is returned whole.
func (t *Table) loadCheckpoint(ctx context.Context, files []lake.ObjectInfo, part cpPart) (*state, error) {
	st := t.cache.get(files)
	if st == nil && t.checkpoints != nil {
		if cached := t.checkpoints.lookup(t.store, files); cached != nil {
			t.cache.put(files, cached)
			st = cached.clone()
		}
	}
	if st != nil && st.parts&part == part {
		return st, nil
	}
	if st == nil {
		st = newState()
		st.parts = 0
	}
	missing := part &^ st.parts
	for _, f := range files {
		b, _, err := t.get(ctx, f.Key)
		if err != nil {
			return nil, fmt.Errorf("read checkpoint %s: %w", f.Key, err)
		}
		if err := readCheckpointRows(b, missing, st.apply); err != nil {
			return nil, fmt.Errorf("read checkpoint %s: %w", f.Key, err)
		}
	}
	st.parts |= missing
	// Every load of this checkpoint copies the state: with the tombstones
	// in base, a copy shares them instead of copying them.
	st.tombstones = st.tombstones.flat()
	if t.checkpoints != nil {
		// A frozen copy: nobody modifies what the shared cache holds
		// (every load clones it).
		t.checkpoints.keep(t.store, files, st.clone())
	}
	t.cache.put(files, st)
	return st, nil
}

// readCheckpointRows applies the actions of part of the checkpoint file b,
// in row order. Only this package's own layout is decoded column by column
// (and so skips the columns of the other part); any other is decoded whole
// and filtered.
func readCheckpointRows(b []byte, part cpPart, apply func(action)) error {
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	if ok, err := readOwnCheckpoint(pf, part, apply); ok || err != nil {
		return err
	}
	return readForeignCheckpoint(pf, func(a action) {
		if a.part()&part != 0 {
			apply(a)
		}
	})
}

// readForeignCheckpoint reads a checkpoint of any layout through
// parquet-go's row reconstruction, converting its columns to cpRow's.
func readForeignCheckpoint(pf *parquet.File, apply func(action)) error {
	r := parquet.NewGenericReader[cpRow](pf)
	defer r.Close()
	buf := make([]cpRow, 256)
	for {
		clear(buf)
		n, err := r.Read(buf)
		for i := range buf[:n] {
			a, ok, aerr := buf[i].action()
			if aerr != nil {
				return aerr
			}
			if ok {
				apply(a)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// defaultTombstoneRetention is delta.deletedFileRetentionDuration's default:
// removes younger than this stay in checkpoints so VACUUM keeps their files.
const defaultTombstoneRetention = 7 * 24 * time.Hour

// tombstoneGrace is how much longer than the tombstone retention a
// checkpoint keeps a tombstone: a vacuum at the retention may then trust
// the newest checkpoint to hold every file removed within it, however
// recently that checkpoint was written (RetainedPaths), and need not read
// the commits in between.
const tombstoneGrace = 24 * time.Hour

// tombstoneRetention is how long after its deletion a remove stays in the
// checkpoints of a table with metadata m (delta.deletedFileRetentionDuration,
// default 7 days), not counting tombstoneGrace.
func tombstoneRetention(m Metadata) time.Duration {
	if d, ok := m.Configuration["delta.deletedFileRetentionDuration"]; ok {
		if r, err := parseInterval(d); err == nil {
			return r
		}
	}
	return defaultTombstoneRetention
}

// checkpointRows renders a snapshot as checkpoint rows: protocol, metadata,
// txns, active files and unexpired tombstones (younger than the tombstone
// retention plus tombstoneGrace).
func checkpointRows(s *Snapshot, now time.Time) []cpRow {
	rows := make([]cpRow, 0, 2+len(s.txns)+len(s.Files)+s.tombstones.len())
	p := s.Protocol
	rows = append(rows, cpRow{Protocol: &cpProtocol{
		MinReaderVersion: ptr(int32(p.MinReaderVersion)), MinWriterVersion: ptr(int32(p.MinWriterVersion)),
		ReaderFeatures: p.ReaderFeatures, WriterFeatures: p.WriterFeatures,
	}})
	m := s.Metadata.normalized()
	rows = append(rows, cpRow{MetaData: &cpMetadata{
		ID: ptr(m.ID), Name: optString(m.Name), Description: optString(m.Description),
		Format:       &cpFormat{Provider: ptr(m.Format.Provider), Options: m.Format.Options},
		SchemaString: ptr(m.SchemaString), PartitionColumns: m.PartitionColumns,
		Configuration: m.Configuration, CreatedTime: m.CreatedTime,
	}})
	for _, tx := range s.Txns() {
		rows = append(rows, cpRow{Txn: &cpTxn{AppID: ptr(tx.AppID), Version: ptr(tx.Version), LastUpdated: ptr(tx.LastUpdated)}})
	}
	for _, f := range s.Files {
		pv := map[string]*string(f.PartitionValues)
		if pv == nil {
			pv = map[string]*string{}
		}
		rows = append(rows, cpRow{Add: &cpAdd{
			Path: ptr(encodePath(f.Path)), PartitionValues: pv, Size: ptr(f.Size),
			ModificationTime: ptr(f.ModificationTime), DataChange: ptr(false), Tags: f.Tags,
			Stats: optString(f.Stats),
		}})
	}
	cutoff := now.Add(-tombstoneRetention(s.Metadata) - tombstoneGrace).UnixMilli()
	for _, path := range s.tombstones.paths() {
		r, _ := s.tombstones.get(path)
		if r.DeletionTimestamp <= cutoff {
			continue
		}
		row := &cpRemove{
			Path: ptr(encodePath(r.Path)), DeletionTimestamp: ptr(r.DeletionTimestamp),
			DataChange: ptr(false), ExtendedFileMetadata: ptr(r.ExtendedFileMetadata),
		}
		if r.ExtendedFileMetadata {
			row.PartitionValues, row.Size = r.PartitionValues, ptr(r.Size)
		}
		rows = append(rows, cpRow{Remove: row})
	}
	return rows
}

// parseInterval parses the Spark interval strings used by table properties
// ("interval 7 days", "168 hours").
func parseInterval(s string) (time.Duration, error) {
	f := strings.Fields(strings.ToLower(s))
	if len(f) > 0 && f[0] == "interval" {
		f = f[1:]
	}
	if len(f) != 2 {
		return 0, fmt.Errorf("interval %q: want \"interval N unit\"", s)
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("interval %q: %w", s, err)
	}
	units := map[string]time.Duration{
		"millisecond": time.Millisecond, "second": time.Second, "minute": time.Minute,
		"hour": time.Hour, "day": 24 * time.Hour, "week": 7 * 24 * time.Hour,
	}
	u, ok := units[strings.TrimSuffix(f[1], "s")]
	if !ok {
		return 0, fmt.Errorf("interval %q: unknown unit %q", s, f[1])
	}
	return time.Duration(n) * u, nil
}

// encodeCheckpoint writes rows as a snappy-compressed Parquet file.
func encodeCheckpoint(rows []cpRow) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[cpRow](&buf, parquet.Compression(&snappy.Codec{}))
	if _, err := w.Write(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Checkpoint writes a Parquet checkpoint of s (single file
// NNNNNNNNNNNNNNNNNNNN.checkpoint.parquet) and then points _last_checkpoint
// at it, unless _last_checkpoint already points at a newer one. Commit calls
// it every CheckpointInterval versions.
func (t *Table) Checkpoint(ctx context.Context, s *Snapshot) error {
	if err := s.needFiles(t, "checkpoint"); err != nil {
		return err
	}
	rows := checkpointRows(s, time.Now())
	b, err := encodeCheckpoint(rows)
	if err != nil {
		return fmt.Errorf("%s: encode checkpoint %d: %w", t.name(), s.Version, err)
	}
	key := t.checkpointKey(s.Version)
	if _, err := t.store.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("%s: write checkpoint %d: %w", t.name(), s.Version, err)
	}
	t.seedCheckpoint(ctx, key, rows)
	if cur, err := t.readLastCheckpoint(ctx); err != nil {
		return err
	} else if cur > s.Version {
		return nil
	}
	lc, err := json.Marshal(lastCheckpoint{
		Version: s.Version, Size: int64(len(rows)), SizeInBytes: int64(len(b)), NumOfAddFiles: int64(len(s.Files)),
	})
	if err != nil {
		return err
	}
	if _, err := t.store.Put(ctx, t.lastCheckpointKey(), bytes.NewReader(lc), int64(len(lc))); err != nil {
		return fmt.Errorf("%s: write _last_checkpoint %d: %w", t.name(), s.Version, err)
	}
	return nil
}

// seedCheckpoint caches the state a load of the checkpoint just written at
// key would decode from it, built from its rows: the loads after a commit
// (the writer's next micro-batch, the next layer reading the table) start
// from that checkpoint, and decoding it costs as much as the table holds.
// The cache entry is keyed by the object as a Stat sees it, as a load
// looks it up; without that (the Stat failed) the load decodes the file.
func (t *Table) seedCheckpoint(ctx context.Context, key string, rows []cpRow) {
	o, err := t.store.Stat(ctx, key)
	if err != nil {
		return
	}
	st := newState()
	for i := range rows {
		a, ok, err := rows[i].action()
		if err != nil {
			return
		}
		if ok {
			st.apply(a)
		}
	}
	st.tombstones = st.tombstones.flat()
	files := []lake.ObjectInfo{o}
	if t.checkpoints != nil {
		t.checkpoints.keep(t.store, files, st.clone())
	}
	t.cache.put(files, st)
}
