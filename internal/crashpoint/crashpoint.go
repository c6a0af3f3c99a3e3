// Package crashpoint is the one crash-injection mechanism of medallion.
// At a named point, a process whose MEDALLION_CRASH_AT equals that name
// kills itself with SIGKILL (no deferred function, no cleanup, like a power
// cut). It is compiled in only with -tags crashpoints: the crash tests build
// the binary they kill that way, and the shipped binary (make build) has At
// as a no-op, so no environment variable can make it kill itself. In-process
// tests pass the same named points through a Hook instead, which stops the
// run there with an error as if the process had died.
package crashpoint

import "os"

// Env names the environment variable holding the point to crash at.
const Env = "MEDALLION_CRASH_AT"

// StopEnv names the environment variable holding a point at which the
// process stops itself with SIGSTOP (on Unix), as a process paused by the
// operating system, a debugger or a long GC would: the tests of stalled
// lease holders SIGCONT it once a newer runner took over.
const StopEnv = "MEDALLION_STOP_AT"

// Enabled reports whether this binary was built with -tags crashpoints.
const Enabled = enabled

// At kills the process at once, with SIGKILL on Unix, when Env equals
// name. It does not return then. When StopEnv equals name, it stops the
// process and returns once it is continued. Without -tags crashpoints it
// does nothing.
func At(name string) {
	if !Enabled {
		return
	}
	if os.Getenv(StopEnv) == name {
		stop()
	}
	if os.Getenv(Env) != name {
		return
	}
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill() // SIGKILL on Unix
	}
	select {} // wait for the signal to land
}

// Hook is the in-process form of the crash points, for tests that run a
// job in their own process: called at each named point a job passes, an
// error stops the job there as if the process had died. Only tests set
// one; a nil Hook does nothing.
type Hook func(point string) error

// Pass passes the crash point name: At(name), then h's error, if h is set.
func (h Hook) Pass(name string) error {
	At(name)
	if h != nil {
		return h(name)
	}
	return nil
}
