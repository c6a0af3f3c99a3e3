package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/medallion-dev/medallion/lake"
)

// countStore wraps st so its calls add to a.storeCounts
// (MEDALLION_STORESTATS); without it st is returned as is.
func (a *app) countStore(st lake.Store) lake.Store {
	if a.storeCounts == nil {
		return st
	}
	return lake.Count(st, a.storeCounts)
}

// writeStoreStats writes the command's lake calls to path as one JSON
// object (the bench reads it: how many keys a run listed and read). A file
// that cannot be written is reported; the command's exit code stays.
func writeStoreStats(path string, c *lake.Counts, stderr io.Writer) {
	b, err := json.Marshal(c.Summary())
	if err == nil {
		err = os.WriteFile(path, append(b, '\n'), 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "medallion: MEDALLION_STORESTATS: %v\n", err)
	}
}
