package crashpoint

import "testing"

// TestShippedBuildIgnoresEnv: without -tags crashpoints (make build), no
// environment variable makes the process kill or stop itself.
func TestShippedBuildIgnoresEnv(t *testing.T) {
	if Enabled {
		t.Skip("built with -tags crashpoints: At would kill the test binary")
	}
	t.Setenv(Env, "p")
	t.Setenv(StopEnv, "p")
	At("p") // returns: the point is compiled out
}
