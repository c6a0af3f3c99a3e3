//go:build race

package receiver

// raceDetector is true under -race. duckdb-go trips the checkptr
// instrumentation -race turns on (a misaligned pointer conversion in its
// vector getters), so bronze promotion is only checked without -race; the
// raw-layer checks run either way.
const raceDetector = true
