package config

import (
	"strings"
	"testing"
	"time"
)

func TestBronzeSettings(t *testing.T) {
	base := "lake: file://./lake\nsources:\n  m:\n    format: ndjson\n    schema:\n      v: {type: double}\n"
	for _, tc := range []struct {
		name, yaml  string
		grace, keep time.Duration
		err         string
	}{
		{name: "defaults", grace: DefaultDiscoveryGrace, keep: DefaultTxnRetention},
		{name: "set", yaml: "bronze:\n  discovery_grace: 5m\n  txn_retention: 2d\n", grace: 5 * time.Minute, keep: 48 * time.Hour},
		{name: "long grace", yaml: "bronze:\n  discovery_grace: 3d\n", grace: 72 * time.Hour, keep: 12 * 24 * time.Hour},
		{name: "zero grace", yaml: "bronze:\n  discovery_grace: 0s\n", err: `medallion.yaml:8:20: bronze.discovery_grace: must be a positive duration, e.g. 15m`},
		{name: "bad retention", yaml: "bronze:\n  txn_retention: soon\n", err: `bronze.txn_retention:`},
		{name: "retention under grace", yaml: "bronze:\n  discovery_grace: 1h\n  txn_retention: 2h\n",
			err: `medallion.yaml:9:18: bronze.txn_retention: 2h0m0s is less than 4 times discovery_grace 1h0m0s`},
		{name: "unknown key", yaml: "bronze:\n  grace: 1m\n", err: `unknown key "grace" in bronze`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("medallion.yaml", []byte(base+tc.yaml), nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Bronze.DiscoveryGrace != tc.grace || p.Bronze.TxnRetention != tc.keep {
				t.Fatalf("got %+v, want grace %s retention %s", p.Bronze, tc.grace, tc.keep)
			}
		})
	}
}

func TestWidens(t *testing.T) {
	for _, c := range []struct {
		from, to string
		want     bool
	}{
		{"int64", "double", true}, {"int64", "string", true}, {"int64", "decimal(20,0)", true}, {"int64", "decimal(20,2)", false},
		{"decimal(10,2)", "decimal(12,3)", true}, {"decimal(10,2)", "decimal(10,3)", false}, {"date", "timestamp", true},
		{"bool", "string", true}, {"double", "int64", false}, {"timestamp", "date", false}, {"string", "int64", false},
		{"double", "double", false},
	} {
		if got := Widens(c.from, c.to); got != c.want {
			t.Errorf("Widens(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}
