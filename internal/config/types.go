// Package config loads and validates the pipeline file, medallion.yaml.
package config

import "time"

// Pipeline is a whole medallion.yaml after ${VAR} expansion, decoding and
// validation. Maps are keyed by table name; the *Order slices keep the order
// in which the file declared them, so runs and listings are deterministic.
type Pipeline struct {
	Path     string // the file it was loaded from ("" when loaded from bytes)
	Lake     string // file://DIR or s3://bucket/prefix; default file://./lake
	S3       S3     // used when Lake is s3://
	Postgres string // connection string; empty disables the mirror
	Cache    string // local cache directory for S3 objects (default: $XDG_CACHE_HOME/medallion)
	DuckDB   DuckDB // engine settings
	Sources  map[string]*Source
	Silver   map[string]*Silver
	Gold     map[string]*Gold
	Mirror   []*Mirror
	Schedule map[string]*Schedule // job name (a layer or a table) -> when
	Stream   Stream
	Bronze   Bronze
	Serve    Serve // limits of `medallion serve`

	Maintenance Maintenance // compaction and retention (maintenance.go)

	SourceOrder   []string
	SilverOrder   []string
	GoldOrder     []string
	ScheduleOrder []string // job names in the order the schedule declared them
}

// S3 holds the object store connection for s3:// lakes.
type S3 struct {
	Endpoint  string // host:port of the S3 API, e.g. s3.amazonaws.com or 127.0.0.1:9000
	AccessKey string // access key id; use ${AWS_ACCESS_KEY_ID}
	SecretKey string // secret key; use ${AWS_SECRET_ACCESS_KEY}, never the value itself
	Region    string // bucket region; empty: the store's default
	Secure    bool   // use HTTPS; default false
}

// DuckDB holds engine limits; they bound memory on large inputs.
type DuckDB struct {
	MemoryLimit string // e.g. "1GB"; default "2GB"
	Threads     int    // 0: all cores
	TempDir     string // spill directory; default under the OS temp dir
}

// Source is one raw input and how it becomes its bronze table.
type Source struct {
	Name        string
	Format      string     // csv | json | ndjson: how raw objects are read
	CSV         CSVOptions // only for csv
	CSVColumns  []string   // csv.columns: the header of a broker source's CSV rows; default: the schema's source names
	Schema      []*Column  // in declaration order
	Dedupe      []string   // column names forming the dedupe key; empty: no dedupe
	Derive      []*Derived // in declaration order
	OnError     string     // quarantine | drop | fail: what a bad row does; default quarantine
	PartitionBy string     // bronze partition column; default: the date of the first timestamp column, as "event_date"
	Listen      string     // optional TCP line listener address for serve (":9999")
	Broker      *Broker    // optional message broker serve consumes (from: {kafka|nats|mqtt: ...})
	Files       *Files     // optional watched folder or S3 prefix (from: {files: ...})
	Line        int        // line of the source's name in the pipeline file
}

// Broker is a message broker a source consumes under `medallion serve`:
// messages are batched into raw objects and acknowledged (offsets
// committed) only after the raw object is durable. Kind says which fields
// apply.
type Broker struct {
	Kind string // kafka | nats | mqtt

	Brokers []string // kafka: seed brokers host:port
	Group   string   // kafka: consumer group
	Topic   string   // kafka: topic; mqtt: topic filter

	URL     string        // nats: nats://host:4222; mqtt: tcp://host:1883
	Stream  string        // nats: JetStream stream
	Subject string        // nats: filter subject
	Durable string        // nats: durable consumer name
	AckWait time.Duration // nats: redelivery timeout
	Create  bool          // nats: create the stream when it does not exist

	QoS      int    // mqtt: must be 1
	ClientID string // mqtt: fixed client id (the broker keeps the session)
	Username string // mqtt
	Password string // mqtt: from the environment (${MQTT_PASSWORD})

	BatchMessages int           // most messages in one raw object
	BatchBytes    int           // most bytes in one raw object
	BatchWait     time.Duration // longest a message waits before its batch is landed

	Line int
}

// CSVOptions are the dialect knobs of a CSV source.
type CSVOptions struct {
	Delimiter string // default ","
	Quote     string // default `"`
	Header    bool   // default true
}

