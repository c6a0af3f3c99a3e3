package delta

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Protocol is the protocol action: the oldest reader and writer that may
// use the table.
type Protocol struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

// Format is the data file format of a table (always "parquet" here).
type Format struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

// Metadata is the metaData action: identity, schema, partitioning and
// configuration of the table.
type Metadata struct {
	ID               string            `json:"id"`
	Name             string            `json:"name,omitempty"`
	Description      string            `json:"description,omitempty"`
	Format           Format            `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	Configuration    map[string]string `json:"configuration"`
	CreatedTime      *int64            `json:"createdTime,omitempty"`
}

// normalized returns m with the empty collections Spark always writes
// ({} and []) instead of nulls.
func (m Metadata) normalized() Metadata {
	if m.Format.Provider == "" {
		m.Format.Provider = "parquet"
	}
	if m.Format.Options == nil {
		m.Format.Options = map[string]string{}
	}
	if m.PartitionColumns == nil {
		m.PartitionColumns = []string{}
	}
	if m.Configuration == nil {
		m.Configuration = map[string]string{}
	}
	return m
}

// Add is the add action: a data file that is part of the table. Path is
// relative to the table root and decoded (the log stores it URL-encoded).
type Add struct {
	Path             string            `json:"path"`
	PartitionValues  PartitionValues   `json:"partitionValues"`
	Size             int64             `json:"size"`
	ModificationTime int64             `json:"modificationTime"`
	DataChange       bool              `json:"dataChange"`
	Stats            string            `json:"stats,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
}

// Remove returns the remove action that logically deletes a at time ts (ms
// since the epoch), with the extended file metadata (partition values, size).
func (a Add) Remove(ts int64, dataChange bool) Remove {
	return Remove{
		Path:                 a.Path,
		DeletionTimestamp:    ts,
		DataChange:           dataChange,
		ExtendedFileMetadata: true,
		PartitionValues:      a.PartitionValues,
		Size:                 a.Size,
	}
}

// Remove is the remove action: a data file that is no longer part of the
// table (a tombstone). Path is relative to the table root and decoded.
type Remove struct {
	Path                 string          `json:"path"`
	DeletionTimestamp    int64           `json:"deletionTimestamp"`
	DataChange           bool            `json:"dataChange"`
	ExtendedFileMetadata bool            `json:"extendedFileMetadata,omitempty"`
	PartitionValues      PartitionValues `json:"partitionValues,omitempty"`
	Size                 int64           `json:"size,omitempty"`
}

// MarshalJSON writes partitionValues and size whenever
// extendedFileMetadata is true, as the protocol requires.
func (r Remove) MarshalJSON() ([]byte, error) {
	type plain Remove
	if !r.ExtendedFileMetadata {
		return json.Marshal(plain(r))
	}
	pv := r.PartitionValues
	if pv == nil {
		pv = PartitionValues{}
	}
	return json.Marshal(struct {
		Path                 string          `json:"path"`
		DeletionTimestamp    int64           `json:"deletionTimestamp"`
		DataChange           bool            `json:"dataChange"`
		ExtendedFileMetadata bool            `json:"extendedFileMetadata"`
		PartitionValues      PartitionValues `json:"partitionValues"`
		Size                 int64           `json:"size"`
	}{r.Path, r.DeletionTimestamp, r.DataChange, true, pv, r.Size})
}

// Txn is the txn action: the last version of an application's input that
// the table has committed (what makes a job exactly-once).
type Txn struct {
	AppID       string `json:"appId"`
	Version     int64  `json:"version"`
	LastUpdated int64  `json:"lastUpdated,omitempty"`
}

