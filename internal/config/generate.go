package config

// docs/config.md is generated from this package: the keys the decoder
// reads and the doc comments of the fields they fill.
//go:generate go run ../tools/configdoc -config . -out ../../docs/config.md
