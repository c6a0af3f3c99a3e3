package main

import (
	"fmt"
	"strings"
)

// pipeline is what a bench run's medallion.yaml declares.
type pipeline struct {
	lake        string // file://./lake or s3://bucket
	s3          bool   // endpoint and keys from S3_* in the environment
	cache       string // cache directory for S3 objects
	memoryLimit string
	threads     int
	events      bool   // the e-commerce CSV source
	meters      bool   // the energy NDJSON source, its silver and gold tables
	mirrorTo    string // schema.table: mirror bronze.meters there; postgres from DATABASE_URL
	trigger     string // stream.trigger (stream mode of medallion serve); "" is none
}

// yaml renders the pipeline file. The e-commerce and energy schemas are the
// types the references use, with the rules a data engineer would declare:
// required keys, minimums, a timestamp format, dedupe on the key.
func (p pipeline) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by the bench (go run ./bench)\nlake: %s\n", p.lake)
	if p.s3 {
		b.WriteString("s3:\n  endpoint: ${S3_ENDPOINT}\n  access_key: ${S3_ACCESS_KEY}\n  secret_key: ${S3_SECRET_KEY}\n  secure: false\n")
	}
	if p.cache != "" {
		fmt.Fprintf(&b, "cache: %s\n", p.cache)
	}
	if p.mirrorTo != "" {
		b.WriteString("postgres: ${DATABASE_URL}\n")
	}
	if p.memoryLimit != "" || p.threads > 0 {
		var kv []string
		if p.memoryLimit != "" {
			kv = append(kv, "memory_limit: "+p.memoryLimit)
		}
		if p.threads > 0 {
			kv = append(kv, fmt.Sprintf("threads: %d", p.threads))
		}
		fmt.Fprintf(&b, "duckdb: {%s}\n", strings.Join(kv, ", "))
	}
	b.WriteString("sources:\n")
	if p.events {
		b.WriteString(`  events:
    format: csv
    schema:
      event_id:         {type: string, required: true}
      user_id:          {type: string}
      event_type:       {type: string}
      product_id:       {type: string}
      product_name:     {type: string}
      product_category: {type: string}
      product_price:    {type: "decimal(10,2)", min: 0}
      quantity:         {type: int64, min: 0}
      event_timestamp:  {type: timestamp, format: "2006-01-02 15:04:05"}
      session_id:       {type: string}
      device_type:      {type: string}
    dedupe: [event_id]
`)
	}
	if p.meters {
		b.WriteString(`  meters:
    format: ndjson
    schema:
      timestamp:    {type: timestamp, format: "2006-01-02 15:04:05", tz: UTC}
      meter_id:     {type: string, required: true}
      energy_usage: {type: double, min: 0}
    dedupe: [meter_id, timestamp]
    derive:
      anomaly: energy_usage > 100
silver:
  meter_usage_1m:
    from: meters
    event_time: timestamp
    window: {size: 1m}
    watermark: 2m
    output: append
    group_by: [meter_id]
    aggregates:
      readings: count(*)
      avg_usage: avg(energy_usage)
      max_usage: max(energy_usage)
      anomalies: count_if(anomaly)
gold:
  meter_usage_ma:
    from: meter_usage_1m
    partition_by: [meter_id]
    order_by: window_start
    moving_average: {column: avg_usage, rows: 15}
    flag: {name: spike, when: "avg_usage > ma * 1.5"}
`)
	}
	if p.trigger != "" {
		fmt.Fprintf(&b, "stream:\n  trigger: %s\n", p.trigger)
	}
	if p.mirrorTo != "" {
		fmt.Fprintf(&b, "mirror:\n  - table: bronze.meters\n    to: %s\n    key: [meter_id, timestamp]\n", p.mirrorTo)
	}
	return b.String()
}
