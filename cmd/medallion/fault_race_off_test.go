//go:build !race

package main

// faultSuiteRace is false without -race (see fault_race_on_test.go).
const faultSuiteRace = false
