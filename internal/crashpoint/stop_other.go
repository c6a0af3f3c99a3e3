//go:build !unix

package crashpoint

// stop does nothing where there is no SIGSTOP.
func stop() {}
