package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// envOf returns an env lookup over a fixed map.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

// TestSpecExample parses the pipeline of SPEC.md section 3 verbatim.
func TestSpecExample(t *testing.T) {
	p, err := Parse("medallion.yaml", readFile(t, "spec.yaml"), envOf(map[string]string{
		"S3_ACCESS_KEY": "minio",
		"S3_SECRET_KEY": "p@ss: #word",
		"DATABASE_URL":  "postgres://u@localhost:5432/db",
	}))
	if err != nil {
		t.Fatal(err)
	}
	yes := ptr(true)
	want := &Pipeline{
		Lake:     "file://./lake",
		S3:       S3{Endpoint: "127.0.0.1:9000", AccessKey: "minio", SecretKey: "p@ss: #word"},
		Postgres: "postgres://u@localhost:5432/db",
		DuckDB:   DuckDB{MemoryLimit: "2GB"},
		Serve: Serve{HTTP: ServeHTTP{MaxBodyBytes: DefaultMaxBodyBytes, MaxPendingBytes: DefaultMaxPendingBytes,
			MaxBufferedBytes: DefaultMaxBufferedBytes, BodyTimeout: DefaultBodyTimeout}},
		Maintenance: defaultMaintenance(),
		Sources: map[string]*Source{"meters": {
			Name:   "meters",
			Format: "ndjson",
			CSV:    CSVOptions{Delimiter: ",", Quote: `"`, Header: true},
			Schema: []*Column{
				{Name: "timestamp", From: "timestamp", Type: "timestamp", Format: "2006-01-02 15:04:05", TZ: "UTC", Trim: yes, EmptyAsNull: yes, Line: 13, Col: 7},
				{Name: "meter_id", From: "meter_id", Type: "string", Required: true, Trim: yes, EmptyAsNull: yes, Line: 14, Col: 7},
				{Name: "energy_usage", From: "energy_usage", Type: "double", Min: ptr(0.0), Trim: yes, EmptyAsNull: yes, Line: 15, Col: 7},
			},
			Dedupe:  []string{"meter_id", "timestamp"},
			Derive:  []*Derived{{Name: "anomaly", Expr: "energy_usage > 100", Line: 18, Col: 7}},
			OnError: "quarantine",
			Line:    10,
		}},
		Silver: map[string]*Silver{"meter_usage_1m": {
			Name:      "meter_usage_1m",
			From:      "meters",
			EventTime: "timestamp",
			Size:      time.Minute,
			Watermark: 2 * time.Minute,
			Output:    "append",
			GroupBy:   []string{"meter_id"},
			Aggregates: []*Aggregate{
				{Name: "readings", Expr: "count(*)", Func: "count", Arg: "*", Line: 30, Col: 7},
				{Name: "avg_usage", Expr: "avg(energy_usage)", Func: "avg", Arg: "energy_usage", Line: 31, Col: 7},
				{Name: "max_usage", Expr: "max(energy_usage)", Func: "max", Arg: "energy_usage", Line: 32, Col: 7},
				{Name: "anomalies", Expr: "count_if(anomaly)", Func: "count_if", Arg: "anomaly", Line: 33, Col: 7},
			},
			Line: 22,
		}},
		Gold: map[string]*Gold{
			"meter_usage_ma": {
				Name:          "meter_usage_ma",
				From:          "meter_usage_1m",
				PartitionBy:   []string{"meter_id"},
				OrderBy:       "window_start",
				MovingAverage: &MovingAverage{Column: "avg_usage", Rows: 15, As: "ma"},
				Flags:         []*Flag{{Name: "spike", When: "avg_usage > ma * 1.5"}},
				DependsOn:     []string{"silver.meter_usage_1m"},
				Line:          36,
			},
			"top_meters": {
				Name:      "top_meters",
				SQL:       "SELECT meter_id, avg(avg_usage) AS mean_usage\nFROM silver.meter_usage_1m GROUP BY meter_id",
				DependsOn: []string{"silver.meter_usage_1m"},
				Line:      42,
			},
		},
		Mirror: []*Mirror{{Table: "gold.meter_usage_ma", To: "public.meter_usage_ma", Key: []string{"meter_id", "window_start"}, Line: 48, Names: "as_declared"}},
		Schedule: map[string]*Schedule{
			"bronze": {Cron: "@every 1m", Line: 53},
			"silver": {After: "bronze", Line: 54},
			"gold":   {After: "silver", Line: 55},
			"mirror": {After: "gold", Line: 56},
		},
		Stream:        Stream{Trigger: time.Second},
		Bronze:        Bronze{DiscoveryGrace: DefaultDiscoveryGrace, TxnRetention: DefaultTxnRetention},
		SourceOrder:   []string{"meters"},
		SilverOrder:   []string{"meter_usage_1m"},
		GoldOrder:     []string{"meter_usage_ma", "top_meters"},
		ScheduleOrder: []string{"bronze", "silver", "gold", "mirror"},
	}
	if !reflect.DeepEqual(p, want) {
		diffPipelines(t, p, want)
	}
}

// diffPipelines reports which parts of two pipelines differ.
func diffPipelines(t *testing.T, got, want *Pipeline) {
	t.Helper()
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if reflect.DeepEqual(g, w) {
			continue
		}
		switch name {
		case "Sources", "Silver", "Gold", "Schedule":
			for _, k := range gv.Field(i).MapKeys() {
				gi, wi := gv.Field(i).MapIndex(k), wv.Field(i).MapIndex(k)
				if !wi.IsValid() {
					t.Errorf("%s[%v]: unexpected", name, k)
					continue
				}
				if !reflect.DeepEqual(gi.Interface(), wi.Interface()) {
					t.Errorf("%s[%v]:\n got  %s\n want %s", name, k, dump(gi.Interface()), dump(wi.Interface()))
				}
			}
		default:
			t.Errorf("%s:\n got  %s\n want %s", name, dump(g), dump(w))
		}
	}
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestStarter(t *testing.T) {
	s := Starter()
	if _, err := Parse("medallion.yaml", s, nil); err != nil {
		t.Fatalf("starter with no environment: %v", err)
	}
	p, err := Parse("medallion.yaml", s, envOf(map[string]string{
		"MEDALLION_LAKE": "s3://lake/dev", "S3_ENDPOINT": "minio:9000", "S3_ACCESS_KEY": "k", "S3_SECRET_KEY": "s",
	}))
	if err != nil {
		t.Fatalf("starter with an S3 lake: %v", err)
	}
	if p.Lake != "s3://lake/dev" || p.S3.Endpoint != "minio:9000" {
		t.Errorf("lake %q endpoint %q", p.Lake, p.S3.Endpoint)
	}
	if got := strings.Join(p.SourceOrder, ",") + "|" + strings.Join(p.SilverOrder, ",") + "|" + strings.Join(p.GoldOrder, ","); got != "meters|meter_usage_1m|meter_usage_ma,top_meters" {
		t.Errorf("tables %s", got)
	}
	if u := p.Sources["meters"].Schema[2].Unit; u != "kWh" {
		t.Errorf("energy_usage unit %q, want kWh", u)
	}
	if len(p.Mirror) != 1 || p.Schedule["bronze"].Cron != "@every 1m" || p.Stream.Trigger != time.Second {
		t.Errorf("mirror, schedule or stream missing: %+v %+v %+v", p.Mirror, p.Schedule, p.Stream)
	}
	// medallion init --lake replaces the one lake: line.
	lakeLine := regexp.MustCompile(`(?m)^lake:.*$`)
	if n := len(lakeLine.FindAll(s, -1)); n != 1 {
		t.Fatalf("starter has %d lake: lines, want 1", n)
	}
	p, err = Parse("medallion.yaml", lakeLine.ReplaceAll(s, []byte("lake: file:///tmp/lake")), nil)
	if err != nil || p.Lake != "file:///tmp/lake" {
		t.Errorf("replaced lake: %v, %v", p, err)
	}
	// Callers may modify the result.
	s[0] = 'X'
	if Starter()[0] == 'X' {
		t.Error("Starter returns shared bytes")
	}
}

