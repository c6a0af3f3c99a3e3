package config

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of the bronze block (docs/discovery.md).
const (
	// DefaultDiscoveryGrace is how far before its cursor bronze looks again
	// for objects whose landing finished after a later one's.
	DefaultDiscoveryGrace = 15 * time.Minute
	// DefaultTxnRetention is how long a bronze table keeps the txn of each
	// raw object it took.
	DefaultTxnRetention = 7 * 24 * time.Hour
	// minRetentionOverGrace: the retention must exceed the grace window by
	// this factor, so every object bronze can list again still has its txn.
	minRetentionOverGrace = 4
)

// Bronze configures how bronze finds new raw objects and how long its
// tables keep the record of each one taken.
type Bronze struct {
	DiscoveryGrace time.Duration // look again this far before the cursor for late-finishing landings; default 15m
	TxnRetention   time.Duration // txn actions older than this expire (at least 4x discovery_grace); default 7d
}

func (l *loader) decodeBronze(n *yaml.Node, path string, b *Bronze) {
	l.object(n, path,
		field{"discovery_grace", func(n *yaml.Node, path string) { b.DiscoveryGrace = l.duration(n, path) }},
		field{"txn_retention", func(n *yaml.Node, path string) { b.TxnRetention = l.duration(n, path) }},
	)
}

// validateBronze fills the defaults and checks that the retention is well
// above the grace window: an object listed again must still have its txn.
func (l *loader) validateBronze(b *Bronze) {
	ok := true
	if l.has("bronze.discovery_grace") && b.DiscoveryGrace <= 0 {
		l.errorf(nil, "bronze.discovery_grace", "must be a positive duration, e.g. 15m")
		ok = false
	}
	if l.has("bronze.txn_retention") && b.TxnRetention <= 0 {
		l.errorf(nil, "bronze.txn_retention", "must be a positive duration, e.g. 7d")
		ok = false
	}
	if !ok {
		return
	}
	if b.DiscoveryGrace == 0 {
		b.DiscoveryGrace = DefaultDiscoveryGrace
	}
	if b.TxnRetention == 0 {
		b.TxnRetention = max(DefaultTxnRetention, minRetentionOverGrace*b.DiscoveryGrace)
	}
	if b.TxnRetention < minRetentionOverGrace*b.DiscoveryGrace {
		l.errorf(nil, "bronze.txn_retention", "%s is less than %d times discovery_grace %s: an object bronze looks at again could have lost the record that it was taken",
			b.TxnRetention, minRetentionOverGrace, b.DiscoveryGrace)
	}
}
