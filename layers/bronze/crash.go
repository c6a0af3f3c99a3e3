package bronze

import (
	"os"
	"syscall"
)

// CrashEnv names the environment variable of the crash-test hook: when it
// equals a kill point's name, the process SIGKILLs itself there. Test-only
// behaviour (the crash tests run the real binary); unset in production.
// Kill points, in order: bronze.before-files (Parquet written locally, not
// uploaded), bronze.after-files (uploaded, nothing committed),
// bronze.after-quarantine (quarantine committed, bronze not),
// bronze.after-commit.
const CrashEnv = "MEDALLION_CRASH_AT"

func crashPoint(name string) {
	if os.Getenv(CrashEnv) == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
