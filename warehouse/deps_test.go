package warehouse

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestFloorDoesNotPointUp keeps the DuckDB floor (warehouse and everything
// under it, the PostgreSQL mirror included) below the pipeline: none of its
// packages may depend on the configuration, the scheduler or the layer
// jobs, or a change there would recompile, and could break, the engine
// every layer stands on.
func TestFloorDoesNotPointUp(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", "github.com/medallion-dev/medallion/warehouse/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/medallion-dev/medallion/warehouse/pgmirror") {
		t.Fatalf("go list -deps does not list warehouse/pgmirror; is the pattern right?\n%s", out)
	}
	const mod = "github.com/medallion-dev/medallion/"
	for _, banned := range []string{"internal/config", "internal/cron", "layers", "jobs"} {
		for _, d := range deps {
			if d == mod+banned || strings.HasPrefix(d, mod+banned+"/") {
				t.Errorf("warehouse/... depends on %s (run go list -deps ./warehouse/... to see the path)", d)
			}
		}
	}
}