// TestBadFiles edits one line of testdata/base.yaml per case and checks the
// whole one-line error.
func TestBadFiles(t *testing.T) {
	base := string(readFile(t, "base.yaml"))
	if _, err := Parse("medallion.yaml", []byte(base), nil); err != nil {
		t.Fatalf("base.yaml: %v", err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown key", "    window: {size: 1m}", "    windw: {size: 1m}",
			`medallion.yaml:16:5: unknown key "windw" in silver.meter_usage_1m (did you mean "window"?)`},
		{"unknown top-level key", "sources:", "sourcs:",
			`medallion.yaml:2:1: unknown key "sourcs" (did you mean "sources"?)`},
		{"unknown key, no close match", "    watermark: 2m", "    lateness: 2m",
			`medallion.yaml:17:5: unknown key "lateness" in silver.meter_usage_1m (expected from, event_time, window, watermark, output, group_by or aggregates)`},
		{"unquoted comma in flow mapping", "{type: double, min: 0}", "{type: decimal(18,2)}",
			`medallion.yaml:8:39: unknown key "2)" in sources.meters.schema.energy_usage (a comma inside {...} starts a new key: quote the value, e.g. type: "decimal(18,2)")`},
		{"duplicate key", "    group_by: [meter_id]", "    group_by: [meter_id]\n    group_by: [x]",
			`medallion.yaml:19:5: silver.meter_usage_1m: duplicate key "group_by" (first given at line 18)`},
		{"wrong type number", "{type: double, min: 0}", "{type: double, min: abc}",
			`medallion.yaml:8:41: sources.meters.schema.energy_usage.min: expected a number, got "abc"`},
		{"wrong type bool", "{type: string, required: true}", "{type: string, required: yes please}",
			`medallion.yaml:7:42: sources.meters.schema.meter_id.required: expected true or false, got "yes please"`},
		{"wrong type list", "    group_by: [meter_id]", "    group_by: {a: b}",
			`medallion.yaml:18:15: silver.meter_usage_1m.group_by: expected a list, got a mapping`},
		{"wrong type whole number", "{column: avg_usage, rows: 15}", "{column: avg_usage, rows: 1.5}",
			`medallion.yaml:26:47: gold.meter_usage_ma.moving_average.rows: expected a whole number, got "1.5"`},
		{"wrong type mapping", "    window: {size: 1m}", "    window: [1m]",
			`medallion.yaml:16:13: silver.meter_usage_1m.window: expected a mapping, got a list`},
		{"bad duration", "    window: {size: 1m}", "    window: {size: 1x}",
			`medallion.yaml:16:20: silver.meter_usage_1m.window.size: expected a duration like 30s, 1m, 1h or 1d, got "1x"`},
		{"duration without unit", "    watermark: 2m", "    watermark: 120",
			`medallion.yaml:17:16: silver.meter_usage_1m.watermark: expected a duration like 30s, 1m, 1h or 1d, got "120"`},
		{"zero window", "    window: {size: 1m}", "    window: {size: 0s}",
			`medallion.yaml:16:20: silver.meter_usage_1m.window.size: must be positive, got 0s`},
		{"slide not dividing size", "    window: {size: 1m}", "    window: {size: 1m, slide: 45s}",
			`medallion.yaml:16:31: silver.meter_usage_1m.window.slide: 45s does not divide the window size 1m`},
		{"slide longer than size", "    window: {size: 1m}", "    window: {size: 1m, slide: 2m}",
			`medallion.yaml:16:31: silver.meter_usage_1m.window.slide: 2m is longer than the window size 1m`},
		{"negative watermark", "    watermark: 2m", "    watermark: -2m",
			`medallion.yaml:17:16: silver.meter_usage_1m.watermark: must not be negative, got -2m`},
		{"missing window", "    window: {size: 1m}\n", "",
			`medallion.yaml:13:3: silver.meter_usage_1m.window.size: required: the window length, e.g. window: {size: 1m}`},
		{"bad output", "    watermark: 2m", "    watermark: 2m\n    output: upsert",
			`medallion.yaml:18:13: silver.meter_usage_1m.output: unknown output mode "upsert": want append or update`},
		{"missing source", "    from: meters", "    from: meterz",
			`medallion.yaml:14:11: silver.meter_usage_1m.from: no source "meterz" (did you mean "meters"?)`},
		{"silver from a silver table", "    from: meters", "    from: meter_usage_1m",
			`medallion.yaml:14:11: silver.meter_usage_1m.from: no source "meter_usage_1m" (meter_usage_1m is a silver table)`},
		{"missing silver table", "    from: meter_usage_1m", "    from: meter_usage_5m",
			`medallion.yaml:24:11: gold.meter_usage_ma.from: no silver table "meter_usage_5m" (did you mean "meter_usage_1m"?)`},
		{"missing event_time column", "    event_time: timestamp", "    event_time: ts",
			`medallion.yaml:15:17: silver.meter_usage_1m.event_time: no column "ts" in source meters (timestamp columns: timestamp)`},
		{"event_time not a timestamp", "    event_time: timestamp", "    event_time: meter_id",
			`medallion.yaml:15:17: silver.meter_usage_1m.event_time: column "meter_id" of source meters is string, not a timestamp (timestamp columns: timestamp)`},
		{"event_time missing", "    event_time: timestamp\n", "",
			`medallion.yaml:13:3: silver.meter_usage_1m.event_time: required: the timestamp column of source meters (timestamp)`},
		{"missing group_by column", "    group_by: [meter_id]", "    group_by: [meter]",
			`medallion.yaml:18:16: silver.meter_usage_1m.group_by[0]: no column "meter" in source meters (did you mean "meter_id"?)`},
		{"aggregate of a missing column", "      avg_usage: avg(energy_usage)", "      avg_usage: avg(energy)",
			`medallion.yaml:21:18: silver.meter_usage_1m.aggregates.avg_usage.expr: avg(energy): no column "energy" in source meters (did you mean "energy_usage"?)`},
		{"unknown aggregate", "      avg_usage: avg(energy_usage)", "      avg_usage: median(energy_usage)",
			`medallion.yaml:21:18: silver.meter_usage_1m.aggregates.avg_usage.expr: unknown aggregate function "median": want one of count(*), count(x), sum(x), min(x), max(x), avg(x), count_if(cond) or approx_count_distinct(x)`},
		{"aggregate clashes with group column", "      readings: count(*)", "      meter_id: count(*)",
			`medallion.yaml:20:7: silver.meter_usage_1m.aggregates.meter_id: aggregate "meter_id" clashes with output column "meter_id"`},
		{"bad type", "{type: double, min: 0}", "{type: float}",
			`medallion.yaml:8:28: sources.meters.schema.energy_usage.type: unknown type "float": want string, int64, double, decimal(p,s), bool, timestamp or date (did you mean "double"?)`},
		{"bad decimal precision", "{type: double, min: 0}", `{type: "decimal(40,2)"}`,
			`medallion.yaml:8:28: sources.meters.schema.energy_usage.type: bad type "decimal(40,2)": precision must be 1 to 38`},
		{"bad decimal scale", "{type: double, min: 0}", `{type: "decimal(10,11)"}`,
			`medallion.yaml:8:28: sources.meters.schema.energy_usage.type: bad type "decimal(10,11)": scale must be 0 to the precision 10`},
		{"bad regex", "{type: string, required: true}", `{type: string, regex: "(abc"}`,
			`medallion.yaml:7:39: sources.meters.schema.meter_id.regex: bad regex "(abc": missing closing )`},
		{"min above max", "{type: double, min: 0}", "{type: double, min: 10, max: 5}",
			`medallion.yaml:8:50: sources.meters.schema.energy_usage.max: max 5 is less than min 10`},
		{"min on a string", "{type: string, required: true}", "{type: string, min: 1}",
			`medallion.yaml:7:37: sources.meters.schema.meter_id.min: min applies only to number columns (int64, double, decimal); this one is string`},
		{"unit on a string", "{type: string, required: true}", "{type: string, unit: kWh}",
			`medallion.yaml:7:38: sources.meters.schema.meter_id.unit: unit applies only to number columns (int64, double, decimal); this one is string`},
		{"unit too long", "{type: double, min: 0}", "{type: double, unit: kilowatt hours per meter}",
			`medallion.yaml:8:42: sources.meters.schema.energy_usage.unit: unit "kilowatt hours per meter": want a short label such as kWh or °C (at most 16 characters, one line)`},
		{"allow_nan on an int64", "{type: double, min: 0}", "{type: int64, allow_nan: true}",
			`medallion.yaml:8:46: sources.meters.schema.energy_usage.allow_nan: allow_nan applies only to double columns (this one is int64)`},
		{"narrowing cast_from", "{type: double, min: 0}", "{type: int64, cast_from: double}",
			`medallion.yaml:8:46: sources.meters.schema.energy_usage.cast_from: cannot cast double to int64: it would lose values (only widening casts apply: int64 to double, decimal or string; decimal(p,s) to a wider decimal; date to timestamp; anything to string); run ` + "`medallion refresh`" + ` to rebuild the table instead`},
		{"cast_from the same type", "{type: double, min: 0}", "{type: double, cast_from: double}",
			`medallion.yaml:8:47: sources.meters.schema.energy_usage.cast_from: cast_from double is the column's type already: remove cast_from once the table has the new type`},
		{"renamed_from a declared column", "{type: double, min: 0}", "{type: double, renamed_from: meter_id}",
			`medallion.yaml:8:50: sources.meters.schema.energy_usage.renamed_from: renamed_from "meter_id" is another declared column: a column can be renamed only to a name the schema no longer uses`},
		{"renamed_from itself", "{type: double, min: 0}", "{type: double, renamed_from: energy_usage}",
			`medallion.yaml:8:50: sources.meters.schema.energy_usage.renamed_from: renamed_from "energy_usage" is the column's own name: remove renamed_from`},
		{"strftime layout", `format: "2006-01-02 15:04:05"`, `format: "%Y-%m-%d %H:%M:%S"`,
			`medallion.yaml:6:44: sources.meters.schema.timestamp.format: format "%Y-%m-%d %H:%M:%S" is not a Go layout: write "2006-01-02 15:04:05"`},
		{"layout without year", `format: "2006-01-02 15:04:05"`, `format: "15:04:05"`,
			`medallion.yaml:6:44: sources.meters.schema.timestamp.format: format "15:04:05" has no year: write the reference time in your layout, e.g. "2006-01-02 15:04:05"`},
		{"bad time zone", `format: "2006-01-02 15:04:05"}`, `tz: Mars/Base}`,
			`medallion.yaml:6:40: sources.meters.schema.timestamp.tz: unknown time zone "Mars/Base": want an IANA name such as UTC or Europe/Paris`},
		{"bad column name", "      meter_id: {type: string", "      meter-id: {type: string",
			`medallion.yaml:7:7: sources.meters.schema.meter-id: bad column name "meter-id": use letters, digits and _, not starting with a digit`},
		{"bad table name", "  meter_usage_1m:", "  1m_usage:",
			`medallion.yaml:13:3: silver.1m_usage: bad table name "1m_usage": use letters, digits and _, not starting with a digit`},
		{"dedupe column missing", "    dedupe: [meter_id, timestamp]", "    dedupe: [meter_id, ts]",
			`medallion.yaml:9:24: sources.meters.dedupe[1]: no column "ts" in the schema (columns: timestamp, meter_id, energy_usage)`},
		{"bad format", "    format: ndjson", "    format: parquet",
			`medallion.yaml:4:13: sources.meters.format: unknown format "parquet": want csv, json or ndjson`},
		{"csv options on ndjson", "    format: ndjson", "    format: ndjson\n    csv: {delimiter: \";\"}",
			`medallion.yaml:5:10: sources.meters.csv: csv options apply only to format csv (this source is ndjson)`},
		{"bad on_error", "    dedupe: [meter_id, timestamp]", "    dedupe: [meter_id, timestamp]\n    on_error: ignore",
			`medallion.yaml:10:15: sources.meters.on_error: unknown policy "ignore": want quarantine, drop or fail`},
		{"sql reads a missing table", "      FROM silver.meter_usage_1m GROUP", "      FROM silver.meter_usage_5m GROUP",
			`medallion.yaml:30:12: gold.top_meters.sql: reads silver.meter_usage_5m, which is not declared (did you mean silver.meter_usage_1m?)`},
		{"sql model reads itself", "      FROM silver.meter_usage_1m GROUP", "      FROM gold.top_meters GROUP",
			`medallion.yaml:28:10: gold.top_meters.sql: cycle: gold.top_meters -> gold.top_meters`},
		{"sql models in a cycle", "      FROM silver.meter_usage_1m GROUP BY meter_id",
			"      FROM gold.b GROUP BY meter_id\n  b:\n    sql: SELECT * FROM gold.c\n  c:\n    sql: SELECT * FROM gold.top_meters",
			`medallion.yaml:28:10: gold.top_meters.sql: cycle: gold.top_meters -> gold.b -> gold.c -> gold.top_meters`},
		{"sql is not a query", "    sql: |\n      SELECT meter_id, avg(avg_usage) AS mean_usage\n", "    sql: |\n      DELETE\n",
			`medallion.yaml:28:10: gold.top_meters.sql: want a query (SELECT ... or WITH ...), got "delete"`},
		{"gold with from and sql", "    moving_average: {column: avg_usage, rows: 15}", "    moving_average: {column: avg_usage, rows: 15}\n    sql: SELECT 1",
			`medallion.yaml:23:3: gold.meter_usage_ma: give either from: (a moving average over a silver table) or sql: (an analyst model), not both`},
		{"moving average kinds", "{column: avg_usage, rows: 15}", "{column: avg_usage, rows: 15, range: 15m}",
			`medallion.yaml:26:58: gold.meter_usage_ma.moving_average.range: give one of rows, range or ema, not both rows and range`},
		{"moving average of a missing column", "{column: avg_usage, rows: 15}", "{column: avg, rows: 15}",
			`medallion.yaml:26:30: gold.meter_usage_ma.moving_average.column: no column "avg" in silver.meter_usage_1m (did you mean "avg_usage"?)`},
		{"ema alpha out of range", "{column: avg_usage, rows: 15}", "{column: avg_usage, ema: {alpha: 1.5}}",
			`medallion.yaml:26:54: gold.meter_usage_ma.moving_average.ema.alpha: must be in (0, 1], got 1.5`},
		{"mirror of a missing table", "  - table: gold.meter_usage_ma", "  - table: gold.meter_usage",
			`medallion.yaml:32:12: mirror[0].table: no gold table "meter_usage" (did you mean "meter_usage_ma"?)`},
		{"mirror of an unrelated table", "  - table: gold.meter_usage_ma", "  - table: gold.revenue",
			`medallion.yaml:32:12: mirror[0].table: no gold table "revenue" (declared: meter_usage_ma, top_meters)`},
		{"mirror key, close name", "    key: [meter_id, window_start]", "    key: [meter_id, window_stat]",
			`medallion.yaml:34:21: mirror[0].key[1]: no column "window_stat" in gold.meter_usage_ma (did you mean "window_start"?)`},
		{"mirror table without layer", "  - table: gold.meter_usage_ma", "  - table: meter_usage_ma",
			`medallion.yaml:32:12: mirror[0].table: "meter_usage_ma": want layer.name, e.g. gold.meter_usage_ma (did you mean gold.meter_usage_ma?)`},
		{"mirror without key", "    key: [meter_id, window_start]", "    key: []",
			`medallion.yaml:34:10: mirror[0].key: required: the primary key columns, e.g. [meter_id, window_start]`},
		{"mirror key not a column", "    key: [meter_id, window_start]", "    key: [meter_id, window_begin]",
			`medallion.yaml:34:21: mirror[0].key[1]: no column "window_begin" in gold.meter_usage_ma (columns: window_start, window_end, meter_id, readings, avg_usage, ma)`},
		{"bad cron step", `  bronze: "@every 1m"`, `  bronze: "*/0 * * * *"`,
			`medallion.yaml:36:11: schedule.bronze: bad cron spec "*/0 * * * *": minute "*/0": step "0" must be a whole number of at least 1`},
		{"bad cron fields", `  bronze: "@every 1m"`, `  bronze: "0 0 * *"`,
			`medallion.yaml:36:11: schedule.bronze: bad cron spec "0 0 * *": want 5 fields (minute hour day-of-month month day-of-week), got 4`},
		{"bad cron range", `  bronze: "@every 1m"`, `  bronze: "0 25 * * *"`,
			`medallion.yaml:36:11: schedule.bronze: bad cron spec "0 25 * * *": hour "25": 25 is out of range 0-23`},
		{"bad cron descriptor", `  bronze: "@every 1m"`, `  bronze: "@dayly"`,
			`medallion.yaml:36:11: schedule.bronze: bad cron spec "@dayly": unknown schedule "@dayly": want @every <duration>, @hourly, @daily, @weekly, @monthly or @yearly (did you mean "@daily"?)`},
		{"bad @every", `  bronze: "@every 1m"`, `  bronze: "@every 0s"`,
			`medallion.yaml:36:11: schedule.bronze: bad cron spec "@every 0s": @every: the interval must be positive, got "0s"`},
		{"schedule of an unknown job", "  silver: {after: bronze}", "  silvr: {after: bronze}",
			`medallion.yaml:37:3: schedule.silvr: no layer or table "silvr": jobs are raw, bronze, silver, gold, mirror, or a table (did you mean "silver"?)`},
		{"after an unknown job", "  silver: {after: bronze}", "  silver: {after: bronz}",
			`medallion.yaml:37:19: schedule.silver.after: no layer or table "bronz": jobs are raw, bronze, silver, gold, mirror, or a table (did you mean "bronze"?)`},
		{"after cycle", "  silver: {after: bronze}", "  silver: {after: gold}\n  gold: {after: meter_usage_ma}\n  meter_usage_ma: {after: silver}",
			`medallion.yaml:37:19: schedule.silver.after: cycle: silver -> gold -> meter_usage_ma -> silver`},
		{"cron and after", "  silver: {after: bronze}", `  silver: {after: bronze, cron: "@daily"}`,
			`medallion.yaml:37:3: schedule.silver: give cron or after, not both`},
		{"stream trigger", "  trigger: 1s", "  trigger: 0s",
			`medallion.yaml:39:12: stream.trigger: must be a positive duration, e.g. 1s (leave stream out to disable stream mode)`},
		{"s3 lake without endpoint", "lake: file://./lake", "lake: s3://bucket/x",
			`medallion.yaml:1:7: s3.endpoint: required when lake is s3:// (host:port of the S3 or MinIO server)`},
		{"unsupported lake", "lake: file://./lake", "lake: gs://bucket",
			`medallion.yaml:1:7: lake: unsupported lake "gs://bucket": want file://DIR, a directory or s3://bucket/prefix`},
		{"empty lake", "lake: file://./lake", "lake: ${MEDALLION_LAKE}",
			`medallion.yaml:1:7: lake: ${MEDALLION_LAKE}: empty: want file://DIR, a directory or s3://bucket/prefix (is the variable it names set?)`},
		{"unterminated ${", "lake: file://./lake", "lake: ${MEDALLION_LAKE:-file://./lake",
			`medallion.yaml:1:7: lake: unterminated "${": close it with "}", or write "$$" for a literal "$"`},
		{"unterminated ${ mid-value", "    to: public.meter_usage_ma", "    to: public.${TABLE",
			`medallion.yaml:33:16: mirror[0].to: unterminated "${": close it with "}", or write "$$" for a literal "$"`},
		{"unterminated ${ in a block", "      FROM silver.meter_usage_1m GROUP", "      FROM silver.${X GROUP",
			`medallion.yaml:30:19: gold.top_meters.sql: unterminated "${": close it with "}", or write "$$" for a literal "$"`},
		{"bad variable name", "lake: file://./lake", "lake: ${1LAKE}",
			`medallion.yaml:1:7: lake: bad variable reference "${1LAKE}": want ${NAME} or ${NAME:-default}`},
		{"bad yaml", "    window: {size: 1m}", "    window: {size: 1m",
			`medallion.yaml:15: bad YAML: did not find expected ',' or '}'`},
		{"two documents", "stream:", "---\nstream:",
			`medallion.yaml:38:1: a second YAML document: the pipeline file holds one (remove the ---)`},
		{"not a mapping", base, "- a\n- b\n",
			`medallion.yaml:1:1: expected a mapping of settings (lake, sources, silver, gold, ...), got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(base, tt.old, tt.new, 1)
			if src == base {
				t.Fatalf("%q is not in base.yaml", tt.old)
			}
			_, err := Parse("medallion.yaml", []byte(src), nil)
			if err == nil {
				t.Fatalf("no error; want %s", tt.want)
			}
			got, _, _ := strings.Cut(err.Error(), "\n")
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not an *Error", err)
			}
			if e.Error() != got {
				t.Errorf("errors.As gave %q, not the first line", e.Error())
			}
		})
	}
}

// TestSeveralErrors checks that every problem is reported, in file order.
func TestSeveralErrors(t *testing.T) {
	base := string(readFile(t, "base.yaml"))
	src := strings.NewReplacer(
		"  trigger: 1s", "  trigger: 0s",
		"    format: ndjson", "    format: xml",
		"    event_time: timestamp", "    event_time: ts",
	).Replace(base)
	_, err := Parse("m.yaml", []byte(src), nil)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	var prefixes []string
	for _, l := range lines {
		f := strings.SplitN(l, ":", 3)
		prefixes = append(prefixes, f[0]+":"+f[1])
	}
	if got := strings.Join(prefixes, " "); got != "m.yaml:4 m.yaml:15 m.yaml:39" {
		t.Errorf("errors at %s, want m.yaml:4 m.yaml:15 m.yaml:39\n%v", got, err)
	}
}

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"A": "alpha", "EMPTY": "", "B": "${A}"})
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x${A}y${A}", "xalphayalpha", ""},
		{"${UNSET}", "", ""},
		{"${UNSET:-dflt}", "dflt", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"${A:-dflt}", "alpha", ""},
		{"${UNSET:-}", "", ""},
		{"${UNSET:-${A}}", "alpha", ""},
		{"${UNSET:-${UNSET2:-deep}}", "deep", ""},
		{"${UNSET:-a:b/c}", "a:b/c", ""},
		{"${B}", "${A}", ""}, // values are not expanded again
		{"$$", "$", ""},
		{"$${A}", "${A}", ""},
		{"cost: $5", "cost: $5", ""},
		{"^[a-z]+$", "^[a-z]+$", ""},
		{"$A", "$A", ""},
		{"${", "", `unterminated "${"`},
		{"x ${A", "", `unterminated "${"`},
		{"${A:-x", "", `unterminated "${"`},
		{"${A:-${B}", "", `unterminated "${"`},
		{"${}", "", `bad variable reference "${}"`},
		{"${1A}", "", `bad variable reference "${1A}"`},
		{"${A B}", "", `bad variable reference "${A B}"`},
		{"${A:?required}", "", `bad variable reference "${A:?required}"`},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in, env)
		switch {
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("Expand(%q) error %v, want %s...", tt.in, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("Expand(%q): %v", tt.in, err)
		case tt.err == "" && got != tt.want:
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestEnvInParse checks that variables fill values but never change the
// file's structure, and are typed like the text they replace.
func TestEnvInParse(t *testing.T) {
	src := []byte(`lake: ${LAKE:-s3://bucket/prefix}
s3:
  endpoint: ${S3_ENDPOINT}
  access_key: ${KEY}
  secret_key: "${SECRET}"
  secure: ${S3_SECURE:-false}
postgres: ${DATABASE_URL:-}
duckdb:
  threads: ${THREADS:-2}
  memory_limit: ${MEM}
sources:
  s:
    format: csv
    csv: {delimiter: "${DELIM:-,}"}
    schema:
      price: {type: double, min: 0, regex: '^[0-9.]+$$'}
`)
	p, err := Parse("m.yaml", src, envOf(map[string]string{
		"S3_ENDPOINT": "minio:9000",
		"KEY":         "*alias",
		"SECRET":      "a: b # not a comment\n- not a list",
		"S3_SECURE":   "true",
		"THREADS":     "8",
		"DELIM":       ";",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Lake != "s3://bucket/prefix" || p.S3.Endpoint != "minio:9000" || p.S3.AccessKey != "*alias" ||
		p.S3.SecretKey != "a: b # not a comment\n- not a list" || !p.S3.Secure || p.Postgres != "" {
		t.Errorf("s3/lake: %+v %q %q", p.S3, p.Lake, p.Postgres)
	}
	if p.DuckDB.Threads != 8 || p.DuckDB.MemoryLimit != "2GB" {
		t.Errorf("duckdb: %+v (an empty memory_limit keeps the default)", p.DuckDB)
	}
	if s := p.Sources["s"]; s.CSV.Delimiter != ";" || s.Schema[0].Regex != "^[0-9.]+$" {
		t.Errorf("source: %+v %q", s.CSV, s.Schema[0].Regex)
	}

	// In a flow mapping ${...} must be quoted; the value is still typed.
	p, err = Parse("m.yaml", []byte(`s3: {endpoint: "${EP:-h:9000}", secure: "${SECURE:-true}", access_key: "${KEY}"}`),
		envOf(map[string]string{"KEY": "true"}))
	if err != nil || p.S3 != (S3{Endpoint: "h:9000", Secure: true, AccessKey: "true"}) {
		t.Errorf("flow mapping: %+v, %v", p, err)
	}
	// Without a variable, quoting keeps a value text.
	_, err = Parse("m.yaml", []byte(`s3: {secure: "true"}`), nil)
	if want := `m.yaml:1:14: s3.secure: expected true or false, got "true" in quotes, which makes it text: remove the quotes`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}

	// A variable typed wrongly is reported at the reference, by its name:
	// its value may be a secret put in the wrong variable.
	_, err = Parse("m.yaml", src, envOf(map[string]string{"S3_ENDPOINT": "x:1", "S3_SECURE": "maybe"}))
	if want := `m.yaml:6:11: s3.secure: ${S3_SECURE:-false} is not true or false`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	_, err = Parse("m.yaml", src, envOf(map[string]string{"S3_ENDPOINT": "x:1", "THREADS": "many"}))
	if want := `m.yaml:9:12: duckdb.threads: ${THREADS:-2} is not a whole number`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestDefaults(t *testing.T) {
	p, err := Parse("m.yaml", []byte(`
sources:
  turnstiles:
    format: csv
    schema:
      station: {type: string, from: " STATION  "}
      entries: int64
      day: {type: date, format: "01/02/2006"}
      price: {type: "Decimal(10, 2)", trim: false, empty_as_null: false}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Lake != "file://./lake" || p.DuckDB.MemoryLimit != "2GB" {
		t.Errorf("top-level defaults: %q %+v", p.Lake, p.DuckDB)
	}
	s := p.Sources["turnstiles"]
	if s.CSV != (CSVOptions{Delimiter: ",", Quote: `"`, Header: true}) || s.OnError != "quarantine" {
		t.Errorf("source defaults: %+v %q", s.CSV, s.OnError)
	}
	var got []string
	for _, c := range s.Schema {
		got = append(got, c.Name+"<"+c.From+">"+c.Type+":"+c.TZ)
		if c.Name != "price" && (!*c.Trim || !*c.EmptyAsNull) {
			t.Errorf("%s: trim and empty_as_null default to true", c.Name)
		}
	}
	if want := "station< STATION  >string: entries<entries>int64: day<day>date: price<price>decimal(10,2):"; strings.Join(got, " ") != want {
		t.Errorf("columns %s\nwant    %s", strings.Join(got, " "), want)
	}
	if c := s.Schema[3]; *c.Trim || *c.EmptyAsNull {
		t.Error("explicit false was not kept")
	}

	empty, err := Parse("m.yaml", nil, nil)
	if err != nil || !reflect.DeepEqual(empty, Defaults()) {
		t.Errorf("empty file: %+v, %v", empty, err)
	}
}

// TestShapes covers the accepted alternative spellings.
func TestShapes(t *testing.T) {
	p, err := Parse("m.yaml", []byte(`
lake: s3://lake/prefix
s3: {endpoint: "127.0.0.1:9000", region: eu-west-1, secure: true}
duckdb: {memory_limit: 512MB, threads: 4, temp_dir: /tmp/spill}
cache: /var/cache/medallion
sources:
  clicks:
    format: csv
    csv: {delimiter: "\t", header: false}
    schema: &cols
      ts: {type: timestamp}
      user: {type: string, accepted: [a, 1, true]}
    partition_by: event_date
    listen: ":9999"
  clicks2:
    format: json
    schema: *cols
silver:
  per_user:
    from: bronze.clicks
    event_time: ts
    window: 5m
    output: update
    group_by: user
    aggregates:
      n: COUNT( * )
      users: approx_count_distinct(user)
      late: count_if(user = 'x)')
gold:
  ema:
    from: silver.per_user
    moving_average:
      column: n
      ema: 0.5
      as: n_ema
    flags:
      - {name: hot, when: n > n_ema}
      - {name: cold, when: n < n_ema / 2}
  ranged:
    from: per_user
    moving_average: {column: n, range: 1d}
  report:
    sql: |
      -- reads gold.ema (comment: not a reference)
      WITH x AS (SELECT 'silver.nope' AS s, * FROM gold.ema)
      SELECT * FROM x JOIN "gold"."ranged" USING (user) JOIN bronze._quarantine q ON true
mirror:
  - {table: gold.ema, key: [user, window_start]}
  - {table: bronze._quarantine, to: quarantine, key: [_batch_id]}
schedule:
  clicks: {cron: "*/5 9-17 * JAN-dec mon-FRI"}
  silver.per_user: {after: bronze.clicks}
  gold: {after: per_user}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.S3 != (S3{Endpoint: "127.0.0.1:9000", Region: "eu-west-1", Secure: true}) || p.DuckDB != (DuckDB{"512MB", 4, "/tmp/spill"}) || p.Cache != "/var/cache/medallion" {
		t.Errorf("settings: %+v %+v %q", p.S3, p.DuckDB, p.Cache)
	}
	c := p.Sources["clicks"]
	if c.CSV.Delimiter != "\t" || c.CSV.Header || c.CSV.Quote != `"` || c.PartitionBy != "event_date" || c.Listen != ":9999" {
		t.Errorf("clicks: %+v", c)
	}
	if got := c.Schema[1].Accepted; !reflect.DeepEqual(got, []string{"a", "1", "true"}) {
		t.Errorf("accepted %q", got)
	}
	if len(p.Sources["clicks2"].Schema) != 2 {
		t.Error("alias not followed")
	}
	s := p.Silver["per_user"]
	if s.From != "clicks" || s.Size != 5*time.Minute || s.Output != "update" || !reflect.DeepEqual(s.GroupBy, []string{"user"}) {
		t.Errorf("silver: %+v", s)
	}
	var aggs []string
	for _, a := range s.Aggregates {
		aggs = append(aggs, a.Name+"="+a.Func+"("+a.Arg+")")
	}
	if got := strings.Join(aggs, " "); got != "n=count(*) users=approx_count_distinct(user) late=count_if(user = 'x)')" {
		t.Errorf("aggregates %s", got)
	}
	g := p.Gold["ema"]
	if g.From != "per_user" || g.OrderBy != "window_start" || *g.MovingAverage != (MovingAverage{Column: "n", EMAAlpha: 0.5, As: "n_ema"}) || len(g.Flags) != 2 || g.Flags[1].When != "n < n_ema / 2" {
		t.Errorf("gold.ema: %+v %+v", g, g.MovingAverage)
	}
	if r := p.Gold["ranged"].MovingAverage; r.Range != 24*time.Hour || r.As != "ma" {
		t.Errorf("gold.ranged: %+v", r)
	}
	if got := p.Gold["report"].DependsOn; !reflect.DeepEqual(got, []string{"gold.ema", "gold.ranged", "bronze._quarantine"}) {
		t.Errorf("report depends on %q", got)
	}
	if m := p.Mirror; m[0].To != "public.ema" || m[1].To != "public.quarantine" {
		t.Errorf("mirror targets %q %q", m[0].To, m[1].To)
	}
	if got := p.ScheduleOrder; !reflect.DeepEqual(got, []string{"clicks", "silver.per_user", "gold"}) {
		t.Errorf("schedule order %q", got)
	}
}

func TestParseAggregate(t *testing.T) {
	tests := []struct{ in, fn, arg, err string }{
		{"count(*)", "count", "*", ""},
		{" COUNT ( * ) ", "count", "*", ""},
		{"count(x)", "count", "x", ""},
		{"sum(energy_usage)", "sum", "energy_usage", ""},
		{"min(x)", "min", "x", ""},
		{"Max(x)", "max", "x", ""},
		{"avg( x )", "avg", "x", ""},
		{"approx_count_distinct(user_id)", "approx_count_distinct", "user_id", ""},
		{"count_if(anomaly)", "count_if", "anomaly", ""},
		{"count_if(a > 1 and (b < 2 or c = ')'))", "count_if", "a > 1 and (b < 2 or c = ')')", ""},
		{"", "", "", "empty aggregate"},
		{"avg", "", "", `"avg" is not an aggregate`},
		{"avg(x) + 1", "", "", `"avg(x) + 1" is not an aggregate`},
		{"avg(x) + sum(y)", "", "", `"avg(x) + sum(y)": want one call like avg(x): unbalanced parentheses`},
		{"median(x)", "", "", `unknown aggregate function "median"`},
		{"cnt(x)", "", "", `unknown aggregate function "cnt": want one of count(*), count(x), sum(x), min(x), max(x), avg(x), count_if(cond) or approx_count_distinct(x) (did you mean "count"?)`},
		{"sum(*)", "", "", "sum(*) is not allowed: only count(*) takes *"},
		{"sum()", "", "", "sum() needs an argument"},
		{"sum(a + b)", "", "", "sum(a + b): the argument must be a column name"},
		{"count_if('x)", "", "", "unterminated '"},
		{"a.b(x)", "", "", "is not an aggregate"},
	}
	for _, tt := range tests {
		fn, arg, err := ParseAggregate(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseAggregate(%q) error %v, want %s", tt.in, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("ParseAggregate(%q): %v", tt.in, err)
		case fn != tt.fn || arg != tt.arg:
			t.Errorf("ParseAggregate(%q) = %q, %q, want %q, %q", tt.in, fn, arg, tt.fn, tt.arg)
		}
	}
}

func TestValidateCron(t *testing.T) {
	good := []string{
		"@every 1m", "@every 90s", "@every 1h30m", "@every 1d", "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually",
		"* * * * *", "*/5 * * * *", "0 0 * * *", "0,15,30,45 * * * *", "0 9-17 * * 1-5", "0 9-17/2 * * mon-fri",
		"5/15 * * * *", "0 0 1 jan,JUL *", "0 0 * * 7", "0 0 31 12 0", "  0 0 * * *  ", "59 23 31 12 6",
	}
	for _, s := range good {
		if err := ValidateCron(s); err != nil {
			t.Errorf("ValidateCron(%q): %v", s, err)
		}
	}
	bad := map[string]string{
		"":               "empty schedule",
		"@every":         `want "@every <duration>"`,
		"@every 1m 2m":   `want "@every <duration>"`,
		"@every -1m":     "@every: the interval must be positive",
		"@every soon":    `@every: expected a duration like 30s, 1m, 1h or 1d, got "soon"`,
		"@daily 5":       "@daily takes no arguments",
		"@reboot":        `unknown schedule "@reboot"`,
		"* * * *":        "want 5 fields",
		"* * * * * *":    "want 5 fields (minute hour day-of-month month day-of-week), got 6",
		"60 * * * *":     `minute "60": 60 is out of range 0-59`,
		"* 24 * * *":     `hour "24": 24 is out of range 0-23`,
		"* * 0 * *":      `day of month "0": 0 is out of range 1-31`,
		"* * * 13 *":     `month "13": 13 is out of range 1-12`,
		"* * * * 8":      `day of week "8": 8 is out of range 0-7`,
		"*/0 * * * *":    `minute "*/0": step "0" must be a whole number of at least 1`,
		"*/61 * * * *":   `minute "*/61": step 61 is larger than the field's range 0-59`,
		"*/x * * * *":    `step "x"`,
		"5-1 * * * *":    "range 5-1 is backwards",
		"1,,2 * * * *":   "empty list item",
		"a * * * *":      `minute "a": "a" is not a number`,
		"* * * foo *":    `month "foo": "foo" is not a number or a name like jan`,
		"-1 * * * *":     "missing value",
		"1-2-3 * * * *":  `"2-3" is not a number`,
		"+1 * * * *":     `"+1" is not a number`,
		"*/+5 * * * *":   `step "+5"`,
		"1- * * * *":     "missing value",
		"* * * * mon/0":  `step "0"`,
		"*/5/5 * * * *":  `step "5/5"`,
		"0 0 * * sunday": `"sunday" is not a number or a name like sun`,
	}
	for s, want := range bad {
		err := ValidateCron(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateCron(%q) = %v, want %s", s, err, want)
		}
	}
}

func TestTableRefs(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"SELECT * FROM silver.meter_usage_1m", []string{"silver.meter_usage_1m"}},
		{"select * from Silver.x join GOLD.y using (k) join silver.x using (k)", []string{"silver.x", "gold.y"}},
		{`SELECT 'bronze.not_a_table', "silver.quoted_ident" FROM gold."Quoted"`, []string{"gold.Quoted"}},
		{"SELECT 1 -- from gold.comment\nFROM bronze.meters /* silver.block */", []string{"bronze.meters"}},
		{"SELECT $$gold.dollar$$, $t$ silver.x $t$ FROM gold.a", []string{"gold.a"}},
		{"SELECT s.silver.x, mysilver.y, silver_x.z FROM t", nil},
		{"SELECT silver.x.col FROM silver.x", []string{"silver.x"}},
		{"SELECT 'it''s gold.x' FROM gold.y", []string{"gold.y"}},
		{"SELECT gold.", nil},
		{"SELECT gold.1x", nil},
	}
	for _, tt := range tests {
		if got := TableRefs(tt.sql); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("TableRefs(%q) = %q, want %q", tt.sql, got, tt.want)
		}
	}
	sc := scanSQL("SELECT 1; SELECT 2;")
	if sc.statements != 2 || sc.firstWord != "select" {
		t.Errorf("scan: %+v", sc)
	}
	if sc := scanSQL("  (SELECT 1);  "); sc.statements != 1 || sc.firstWord != "(" {
		t.Errorf("scan: %+v", sc)
	}
	if sc := scanSQL("SELECT 'open"); sc.unclosed != "' string" {
		t.Errorf("scan: %+v", sc)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{"m.yaml", 3, 5, "a.b", "bad"}, "m.yaml:3:5: a.b: bad"},
		{Error{"m.yaml", 3, 0, "a.b", "bad"}, "m.yaml:3: a.b: bad"},
		{Error{"m.yaml", 0, 0, "a.b", "bad"}, "m.yaml: a.b: bad"},
		{Error{"m.yaml", 3, 5, "", "bad"}, "m.yaml:3:5: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestFindAndLoad(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)

	_, err := Find("")
	if want := "no medallion.yaml in " + dir + ": run `medallion init` or pass -f FILE"; err == nil || err.Error() != want {
		t.Errorf("Find: %v, want %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("Find's error is not fs.ErrNotExist")
	}
	if _, err := Find("other.yaml"); err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "pipeline file other.yaml does not exist") {
		t.Errorf("Find(other.yaml): %v", err)
	}
	if _, err := Find(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Find(dir): %v", err)
	}
	if err := os.WriteFile("medallion.yml", []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Find(""); err == nil || !strings.Contains(err.Error(), "there is a medallion.yml") {
		t.Errorf("Find with medallion.yml: %v", err)
	}
	if err := os.WriteFile("medallion.yaml", Starter(), 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := Find("")
	if err != nil || path != "medallion.yaml" {
		t.Fatalf("Find = %q, %v", path, err)
	}
	if path, err := Find("medallion.yml"); err != nil || path != "medallion.yml" {
		t.Errorf("Find(-f) = %q, %v", path, err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Path != "medallion.yaml" || len(p.Sources) != 1 {
		t.Errorf("Load: path %q, %d sources", p.Path, len(p.Sources))
	}
	if _, err := Load("missing.yaml"); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing): %v", err)
	}
	if err := os.WriteFile("bad.yaml", []byte("lake: file://x\nlakes: y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("bad.yaml"); err == nil || err.Error() != `bad.yaml:2:1: unknown key "lakes" (did you mean "lake"?)` {
		t.Errorf("Load(bad): %v", err)
	}
}

func TestAliasBomb(t *testing.T) {
	// Each level merges the one before ten times: 10^8 visits if followed
	// naively. The loader must give up with an error, not hang.
	var b strings.Builder
	b.WriteString("sources:\n  s0: {format: json, schema: &s0 {c: string}}\n")
	for lvl := 1; lvl <= 8; lvl++ {
		prev := fmt.Sprintf("*s%d", lvl-1)
		fmt.Fprintf(&b, "  s%d: {format: json, schema: &s%d {<<: [%s]}}\n", lvl, lvl, strings.Repeat(prev+", ", 9)+prev)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("m.yaml", []byte(b.String()), nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "too many values") {
			t.Errorf("got %v, want a too-many-values error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Parse did not finish")
	}
}

// TestServeLimits: serve.http takes sizes with units, fills the defaults,
// and refuses limits that do not fit together, naming the key and line.
func TestServeLimits(t *testing.T) {
	base := "lake: file://./lake\nsources:\n  m:\n    format: ndjson\n    schema:\n      v: {type: double}\n"
	p, err := Parse("medallion.yaml", []byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := p.Serve.HTTP; h.MaxBodyBytes != DefaultMaxBodyBytes || h.MaxPendingBytes != DefaultMaxPendingBytes ||
		h.MaxBufferedBytes != DefaultMaxBufferedBytes || h.BodyTimeout != DefaultBodyTimeout {
		t.Errorf("defaults: %+v", h)
	}
	p, err = Parse("medallion.yaml", []byte(base+"serve:\n  http:\n    max_body_bytes: 1MiB\n    max_pending_bytes: 4000000\n    max_buffered_bytes: 8 MB\n    body_timeout: 5s\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := p.Serve.HTTP; h.MaxBodyBytes != 1<<20 || h.MaxPendingBytes != 4000000 || h.MaxBufferedBytes != 8000000 || h.BodyTimeout != 5*time.Second {
		t.Errorf("set: %+v", h)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"    max_body_bytes: 16 lots\n", `medallion.yaml:9:21: serve.http.max_body_bytes: expected a size such as 16MiB, 64MB or 1048576, got "16 lots"`},
		{"    max_body_bytes: 0\n", `medallion.yaml:9:21: serve.http.max_body_bytes: must be a positive size, e.g. 16MiB`},
		{"    body_timeout: 0s\n", `medallion.yaml:9:19: serve.http.body_timeout: must be a positive duration, e.g. 30s`},
		{"    max_body_bytes: 2MiB\n    max_pending_bytes: 1MiB\n", `medallion.yaml:10:24: serve.http.max_pending_bytes: 1048576 is below max_body_bytes 2097152: one largest request would never fit`},
		{"    max_body_bytes: 2MiB\n    max_buffered_bytes: 4MiB\n", `medallion.yaml:10:25: serve.http.max_buffered_bytes: 4194304 is not above twice max_body_bytes 2097152: one largest request (its body and its framed copy) would never fit`},
		{"    max_bytes: 1\n", `medallion.yaml:9:5: unknown key "max_bytes" in serve.http`},
	} {
		_, err := Parse("medallion.yaml", []byte(base+"serve:\n  http:\n"+tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %s", tc.yaml, err, tc.want)
		}
	}
}