// CommitInfo is the commitInfo action: provenance of one commit. Version is
// not stored in the log; readers fill it in from the log file name.
type CommitInfo struct {
	Version   int64  `json:"-"`
	Timestamp int64  `json:"timestamp"` // ms since the epoch
	Operation string `json:"operation,omitempty"`
	// OperationParameters are written as strings (what Spark writes): a
	// non-string value is stored as its JSON text. Both forms are read.
	OperationParameters map[string]any    `json:"operationParameters,omitempty"`
	ReadVersion         *int64            `json:"readVersion,omitempty"`
	IsolationLevel      string            `json:"isolationLevel,omitempty"`
	IsBlindAppend       *bool             `json:"isBlindAppend,omitempty"`
	OperationMetrics    map[string]string `json:"operationMetrics,omitempty"`
	EngineInfo          string            `json:"engineInfo,omitempty"`
	TxnID               string            `json:"txnId,omitempty"`
	// Medallion holds this project's own data (rows in and out, watermark).
	// Other engines ignore it.
	Medallion map[string]any `json:"medallion,omitempty"`
}

// MarshalJSON writes operationParameters as a string map, as Spark expects.
func (c CommitInfo) MarshalJSON() ([]byte, error) {
	type plain CommitInfo
	p := plain(c)
	if len(c.OperationParameters) > 0 {
		params := make(map[string]any, len(c.OperationParameters))
		for k, v := range c.OperationParameters {
			switch v := v.(type) {
			case string:
				params[k] = v
			default:
				b, err := json.Marshal(v)
				if err != nil {
					return nil, fmt.Errorf("commitInfo operationParameters %q: %w", k, err)
				}
				params[k] = string(b)
			}
		}
		p.OperationParameters = params
	}
	return json.Marshal(p)
}

// action is one line of a commit file: exactly one field is set. Unknown
// actions (cdc, domainMetadata, ...) are kept out of the way.
type action struct {
	Protocol   *Protocol   `json:"protocol,omitempty"`
	MetaData   *Metadata   `json:"metaData,omitempty"`
	Add        *Add        `json:"add,omitempty"`
	Remove     *Remove     `json:"remove,omitempty"`
	Txn        *Txn        `json:"txn,omitempty"`
	CommitInfo *CommitInfo `json:"commitInfo,omitempty"`
}

// encodePath turns a table-relative file path into the URI form the log
// stores: each segment percent-encoded (a space becomes %20), '/' kept.
func encodePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
	}
	return strings.Join(segs, "/")
}

// decodePath reverses encodePath. Absolute URIs (s3://...) are kept as is.
func decodePath(p string) (string, error) {
	if strings.Contains(p, "://") {
		return p, nil
	}
	d, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("file path %q: %w", p, err)
	}
	return d, nil
}

// encodeActions renders actions as newline-delimited JSON, with file paths
// URL-encoded.
func encodeActions(actions []action) ([]byte, error) {
	var buf bytes.Buffer
	for _, a := range actions {
		switch {
		case a.Add != nil:
			c := *a.Add
			c.Path = encodePath(c.Path)
			if c.PartitionValues == nil {
				c.PartitionValues = PartitionValues{}
			}
			a.Add = &c
		case a.Remove != nil:
			c := *a.Remove
			c.Path = encodePath(c.Path)
			if c.ExtendedFileMetadata && c.PartitionValues == nil {
				c.PartitionValues = PartitionValues{}
			}
			a.Remove = &c
		case a.MetaData != nil:
			m := a.MetaData.normalized()
			a.MetaData = &m
		}
		b, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("encode log action: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// decodeActions parses a commit file. Blank lines are skipped; an invalid
// line is an error naming the line number.
func decodeActions(data []byte) ([]action, error) {
	var out []action
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<30)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var a action
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		var err error
		switch {
		case a.Add != nil:
			a.Add.Path, err = decodePath(a.Add.Path)
		case a.Remove != nil:
			a.Remove.Path, err = decodePath(a.Remove.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Metric is the first of keys that the commit recorded, from medallion's
// own commit metrics or Delta's operationMetrics, as text; "-" when it
// recorded none of them (history tables print it so).
func (c CommitInfo) Metric(keys ...string) string {
	for _, key := range keys {
		if v, ok := c.Medallion[key]; ok {
			if f, ok := v.(float64); ok {
				// A JSON number read back: 2000000, not 2e+06.
				return strconv.FormatFloat(f, 'f', -1, 64)
			}
			return fmt.Sprint(v)
		}
		if v, ok := c.OperationMetrics[key]; ok {
			return v
		}
	}
	return "-"
}
