package main

import (
	"os/exec"
	"path/filepath"
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
