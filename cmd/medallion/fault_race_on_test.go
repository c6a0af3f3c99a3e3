//go:build race

package main

// faultSuiteRace is true under -race. make test runs this package twice,
// plainly and with -race; the full fault rounds run in the plain pass, and
// the race pass runs the small (-short) variant, which drives the same
// client goroutines: the medallion binary it starts is not race-built, so
// the long rounds would only add minutes.
const faultSuiteRace = true
