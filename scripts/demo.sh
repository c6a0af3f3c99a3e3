#!/usr/bin/env bash
# make demo: the energy-meter pipeline on a local-directory lake with embedded
# DuckDB: generate readings (with some bad and late rows), land them in raw in
# four deliveries, run the pipeline after each, and show what came out.
set -euo pipefail
bin=$1 dir=$2
# The demo needs no services: the starter's postgres: is ${DATABASE_URL:-},
# and the Makefile exports DATABASE_URL for the tests, so unset it here or
# the demo would mirror into that database (and a second demo, on a new
# lake, would meet the first one's mirror state there).
unset DATABASE_URL
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
step() { printf '\n==> %s\n' "$*"; }
m() { "$bin" "$@"; }

step "medallion init (a starter medallion.yaml and a lake in $dir/lake)"
m init --lake file://./lake
step "medallion generate energy: 200,000 meter readings with 1% bad rows and 2% late ones"
m generate energy --rows 200000 --bad-fraction 0.01 --late-fraction 0.02 --seed 7 --out meters.ndjson
split -n l/4 -d --additional-suffix=.ndjson meters.ndjson delivery-
for f in delivery-0*.ndjson; do
	step "delivery $f: medallion ingest meters $f, then medallion run"
	m ingest meters "$f"
	m run
done
step "the same bytes again are recognised and not landed twice"
m ingest meters delivery-00.ndjson
m run
step "medallion tables"
m tables
step "gold.meter_usage_ma: 15-minute moving average per meter, with spikes flagged"
m query "SELECT meter_id, window_start, readings, round(avg_usage, 2) AS avg_usage, round(ma, 2) AS ma, spike
         FROM gold.meter_usage_ma WHERE meter_id = 'meter-001' ORDER BY window_start DESC LIMIT 10"
step "spikes per meter"
m query "SELECT meter_id, count(*) FILTER (WHERE spike) AS spikes, count(*) AS windows FROM gold.meter_usage_ma GROUP BY meter_id ORDER BY meter_id"
step "gold.top_meters (an analyst SQL model)"
m query "SELECT meter_id, round(mean_usage, 2) AS mean_usage FROM gold.top_meters ORDER BY mean_usage DESC"
step "bronze._quarantine: why rows were refused (file, line, column, reason)"
m query "SELECT coalesce(column_name, '(whole line)') AS column_name, count(*) AS rows, min(reason) AS example
         FROM bronze._quarantine GROUP BY ALL ORDER BY rows DESC"
step "silver._late: readings that arrived after their window was final"
m query "SELECT count(*) AS late_rows, min(lateness_ms) AS min_late_ms, max(lateness_ms) AS max_late_ms FROM silver._late"
step "medallion history gold.meter_usage_ma"
m history gold.meter_usage_ma
