//go:build unix

package crashpoint

import (
	"os"
	"syscall"
)

// stop sends SIGSTOP to this process; it returns after SIGCONT.
func stop() { _ = syscall.Kill(os.Getpid(), syscall.SIGSTOP) }
