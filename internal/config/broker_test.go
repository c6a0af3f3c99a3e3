package config

import (
	"strings"
	"testing"
)

func TestBrokerSources(t *testing.T) {
	base := "sources:\n  s:\n    format: ndjson\n    schema: {id: int64}\n"
	tests := []struct {
		from, want string
	}{
		{"    from: {kafka: {brokers: [\"h:9092\"], topic: t, group: g}}\n", ""},
		{"    from: {nats: {url: \"nats://h:4222\", stream: S, durable: d, ack_wait: 30s}}\n    batch: {max_wait: 1s}\n", ""},
		{"    from: {mqtt: {url: \"tcp://h:1883\", topic: \"m/#\", qos: 1, client_id: c}}\n", ""},
		{"    from: {kafka: {topic: t, group: g}}\n", "sources.s.from.kafka.brokers: required"},
		{"    from: {mqtt: {url: \"tcp://h:1883\", topic: x, client_id: c, qos: 2}}\n", "sources.s.from.mqtt.qos: must be 1"},
		{"    from: {kafka: {brokers: [h], topic: t, group: g}, nats: {url: u, stream: s, durable: d}}\n", "one broker per source, got kafka and nats"},
		{"    from: {rabbit: {}}\n", `unknown key "rabbit"`},
	}
	for _, tt := range tests {
		p, err := Parse("medallion.yaml", []byte(base+tt.from), nil)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.from, err)
			} else if p.Sources["s"].Broker == nil {
				t.Errorf("%s: no broker decoded", tt.from)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.from, err, tt.want)
		}
	}
}

// CSV broker sources: rows without a header, whose header line is the
// declared column list (or the schema's order); nats create: true.
func TestBrokerCSVSources(t *testing.T) {
	kafka := "    from: {kafka: {brokers: [\"h:9092\"], topic: t, group: g}}\n"
	tests := []struct {
		src, want string
		columns   []string
	}{
		{"    format: csv\n    csv: {columns: [DATE, TIME, id]}\n" + kafka, "", []string{"DATE", "TIME", "id"}},
		{"    format: csv\n" + kafka, "", nil},
		{"    format: csv\n    csv: {header: false}\n" + kafka, "sources.s.csv.header: a broker source writes a header line", nil},
		{"    format: csv\n    csv: {columns: [id]}\n", "sources.s.csv.columns: only for a csv source read from a broker", nil},
		{"    format: ndjson\n    csv: {columns: [id]}\n" + kafka, "sources.s.csv.columns: only for a csv source", nil},
	}
	for _, tt := range tests {
		p, err := Parse("medallion.yaml", []byte("sources:\n  s:\n    schema: {id: int64}\n"+tt.src), nil)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.src, err)
			} else if got := p.Sources["s"].CSVColumns; strings.Join(got, ",") != strings.Join(tt.columns, ",") {
				t.Errorf("%s: columns %v, want %v", tt.src, got, tt.columns)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.src, err, tt.want)
		}
	}
	p, err := Parse("medallion.yaml", []byte("sources:\n  s:\n    format: ndjson\n    schema: {id: int64}\n    from: {nats: {url: \"nats://h:4222\", stream: S, subject: s.>, durable: d, create: true}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Sources["s"].Broker.Create {
		t.Fatal("from.nats.create: true not decoded")
	}
}

// A bare ${VAR} inside a flow map is a YAML error; say where and how to fix it.
func TestUnquotedVarInFlowMap(t *testing.T) {
	src := "lake: s3://bkt\ns3: {endpoint: ${S3_ENDPOINT}, access_key: k}\n"
	_, err := Parse("medallion.yaml", []byte(src), nil)
	want := `medallion.yaml:2:16: bad YAML: ${S3_ENDPOINT} inside {...} or [...] must be quoted: "${S3_ENDPOINT}" (or write the section in block style)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	env := func(string) (string, bool) { return "127.0.0.1:9000", true }
	if _, err := Parse("medallion.yaml", []byte("lake: s3://bkt\ns3: {endpoint: \"${S3_ENDPOINT}\"}\n"), env); err != nil {
		t.Fatalf("quoted: %v", err)
	}
}

func TestFileSources(t *testing.T) {
	base := "sources:\n  s:\n    format: csv\n    schema: {id: int64}\n"
	tests := []struct {
		from, want string
	}{
		{"    from: {files: {path: ./drop, glob: \"*.csv\"}}\n", ""},
		{"    from:\n      files:\n        path: s3://bkt/in\n        after_ingest: move\n        move_to: s3://bkt/done\n        max_bytes_per_batch: 64MiB\n        s3: {endpoint: \"h:9000\", access_key: a, secret_key: b}\n", ""},
		{"    from: {files: {glob: \"*.csv\"}}\n", "medallion.yaml:5:19: sources.s.from.files.path: required"},
		{"    from: {files: {path: ./drop, glob: \"[x\"}}\n", "medallion.yaml:5:40: sources.s.from.files.glob: \"[x\": syntax error in pattern"},
		{"    from: {files: {path: ./drop, on_change: reprocess}}\n", "sources.s.from.files.on_change: unknown value \"reprocess\": want ignore or error"},
		{"    from: {files: {path: ./drop, after_ingest: move}}\n", "sources.s.from.files.move_to: required with after_ingest: move"},
		{"    from: {files: {path: ./drop, after_ingest: move, move_to: ./drop/done}}\n", "is inside the watched folder"},
		{"    from: {files: {path: ./drop, after_ingest: move, move_to: s3://b/done}}\n", "a move stays on the same kind of store"},
		{"    from: {files: {path: \"ftp://h/x\"}}\n", "want a directory or s3://bucket/prefix"},
		{"    from: {files: {path: ./d}, kafka: {brokers: [h], topic: t, group: g}}\n", "one input per source: files or kafka"},
		{"    from: {files: {path: ./d, polling: 1s}}\n", `unknown key "polling"`},
	}
	for _, tt := range tests {
		p, err := Parse("medallion.yaml", []byte(base+tt.from), nil)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.from, err)
			} else if f := p.Sources["s"].Files; f == nil || p.Sources["s"].Broker != nil || !f.IncludeExisting || f.Interval != DefaultFilesInterval {
				t.Errorf("%s: decoded %+v, broker %+v", tt.from, f, p.Sources["s"].Broker)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.from, err, tt.want)
		}
	}
}
