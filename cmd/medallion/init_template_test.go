package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
)

// TestInitTemplates: for each sample kind `generate` makes, `init
// --template KIND` writes a pipeline that loads, takes that kind's
// generated data (bad rows included) through ingest and run, and fills
// every silver and gold table it declares.
func TestInitTemplates(t *testing.T) {
	t.Setenv("DATABASE_URL", "") // the mirror is tested on its own
	t.Setenv("MEDALLION_LAKE", "")
	for _, tpl := range config.Templates() {
		t.Run(tpl.Name, func(t *testing.T) {
			dir := t.TempDir()
			pipeline := filepath.Join(dir, "medallion.yaml")
			data := filepath.Join(dir, tpl.File)
			rows := "20000"
			if tpl.Name == "turnstile" {
				rows = "3000"
			}
			steps := [][]string{
				{"init", "-f", pipeline, "--lake", "file://" + filepath.Join(dir, "lake"), "--template", tpl.Name},
				{"generate", tpl.Name, "--rows", rows, "--bad-fraction", "0.01", "--out", data},
				{"ingest", "-f", pipeline, tpl.Source, data},
				{"run", "-f", pipeline},
			}
			for _, args := range steps {
				code, stdout, stderr := cli(t, "", args...)
				if code != 0 {
					t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
				}
				if args[0] == "init" && !strings.Contains(stdout, "medallion generate "+tpl.Name+" ") {
					t.Errorf("init --template %s: next steps do not name the kind:\n%s", tpl.Name, stdout)
				}
			}
			p, err := config.Load(pipeline)
			if err != nil {
				t.Fatal(err)
			}
			tables := []string{"bronze." + tpl.Source}
			for _, s := range p.SilverOrder {
				tables = append(tables, "silver."+s)
			}
			for _, g := range p.GoldOrder {
				tables = append(tables, "gold."+g)
			}
			for _, table := range tables {
				code, stdout, stderr := cli(t, "", "query", "-f", pipeline, "--format", "csv", "SELECT count(*) AS n FROM "+table)
				lines := strings.Split(strings.TrimSpace(stdout), "\n")
				if code != 0 || len(lines) != 2 {
					t.Fatalf("count %s: exit %d\n%s%s", table, code, stdout, stderr)
				}
				if n, _ := strconv.Atoi(lines[1]); n == 0 {
					t.Errorf("%s is empty after a run on generated %s data", table, tpl.Name)
				}
			}
		})
	}
	code, _, stderr := cli(t, "", "init", "-f", filepath.Join(t.TempDir(), "m.yaml"), "--template", "sensors")
	if code != 2 || !strings.Contains(stderr, `unknown template "sensors"`) || !strings.Contains(stderr, `did you mean "sensor"`) {
		t.Errorf("init --template sensors: exit %d, %q", code, stderr)
	}
}