// Column declares one typed bronze column.
type Column struct {
	Name        string // bronze column name
	From        string // source field name (messy headers: " STATION  "); matched after trimming and case-folding; the loader fills it with Name when not given
	Type        string // string | int64 | double | decimal(p,s) | bool | timestamp | date
	Format      string // Go reference layout for timestamp/date ("2006-01-02 15:04:05"); empty: ISO 8601
	TZ          string // IANA zone for timestamps without an offset; the loader fills UTC for timestamp columns
	Required    bool
	Min         *float64
	Max         *float64
	Regex       string
	Accepted    []string // accepted values (compared as text after trimming)
	Trim        *bool    // default true; the loader always fills it
	EmptyAsNull *bool    // default true; the loader always fills it
	// AllowNaN lets a double column take NaN, Infinity and -Infinity text;
	// without it a double must be finite (a number too large for a double
	// is refused either way, never stored as infinity).
	AllowNaN    bool
	Unit        string // of a number column ("kWh", "°C"): the dashboard's axis titles show it
	RenamedFrom string // the column's earlier name in the bronze table: the run renames the table's column, keeping its values, instead of refusing the rename (docs/schema-changes.md)
	CastFrom    string // the column's earlier type in the bronze table: the run converts the table's values to type when every one fits (int64 to double, decimal or string; a wider decimal; date to timestamp), instead of refusing the retype
	Line        int    // line in the pipeline file, for error messages
	Col         int    // column of the name in the pipeline file (1-based; 0 when unknown)
}

// Derived is a column computed with a DuckDB SQL expression over the typed columns.
type Derived struct {
	Name string
	Expr string
	Line int
	Col  int // column of the name in the pipeline file (1-based; 0 when unknown)
}

// Silver is one windowed aggregate table.
type Silver struct {
	Name       string
	From       string        // bronze table (source name)
	EventTime  string        // timestamp column of the bronze table
	Size       time.Duration // window size
	Slide      time.Duration // 0: tumbling (= Size)
	Watermark  time.Duration // allowed lateness
	Output     string        // append | update: rows once per closed window, or updated while it is open; default append
	GroupBy    []string
	Aggregates []*Aggregate // in declaration order
	Line       int          // line of the table's name in the pipeline file
}

// Aggregate is one output measure: Name AS Expr, e.g. avg_usage: avg(energy_usage).
type Aggregate struct {
	Name string
	Expr string // count(*), sum(x), min(x), max(x), avg(x), count_if(cond), approx_count_distinct(x)
	Func string // parsed function name, lower case
	Arg  string // parsed argument ("*" for count(*))
	Line int
	Col  int // column of the name in the pipeline file (1-based; 0 when unknown)
}

// Gold is either a moving-average table over a silver table or an analyst SQL model.
type Gold struct {
	Name          string
	From          string // silver table; empty for SQL models
	PartitionBy   []string
	OrderBy       string // default window_start
	MovingAverage *MovingAverage
	Flags         []*Flag
	SQL           string   // analyst model: any DuckDB SELECT
	DependsOn     []string // tables (layer.name) it reads: silver.<From>, or those the SQL names, found by the loader
	Line          int      // line of the table's name in the pipeline file
}

// MovingAverage: exactly one of Rows, Range, EMAAlpha is set.
type MovingAverage struct {
	Column   string        // the silver column averaged, e.g. avg_usage
	Rows     int           // average over this many rows: the current one and those before it
	Range    time.Duration // average over the rows within this time before the current one, e.g. 15m
	EMAAlpha float64       // exponential moving average smoothing factor, 0 < alpha <= 1
	As       string        // output column name; default "ma"
}

// Flag is a boolean column computed from the row and its moving average.
type Flag struct {
	Name string // the boolean column's name, e.g. spike
	When string // DuckDB expression
}

// Mirror copies one lake table into PostgreSQL.
type Mirror struct {
	Table string   // layer.name, e.g. gold.meter_usage_ma
	To    string   // schema.table in PostgreSQL; the loader fills public.<name> when not given, and public. when no schema is
	Key   []string // primary key columns; upserts and deletes match rows on it
	Line  int

	// Columns, when given, are the only lake columns copied (the key among
	// them), e.g. [meter_id, window_start, ma]; lineage columns
	// (_source_file, _ingested_at, _batch_id, _rescued) only when listed.
	Columns []string
	// Exclude are lake columns not copied; not with columns:. Lineage
	// columns are excluded unless columns: lists them.
	Exclude []string
	// Names is how PostgreSQL names the columns: as_declared | lower;
	// default as_declared. lower writes plain lower-case names (Peak Hour ->
	// peak_hour) that dashboards use without quotes.
	Names string
}

// Schedule says when a job runs under `medallion serve`: Cron ("@every 1m",
// "*/5 * * * *") or After (another job's name), exactly one of them.
type Schedule struct {
	Cron  string // "@every 1m", "@hourly" or a five-field cron line ("*/5 * * * *")
	After string // as written: a layer (bronze) or a table (meters, bronze.meters)
	Line  int    // line of the job's name in the pipeline file
}

// Stream configures stream mode.
type Stream struct {
	Trigger time.Duration // micro-batch interval of serve; 0 (default) disables stream mode
}
