package delta

import (
	"maps"
	"time"
)

// txnRetentionKey is the table property of Delta's txn retention: txn
// actions older than it are dropped when a snapshot is built (and so from
// the checkpoints written from it).
const txnRetentionKey = "delta.setTransactionRetentionDuration"

// txnRetention is the retention in force for a table with metadata m:
// Options.TxnRetention, else the table property, else none (0).
func (t *Table) txnRetention(m *Metadata) time.Duration {
	if t.opts.TxnRetention > 0 {
		return t.opts.TxnRetention
	}
	if m == nil {
		return 0
	}
	if s, ok := m.Configuration[txnRetentionKey]; ok {
		if d, err := parseInterval(s); err == nil && d > 0 {
			return d
		}
	}
	return 0
}

// expireTxns drops the expirable txns of txns (expires nil: all) last
// updated more than retention before the newest expirable one's
// lastUpdated. Delta measures from the reader's clock; the newest txn is
// used here instead so that a table nobody wrote to for a while keeps its
// progress records, and so that a writer may stamp its txns in the clock
// of its input (bronze stamps a raw object's txn with its landing time).
// A txn without lastUpdated never expires.
func expireTxns(txns map[string]Txn, retention time.Duration, expires func(appID string) bool) {
	if retention <= 0 || len(txns) == 0 {
		return
	}
	if expires == nil {
		expires = func(string) bool { return true }
	}
	var newest int64
	for _, tx := range txns {
		if expires(tx.AppID) {
			newest = max(newest, tx.LastUpdated)
		}
	}
	cutoff := newest - retention.Milliseconds()
	maps.DeleteFunc(txns, func(_ string, tx Txn) bool {
		return tx.LastUpdated > 0 && tx.LastUpdated < cutoff && expires(tx.AppID)
	})
}

// WithTxns returns a copy of s that also records txns, for a writer that
// commits several times against what it read: its own progress is part of
// what it has seen (Commit.Read), another writer's is not. The copy shares
// s's files; only the txns it adds are held apart.
func (s *Snapshot) WithTxns(txns ...Txn) *Snapshot {
	c := *s
	c.over = maps.Clone(s.over)
	if c.over == nil {
		c.over = make(map[string]Txn, len(txns))
	}
	for _, tx := range txns {
		c.over[tx.AppID] = tx
	}
	return &c
}
