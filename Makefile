# medallion: build, test, demo and benchmark.
#
#   make demo    run the whole pipeline on a local-directory lake with sample data
#   make test    install what the tests need (MinIO, PostgreSQL if absent, Chromium for the
#                dashboard's browser tests, systemd-analyze for the unit check) and run every
#                test; fails, naming what is missing, when it cannot install one of them
#   make bench   benchmarks as ratios against DuckDB and psql \copy
#   make fuzz    every fuzz target for FUZZTIME each (default 30s)
#   make lint    gofmt + go vet

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/.bin
MINIO := $(BIN)/minio
MINIO_MODULE := github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
export DATABASE_URL
export MINIO_BIN := $(MINIO)
# Packages whose code runs goroutines get the race detector (layers/bronze:
# its manifest reads and verify fan out, and DuckDB's progress is reported
# from warehouse.WatchProgress's goroutine while a statement runs). duckdb-go trips
# Go's checkptr instrumentation inside its own vector code (not ours), so
# checkptr is off for the race run; the race detector itself stays on.
RACE_PKGS := ./lake/... ./internal/... ./dashboard/... ./layers/raw/... ./layers/bronze/... ./layers/gold/... ./jobs/... ./warehouse/... ./cmd/medallion/... ./maintenance/... ./bench/...
RACE_FLAGS := -race -gcflags=all=-d=checkptr=0
DEMO_DIR := $(CURDIR)/demo

# make fuzz: every go test -fuzz target for a bounded time (FUZZTIME=30s
# each by default); the seed corpora also run in make test.
fuzz:
	@scripts/fuzz.sh

.PHONY: docs all build test fuzz minio postgres brokers chromium systemd testreport demo bench lint clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/medallion ./cmd/medallion

minio: $(MINIO)

$(MINIO):
	@echo "==> installing the MinIO server for the integration tests into .bin/minio"
	@echo "    (go install $(MINIO_MODULE); once, takes about 4 minutes)"
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install $(MINIO_MODULE)

postgres:
	@scripts/ensure-postgres.sh

# The broker-source tests talk to a real Mosquitto (MQTT) and NATS with
# JetStream; Kafka runs in-process (franz-go's kfake).
brokers:
	@scripts/ensure-brokers.sh

# The dashboard's browser tests drive a headless Chromium (chromedp); the
# systemd unit is checked with systemd-analyze. Without one (and no way to
# install it) the script says so and make test stops: a test that cannot
# run fails, it is not skipped.
chromium:
	@scripts/ensure-apt.sh chromium chromium "the dashboard's browser tests"

systemd:
	@scripts/ensure-apt.sh systemd-analyze systemd "the systemd unit check (deploy/)"

# go test -json goes through testreport, which prints what plain go test
# does and ends with the list of every skipped test and why.
testreport:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/testreport ./internal/tools/testreport

test: minio postgres brokers chromium systemd testreport
	@echo "==> go vet"
	$(GO) vet ./...
	@echo "==> go test (integration tests use MinIO from .bin/minio and PostgreSQL at $$DATABASE_URL)"
	set -o pipefail; $(GO) test -json -count=1 -timeout 40m ./... | $(BIN)/testreport
	@echo "==> go test -race on the packages that run goroutines"
	set -o pipefail; $(GO) test -json -count=1 $(RACE_FLAGS) -timeout 20m $(RACE_PKGS) | $(BIN)/testreport

demo: build
	@scripts/demo.sh $(BIN)/medallion $(DEMO_DIR)

# make bench: every figure as a ratio against DuckDB (or psql) doing the
# same work in the same run; writes the raw output to
# bench/results/<date>-<commit>.json and renders the table in BENCHMARKS.md
# from it (go run ./bench -render FILE -out BENCHMARKS.md re-renders a
# committed file). Sizes are flags: make bench BENCH_FLAGS="-rows-csv 1000000".
bench: build minio postgres
	$(GO) run ./bench -medallion $(BIN)/medallion -out BENCHMARKS.md $(BENCH_FLAGS)

# make docs: regenerate docs/config.md from internal/config (a test fails
# when it is out of date).
docs:
	$(GO) generate ./internal/config

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN)/medallion $(DEMO_DIR)
