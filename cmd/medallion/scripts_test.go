package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOperatorDayScriptSyntax: scripts/record-operator-day.sh, which
// records docs/operator-day.md, is valid bash (bash -n; the script itself
// builds the binary and runs a long session, so the test does not run it).
func TestOperatorDayScriptSyntax(t *testing.T) {
	script := filepath.Join("..", "..", "scripts", "record-operator-day.sh")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n %s: %v\n%s", script, err, out)
	}
}

// TestOperatorDayRecorded: docs/operator-day.md, as committed, was recorded
// by a build that has every part of the day: a long run with its status
// line, a refresh, a replay whose rows a silver refresh then counts, and a
// schema change refused with its hint, then the hint taken (a section this
// build lacks is recorded as "not available in this build").
func TestOperatorDayRecorded(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operator-day.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if strings.Contains(doc, "not available in this build") {
		t.Errorf("docs/operator-day.md was recorded by a build without every part of the day: rerun scripts/record-operator-day.sh")
	}
	for _, want := range []string{
		"[status] [1/5] bronze.meters",
		"level=INFO msg=progress job=bronze.meters",
		"$ medallion refresh silver.meter_usage_1m --from 2024-01-02 --to 2024-01-03 --downstream",
		"$ medallion replay bronze.events",
		"rebuilt full in one batch over bronze as it is now (bronze.events REPLAY at v2",
		"schema change refused: column energy_usage (double) is no longer written",
		"add `renamed_from: energy_usage` to column usage_kwh",
		"RENAME COLUMN; SCHEMA: renamed energy_usage -> usage_kwh",
		"rebuilt full in one batch over bronze as it is now (bronze.meters RENAME COLUMN at v3",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/operator-day.md lacks %q: rerun scripts/record-operator-day.sh", want)
		}
	}
}
