#!/usr/bin/env bash
# make demo: the energy-meter pipeline on a local-directory lake with embedded
# DuckDB: generate readings (with some bad and late rows), land them in raw,
# run the pipeline, and show what came out.
set -euo pipefail
bin=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
step() { printf '\n==> %s\n' "$*"; }

step "medallion init (a starter medallion.yaml and a lake in $dir/lake)"
"$bin" init --lake file://./lake
step "medallion generate energy: 200,000 meter readings, 1% bad rows, 2% late"
"$bin" generate energy --rows 200000 --bad-fraction 0.01 --late-fraction 0.02 --seed 7 --out meters.ndjson
step "medallion ingest meters meters.ndjson (land in raw, exactly once by content)"
"$bin" ingest meters meters.ndjson
step "medallion ingest again: the same bytes are recognised and not landed twice"
"$bin" ingest meters meters.ndjson
step "medallion run (raw -> bronze)"
"$bin" run
step "medallion tables"
"$bin" tables
step "a preview of bronze.meters"
"$bin" query "SELECT timestamp, meter_id, energy_usage, anomaly FROM bronze.meters ORDER BY timestamp LIMIT 10"
step "why rows were quarantined"
"$bin" query "SELECT reason, count(*) AS n FROM bronze._quarantine GROUP BY reason ORDER BY n DESC"
