package bronze

import "github.com/medallion-dev/medallion/internal/crashpoint"

// CrashEnv names the environment variable of the crash-test hook
// (internal/crashpoint): when it equals a kill point's name, the process
// SIGKILLs itself there (in a binary built with -tags crashpoints). Kill points, in order: bronze.before-files
// (Parquet written locally, not uploaded), bronze.after-files (uploaded,
// nothing committed), bronze.after-quarantine (quarantine committed, bronze
// not), bronze.after-commit. A replay (replay.go) passes
// replay.after-bronze: its rows committed to bronze, the quarantine rows
// they came from not yet marked. A refresh (refresh.go) passes
// bronze.refresh-shadowed (the shadow table complete, nothing live
// changed) and bronze.refresh-quarantined (bronze._quarantine replaced,
// bronze not), besides a run's own points while it types into the shadow.
const CrashEnv = crashpoint.Env
