package delta

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// jsonKind is the JSON type of a decoded value, as the protocol names it.
func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// TestActionJSONMatchesProtocol checks the field names and JSON types of
// every action we write against the Delta protocol (PROTOCOL.md, "Actions").
func TestActionJSONMatchesProtocol(t *testing.T) {
	created := int64(1700000000000)
	readV := int64(4)
	blind := true
	actions := []action{
		{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &Metadata{ID: "0b7c3f8e-7a40-4d2a-9d85-3f7a0c2b1e11", Name: "meters", Description: "d", SchemaString: `{"type":"struct","fields":[]}`, CreatedTime: &created}},
		{Add: &Add{Path: "dt=2024-01-01/a b.parquet", PartitionValues: PartitionValues{"dt": PartitionValue("2024-01-01")}, Size: 10, ModificationTime: created, DataChange: true, Stats: `{"numRecords":3}`, Tags: map[string]string{"k": "v"}}},
		{Remove: &Remove{Path: "x.parquet", DeletionTimestamp: created, DataChange: true, ExtendedFileMetadata: true, PartitionValues: PartitionValues{}, Size: 10}},
		{Txn: &Txn{AppID: "job", Version: 3, LastUpdated: created}},
		{CommitInfo: &CommitInfo{Version: 5, Timestamp: created, Operation: "WRITE", OperationParameters: map[string]any{"mode": "Append", "partitionBy": []string{"dt"}}, ReadVersion: &readV, IsBlindAppend: &blind, OperationMetrics: map[string]string{"numFiles": "1"}, EngineInfo: "medallion", Medallion: map[string]any{"rows_in": 3}}},
	}
	want := map[string]map[string]string{
		"protocol": {"minReaderVersion": "number", "minWriterVersion": "number"},
		"metaData": {"id": "string", "name": "string", "description": "string", "format": "object", "schemaString": "string",
			"partitionColumns": "array", "configuration": "object", "createdTime": "number"},
		"add": {"path": "string", "partitionValues": "object", "size": "number", "modificationTime": "number",
			"dataChange": "boolean", "stats": "string", "tags": "object"},
		"remove": {"path": "string", "deletionTimestamp": "number", "dataChange": "boolean", "extendedFileMetadata": "boolean",
			"partitionValues": "object", "size": "number"},
		"txn":        {"appId": "string", "version": "number", "lastUpdated": "number"},
		"commitInfo": {"timestamp": "number", "operation": "string", "operationParameters": "object", "readVersion": "number", "isBlindAppend": "boolean", "operationMetrics": "object", "engineInfo": "string", "medallion": "object"},
	}
	b, err := encodeActions(actions)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(actions) {
		t.Fatalf("%d lines for %d actions", len(lines), len(actions))
	}
	for _, line := range lines {
		var outer map[string]map[string]any
		if err := json.Unmarshal([]byte(line), &outer); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if len(outer) != 1 {
			t.Fatalf("line %s has %d actions, want 1", line, len(outer))
		}
		for name, fields := range outer {
			exp, ok := want[name]
			if !ok {
				t.Fatalf("unknown action %q", name)
			}
			if !slices.Equal(slices.Sorted(maps.Keys(fields)), slices.Sorted(maps.Keys(exp))) {
				t.Errorf("%s keys %v, want %v", name, slices.Sorted(maps.Keys(fields)), slices.Sorted(maps.Keys(exp)))
			}
			for k, kind := range exp {
				if got := jsonKind(fields[k]); got != kind {
					t.Errorf("%s.%s is %s, want %s", name, k, got, kind)
				}
			}
			switch name {
			case "metaData":
				f := fields["format"].(map[string]any)
				if f["provider"] != "parquet" || jsonKind(f["options"]) != "object" {
					t.Errorf("metaData.format = %v", f)
				}
			case "add":
				if fields["path"] != "dt=2024-01-01/a%20b.parquet" {
					t.Errorf("add.path = %v, want URL-encoded", fields["path"])
				}
			case "commitInfo":
				for k, v := range fields["operationParameters"].(map[string]any) {
					if jsonKind(v) != "string" {
						t.Errorf("operationParameters.%s is %s; Spark expects strings", k, jsonKind(v))
					}
				}
			}
		}
	}
	// And back: paths decoded, commitInfo parameters readable either way.
	got, err := decodeActions(b)
	if err != nil {
		t.Fatal(err)
	}
	if got[2].Add.Path != "dt=2024-01-01/a b.parquet" || got[5].CommitInfo.OperationParameters["partitionBy"] != `["dt"]` {
		t.Errorf("decoded %+v %+v", got[2].Add, got[5].CommitInfo)
	}
	ci, err := decodeActions([]byte(`{"commitInfo":{"timestamp":1,"operationParameters":{"n":3,"s":"x"}}}` + "\n\n"))
	if err != nil || ci[0].CommitInfo.OperationParameters["n"] != float64(3) {
		t.Errorf("delta-rs style operationParameters: %+v %v", ci, err)
	}
	if _, err := decodeActions([]byte("{\"add\":{}}\n{bad")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}

func TestPathEncoding(t *testing.T) {
	for _, p := range []string{"a.parquet", "a b.parquet", "dt=2024-01-01/h=10/x.parquet", "100%/é:x,y;z.parquet", "s3://b/abs.parquet"} {
		enc := encodePath(p)
		if strings.ContainsAny(enc, " ,;") {
			t.Errorf("encodePath(%q) = %q still has reserved characters", p, enc)
		}
		if p == "s3://b/abs.parquet" {
			continue
		}
		dec, err := decodePath(enc)
		if err != nil || dec != p {
			t.Errorf("decodePath(encodePath(%q)) = %q %v", p, dec, err)
		}
	}
	if d, _ := decodePath("s3://b/abs%20x.parquet"); d != "s3://b/abs%20x.parquet" {
		t.Errorf("absolute URIs are kept: %q", d)
	}
}

// TestCommitInfoMetric: a metric read back from a commit's JSON prints as
// the number it is (history's "rows in" of 2,000,000 is 2000000, not
// 2e+06); Delta's operationMetrics are text already.
func TestCommitInfoMetric(t *testing.T) {
	var c CommitInfo
	if err := json.Unmarshal([]byte(`{"medallion":{"rows_read":2000000,"lag":1.5,"mode":"full"},"operationMetrics":{"numOutputRows":"7"}}`), &c); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		keys []string
		want string
	}{
		{[]string{"rows_in", "rows_read"}, "2000000"},
		{[]string{"lag"}, "1.5"},
		{[]string{"mode"}, "full"},
		{[]string{"numOutputRows"}, "7"},
		{[]string{"nope"}, "-"},
	} {
		if got := c.Metric(tc.keys...); got != tc.want {
			t.Errorf("Metric(%v) = %q, want %q", tc.keys, got, tc.want)
		}
	}
}
