package config

import (
	"strings"
	"testing"
)

// secretPipeline is a valid pipeline in which each «key» can be set to a
// ${VAR} reference; otherwise it takes its default from secretDefaults.
const secretPipeline = `
lake: «lake»
s3: {endpoint: "«endpoint»", secure: «secure», access_key: k, secret_key: s}
postgres: «postgres»
duckdb: {memory_limit: «memory_limit», threads: «threads»}
sources:
  c:
    format: «format»
    csv: {delimiter: "«delimiter»", quote: "«quote»", header: «header»}
    schema:
      ts: {type: timestamp, format: "«ts_format»", tz: «tz»}
      id: {type: «type», required: «required», trim: «trim», empty_as_null: «empty_as_null»}
      v: {type: double, min: «min», max: «max», regex: "«regex»"}
    dedupe: [«dedupe»]
    derive:
      big: «derive»
    on_error: «on_error»
    partition_by: «partition_by»
    listen: "«listen»"
  b:
    format: ndjson
    schema: {id: string}
    from: {nats: {url: "nats://127.0.0.1:4222", stream: s, durable: d, ack_wait: «ack_wait»}}
    batch: {max_messages: «max_messages», max_bytes: «max_bytes», max_wait: «max_wait»}
  q:
    format: ndjson
    schema: {id: string}
    from: {mqtt: {url: "tcp://127.0.0.1:1883", topic: t, client_id: c, qos: «qos»}}
silver:
  w:
    from: «silver_from»
    event_time: «event_time»
    window: {size: «size», slide: «slide»}
    watermark: «watermark»
    output: «output»
    group_by: [«group_by»]
    aggregates: {n: «aggregate»}
gold:
  ma:
    from: «gold_from»
    partition_by: [«gold_partition_by»]
    order_by: «order_by»
    moving_average: {column: «ma_column», «ma_kind», as: «as»}
    flag: {name: «flag_name», when: "«when»"}
  m:
    sql: «sql»
mirror:
  - {table: «mirror_table», to: «mirror_to», key: [«mirror_key»]}
schedule:
  bronze: "«cron»"
  silver: {after: «after»}
stream: {trigger: «trigger»}
`

var secretDefaults = map[string]string{
	"lake": "s3://bucket/p", "endpoint": "minio:9000", "secure": "false", "postgres": "postgres://u@h/db",
	"memory_limit": "1GB", "threads": "2",
	"format": "csv", "delimiter": ",", "quote": `\"`, "header": "true",
	"ts_format": "2006-01-02 15:04:05", "tz": "UTC", "type": "string", "required": "true", "trim": "true", "empty_as_null": "true",
	"min": "0", "max": "10", "regex": "^[0-9.]+$$", "dedupe": "id", "derive": "v > 1", "on_error": "quarantine",
	"partition_by": "big", "listen": ":9999",
	"ack_wait": "30s", "max_messages": "10", "max_bytes": "1000", "max_wait": "1s", "qos": "1",
	"silver_from": "c", "event_time": "ts", "size": "2m", "slide": "1m", "watermark": "1m", "output": "append",
	"group_by": "id", "aggregate": "avg(v)",
	"gold_from": "w", "gold_partition_by": "id", "order_by": "window_start", "ma_column": "n", "ma_kind": "rows: 3", "as": "ma",
	"flag_name": "spike", "when": "n > ma", "sql": "SELECT * FROM gold.ma",
	"mirror_table": "gold.ma", "mirror_to": "public.ma", "mirror_key": "id",
	"cron": "@every 1m", "after": "bronze", "trigger": "1s",
}

