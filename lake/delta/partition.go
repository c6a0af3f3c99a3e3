package delta

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// HiveNullPartition is the directory value Hive, Spark and DuckDB write the
// rows whose partition value is NULL under. It belongs in directory names
// only: the log records null as JSON null. Tables written by medallion
// before it followed the protocol hold it in partitionValues; readers take
// it for null.
const HiveNullPartition = "__HIVE_DEFAULT_PARTITION__"

// PartitionValues are a file's partition values by column, as the log
// stores them: the value's text, unescaped, or nil for null (JSON null).
type PartitionValues map[string]*string

// PartitionValue returns v as a partition value: nil (null) for the empty
// string, as Spark writes an empty string partition.
func PartitionValue(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// Value returns column col's value and whether it is not null. A missing
// column, JSON null, the empty string and the legacy HiveNullPartition are
// null. Column names match case-insensitively when no exact match exists
// (Delta column names are case-insensitive).
func (pv PartitionValues) Value(col string) (string, bool) {
	p, ok := pv[col]
	if !ok {
		for k, v := range pv {
			if strings.EqualFold(k, col) {
				p = v
				break
			}
		}
	}
	if p == nil || *p == "" || *p == HiveNullPartition {
		return "", false
	}
	return *p, true
}

// UnmarshalJSON reads partitionValues, turning the legacy
// HiveNullPartition into null so that the value is read (and later
// checkpointed) as the protocol says.
func (pv *PartitionValues) UnmarshalJSON(b []byte) error {
	var m map[string]*string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*pv = normalizePartitionValues(m)
	return nil
}

func normalizePartitionValues(m map[string]*string) PartitionValues {
	if m == nil {
		return nil
	}
	for k, v := range m {
		if v != nil && *v == HiveNullPartition {
			m[k] = nil
		}
	}
	return PartitionValues(m)
}

// ParseHivePartition parses one directory segment "col=value" of a
// Hive-style partitioned layout: the value percent-decoded (writers such as
// DuckDB and Spark escape '/', '=', '%', ... in directory names), nil for
// the null partition and for an empty value. ok is false when seg is not a
// col=value segment.
func ParseHivePartition(seg string) (col string, val *string, ok bool, err error) {
	k, v, ok := strings.Cut(seg, "=")
	if !ok {
		return "", nil, false, nil
	}
	if col, err = url.PathUnescape(k); err != nil {
		return "", nil, true, fmt.Errorf("partition directory %q: %w", seg, err)
	}
	if v == HiveNullPartition {
		return col, nil, true, nil
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return "", nil, true, fmt.Errorf("partition directory %q: %w", seg, err)
	}
	return col, PartitionValue(d), true, nil
}

// PartitionStrings returns m as partition values, the empty string as
// null.
func PartitionStrings(m map[string]string) PartitionValues {
	pv := make(PartitionValues, len(m))
	for k, v := range m {
		pv[k] = PartitionValue(v)
	}
	return pv
}
