//go:build !unix

package bronze

import "time"

// processCPU is unknown here: steps report wall time only.
func processCPU() time.Duration { return 0 }
