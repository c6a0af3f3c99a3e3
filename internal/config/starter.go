package config

import _ "embed"

//go:embed starter.yaml
var starter []byte

// Starter returns the starter medallion.yaml that `medallion init` writes:
// the energy-meter pipeline (a meters source, a one-minute silver table, a
// moving average with a spike flag, an SQL model, a PostgreSQL mirror, a
// schedule and stream mode), commented for a first read. It has exactly one
// line starting with "lake:", which init may replace. Each call returns a
// fresh copy.
func Starter() []byte {
	return append([]byte(nil), starter...)
}
