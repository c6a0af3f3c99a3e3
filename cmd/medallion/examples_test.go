package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/randid"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/warehouse/pgmirror/pgmirrortest"
)

const examplesDir = "../../examples"

// TestExamplesLoad: every examples/*/medallion.yaml loads and validates
// with only the environment its README asks for, and has a README.
func TestExamplesLoad(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(examplesDir, "*", "medallion.yaml"))
	if err != nil || len(dirs) < 3 {
		t.Fatalf("examples: %v %v, want at least three pipelines", dirs, err)
	}
	env := func(k string) (string, bool) {
		if k == "DATABASE_URL" {
			return "postgres://postgres@127.0.0.1:5432/postgres", true
		}
		return "", false
	}
	for _, file := range dirs {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := config.Parse(file, data, env)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if len(p.Sources) == 0 || len(p.SilverOrder) == 0 {
				t.Errorf("%s: no sources or no silver table", file)
			}
			readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
			if err != nil {
				t.Fatalf("every example has a README: %v", err)
			}
			if !strings.Contains(string(readme), "medallion serve") {
				t.Errorf("%s/README.md does not say how to run it (medallion serve)", dir)
			}
		})
	}
}

// useExample writes the example's pipeline as the lake's medallion.yaml,
// with env added to the commands' environment.
func useExample(t *testing.T, l *testLake, name string, env ...string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, name, "medallion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.dir, "medallion.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	l.env = append(l.env, env...)
}

// TestExampleEcommerceFolder runs examples/ecommerce-folder as its README
// does, with `medallion run`: generated CSV files in the drop folder (one
// still being written), bronze, silver and the PostgreSQL mirror.
func TestExampleEcommerceFolder(t *testing.T) {
	dsn := testenv.PostgresURL(t)
	schema, conn := pgmirrortest.Schema(t, dsn, "execo")
	l := newTestLake(t, "local")
	useExample(t, l, "ecommerce-folder", "MEDALLION_LAKE="+l.url, "DATABASE_URL="+dsn, "MIRROR_SCHEMA="+schema)
	if err := os.Mkdir(filepath.Join(l.dir, "drop"), 0o755); err != nil {
		t.Fatal(err)
	}
	l.run(t, "generate", "ecommerce", "--rows", "20000", "--bad-fraction", "0.001", "--out", "drop/export-1.csv")
	l.run(t, "generate", "ecommerce", "--rows", "20000", "--seed", "2", "--start", "2024-01-01 00:40:00", "--out", "drop/export-2.csv")
	l.run(t, "generate", "ecommerce", "--rows", "100", "--seed", "3", "--out", "drop/export-3.csv.part")
	out := l.run(t, "run", "--create-lake") // a new lake, as the README's first start
	bronze := l.count(t, "SELECT count(*) FROM bronze.events")
	quarantined := l.count(t, "SELECT count(*) FROM bronze._quarantine")
	if !strings.Contains(out, "took 2 new files") || !strings.Contains(out, "bronze.events: 40000 rows read") || quarantined == 0 {
		t.Fatalf("want the two complete files (40000 rows, the .part file not taken) and the bad lines quarantined; bronze has %d rows, quarantine %d\n%s", bronze, quarantined, out)
	}
	var pg, windows int64
	if err := conn.QueryRow(context.Background(), fmt.Sprintf("SELECT (SELECT count(*) FROM %s.events), (SELECT count(*) FROM %s.category_sales_1h)", schema, schema)).Scan(&pg, &windows); err != nil {
		t.Fatal(err)
	}
	if pg != bronze || windows == 0 {
		t.Fatalf("PostgreSQL: %d events (bronze %d), %d hourly windows; want all events and some windows\n%s", pg, bronze, windows, out)
	}
}

// TestExampleIoTMinIO runs examples/iot-minio: sensor JSON files uploaded
// under the prefix reach gold.
func TestExampleIoTMinIO(t *testing.T) {
	l := newTestLake(t, "s3")
	useExample(t, l, "iot-minio", "MEDALLION_LAKE="+l.url+"/iot", "SENSOR_PREFIX="+l.url+"/incoming/")
	for i, start := range []string{"2024-01-01T00:00:00Z", "2024-01-01T00:00:40Z"} {
		name := fmt.Sprintf("upload-%d.json", i)
		l.run(t, "generate", "sensor", "--rows", "80000", "--seed", strconv.Itoa(i+1), "--start", start, "--bad-fraction", "0.001", "--out", name)
		data, err := os.ReadFile(filepath.Join(l.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.store.Put(context.Background(), "incoming/"+name, strings.NewReader(string(data)), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	out := l.run(t, "run", "--create-lake") // a new lake under the bucket, as the README's first start
	if !strings.Contains(out, "bronze.readings: 160000 rows read") || l.count(t, "SELECT count(*) FROM bronze._quarantine") == 0 {
		t.Fatalf("want both files in bronze (160000 rows read), bad lines quarantined\n%s", out)
	}
	if n := l.count(t, "SELECT count(*) FROM gold.device_temperature_ma"); n == 0 {
		t.Fatalf("gold.device_temperature_ma is empty\n%s", out)
	}
}

// TestExampleTurnstileBroker runs examples/turnstile-broker under serve:
// turnstile CSV lines published to NATS (header line included) reach
// bronze, silver and gold, the bad line quarantined.
func TestExampleTurnstileBroker(t *testing.T) {
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatalf("nats-server with JetStream at 127.0.0.1:4222 (scripts/ensure-brokers.sh): %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	id := randid.Hex(6)
	stream, subject := "EXTURN_"+id, "exturn."+id+".lines"
	t.Cleanup(func() { js.DeleteStream(context.Background(), stream) })
	l := newTestLake(t, "local")
	useExample(t, l, "turnstile-broker", "MEDALLION_LAKE="+l.url, "NATS_STREAM="+stream, "NATS_SUBJECT="+subject)
	lines := strings.Split(strings.TrimSpace(l.run(t, "generate", "turnstile", "--rows", "3000")), "\n")
	if len(lines) != 3001 {
		t.Fatalf("generate wrote %d lines, want a header and 3000 rows", len(lines))
	}
	f := strings.Split(lines[100], ",")
	f[9] = "lots" // ENTRIES: not a number
	lines[100] = strings.Join(f, ",")
	srv := startServe(t, l, "--no-ui", "--create-lake") // as the README's first start
	for _, line := range lines {
		if _, err := js.Publish(context.Background(), subject, []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "3000 rows in bronze and quarantine", func() bool {
		out, _, err := l.exec(t, nil, "query", "--format", "csv", "SELECT (SELECT count(*) FROM bronze.turnstiles) + (SELECT count(*) FROM bronze._quarantine) AS n")
		return err == nil && strings.Contains(out, "\n3000\n")
	})
	waitFor(t, "gold.station_daily", func() bool {
		out, _, err := l.exec(t, nil, "query", "--format", "csv", "SELECT count(*) AS n FROM gold.station_daily")
		return err == nil && !strings.Contains(out, "\n0\n")
	})
	if n := l.count(t, "SELECT count(*) FROM silver.station_4h"); n == 0 {
		t.Fatal("silver.station_4h is empty")
	}
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-srv.done; err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.out)
	}
}
