package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
)

// TestDemoScript runs scripts/demo.sh (what `make demo` runs) with the real
// binary, so a change to a command, a table or a column name the demo
// relies on fails here instead of on a new user's first command.
func TestDemoScript(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs the whole pipeline on 200,000 rows; -short leaves it to the plain pass")
	}
	root, err := testenv.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "demo")
	cmd := exec.CommandContext(t.Context(), "bash", filepath.Join(root, "scripts", "demo.sh"), medallionBin(t), dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"gold.meter_usage_ma", "spikes per meter", "column_name", "invalid JSON", "late_rows"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