// TestErrorsHideVariableValues: a wrong value that came from ${V} is named
// by its reference in the error, never shown: it may be a secret put into
// the wrong variable. One case per key that refuses some values.
func TestErrorsHideVariableValues(t *testing.T) {
	const secret = "Sekr1tXq9zW"
	tests := []struct {
		key   string // placeholder set to ${V}
		value string // the value of V
		path  string // the key path of the error
	}{
		{"lake", "ftp://" + secret, "lake"},
		{"lake", "s3://" + secret, "lake"},
		{"endpoint", "http://" + secret + ":9000", "s3.endpoint"},
		{"secure", secret, "s3.secure"},
		{"postgres", secret, "postgres"},
		{"memory_limit", secret, "duckdb.memory_limit"},
		{"threads", secret, "duckdb.threads"},
		{"format", secret, "sources.c.format"},
		{"delimiter", secret, "sources.c.csv.delimiter"},
		{"quote", secret, "sources.c.csv.quote"},
		{"header", secret, "sources.c.csv.header"},
		{"ts_format", secret, "sources.c.schema.ts.format"},
		{"tz", secret, "sources.c.schema.ts.tz"},
		{"type", secret, "sources.c.schema.id.type"},
		{"type", "decimal(" + secret + ")", "sources.c.schema.id.type"},
		{"required", secret, "sources.c.schema.id.required"},
		{"trim", secret, "sources.c.schema.id.trim"},
		{"empty_as_null", secret, "sources.c.schema.id.empty_as_null"},
		{"min", secret, "sources.c.schema.v.min"},
		{"max", secret, "sources.c.schema.v.max"},
		{"regex", "(" + secret, "sources.c.schema.v.regex"},
		{"regex", secret + "[z-a]", "sources.c.schema.v.regex"},
		{"dedupe", secret, "sources.c.dedupe[0]"},
		{"derive", secret + ")", "sources.c.derive.big.expr"},
		{"on_error", secret, "sources.c.on_error"},
		{"partition_by", secret, "sources.c.partition_by"},
		{"listen", secret, "sources.c.listen"},
		{"ack_wait", secret, "sources.b.from.nats.ack_wait"},
		{"max_messages", secret, "sources.b.batch.max_messages"},
		{"max_bytes", secret, "sources.b.batch.max_bytes"},
		{"max_wait", secret, "sources.b.batch.max_wait"},
		{"qos", secret, "sources.q.from.mqtt.qos"},
		{"silver_from", secret, "silver.w.from"},
		{"event_time", secret, "silver.w.event_time"},
		{"size", secret, "silver.w.window.size"},
		{"slide", secret, "silver.w.window.slide"},
		{"watermark", secret, "silver.w.watermark"},
		{"output", secret, "silver.w.output"},
		{"group_by", secret, "silver.w.group_by[0]"},
		{"aggregate", secret, "silver.w.aggregates.n.expr"},
		{"aggregate", "avg(" + secret + ")", "silver.w.aggregates.n.expr"},
		{"gold_from", secret, "gold.ma.from"},
		{"gold_partition_by", secret, "gold.ma.partition_by[0]"},
		{"order_by", secret, "gold.ma.order_by"},
		{"ma_column", secret, "gold.ma.moving_average.column"},
		{"ma_kind", "rows: ${V}", "gold.ma.moving_average.rows"},
		{"ma_kind", "range: ${V}", "gold.ma.moving_average.range"},
		{"ma_kind", "ema: ${V}", "gold.ma.moving_average.ema.alpha"},
		{"as", secret + "-x", "gold.ma.moving_average.as"},
		{"flag_name", secret + "-x", "gold.ma.flag.name"},
		{"when", secret + ")", "gold.ma.flag.when"},
		{"sql", secret, "gold.m.sql"},
		{"sql", "SELECT * FROM silver." + secret, "gold.m.sql"},
		{"mirror_table", secret, "mirror[0].table"},
		{"mirror_table", "gold." + secret, "mirror[0].table"},
		{"mirror_to", secret + ".x-y", "mirror[0].to"},
		{"mirror_key", secret, "mirror[0].key[0]"},
		{"cron", secret, "schedule.bronze"},
		{"after", secret, "schedule.silver.after"},
		{"trigger", secret, "stream.trigger"},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+strings.ReplaceAll(tc.value, secret, "S"), func(t *testing.T) {
			ref := `"${V}"` // quoted: most keys are in {...}
			if strings.Contains(secretPipeline, `"«`+tc.key+`»"`) {
				ref = "${V}"
			}
			if strings.Contains(tc.value, "${V}") {
				ref, tc.value = strings.ReplaceAll(tc.value, "${V}", `"${V}"`), secret
			}
			src := secretPipeline
			for k, v := range secretDefaults {
				if k == tc.key {
					v = ref
				}
				src = strings.ReplaceAll(src, "«"+k+"»", v)
			}
			_, err := Parse("medallion.yaml", []byte(src), envOf(map[string]string{"V": tc.value}))
			if err == nil {
				t.Fatalf("no error for V=%q", tc.value)
			}
			msg := err.Error()
			if strings.Contains(msg, secret) || strings.Contains(msg, secret[:6]) {
				t.Errorf("the error shows the value of V:\n%s", msg)
			}
			if !strings.Contains(msg, ": "+tc.path+": ") || !strings.Contains(msg, "${V}") {
				t.Errorf("want an error at %s naming ${V}, got:\n%s", tc.path, msg)
			}
		})
	}
}

// TestErrorsHideURLPasswords: URLs with a password are shown masked, and
// an endpoint with user info is refused without showing it.
func TestErrorsHideURLPasswords(t *testing.T) {
	for _, src := range []string{
		"lake: s3://user:Sekr1tXq9zW@bucket\ns3: {endpoint: h:9000}\n",
		"lake: s3://bucket\ns3: {endpoint: \"http://user:Sekr1tXq9zW@h:9000\"}\n",
		"lake: s3://bucket\ns3: {endpoint: \"user:Sekr1tXq9zW@h:9000\"}\n",
		"lake: \"${L}\"\ns3: {endpoint: h:9000}\n",
	} {
		_, err := Parse("medallion.yaml", []byte(src), envOf(map[string]string{"L": "s3://u:Sekr1tXq9zW@BAD"}))
		if err == nil || strings.Contains(err.Error(), "Sekr1t") {
			t.Errorf("%q: got %v", src, err)
		}
	}
}
