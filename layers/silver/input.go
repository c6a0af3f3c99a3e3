package silver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/delta"
)

// bronzeFile is one data file of the bronze table that a batch reads.
type bronzeFile struct {
	Path            string                // relative to the bronze table root
	Key             string                // lake key
	PartitionValues delta.PartitionValues // Delta partition values (strings; nil is null)
	Size            int64
}

// newBronzeFiles returns the files that bronze versions (from, to] added
// with dataChange=true, in commit order. Files a later commit in the range
// removed again (a compaction) are still returned: their rows are new to
// silver, and the compacted copy carries dataChange=false.
//
// It reads the commit files themselves rather than diffing two snapshots:
// a snapshot loaded from a checkpoint reports dataChange=false for every
// file, which would hide new data.
func newBronzeFiles(ctx context.Context, t *delta.Table, from, to int64) ([]bronzeFile, error) {
	var out []bronzeFile
	seen := map[string]bool{}
	for v := from + 1; v <= to; v++ {
		adds, err := readAdds(ctx, t, v)
		if err != nil {
			return nil, err
		}
		for _, a := range adds {
			if !a.DataChange || seen[a.Path] {
				continue
			}
			seen[a.Path] = true
			out = append(out, bronzeFile{Path: a.Path, Key: t.Key(a.Path), PartitionValues: a.PartitionValues, Size: a.Size})
		}
	}
	return out, nil
}

// readAdds parses the add actions of one commit file of t.
func readAdds(ctx context.Context, t *delta.Table, v int64) ([]delta.Add, error) {
	key := fmt.Sprintf("%s/_delta_log/%020d.json", t.Dir(), v)
	rc, _, err := t.Store().Get(ctx, key)
	if errors.Is(err, lake.ErrNotExist) {
		return nil, fmt.Errorf("bronze log version %d (%s) is gone (log cleaned up?); silver cannot tell which rows are new: %w", v, key, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read bronze log version %d: %w", v, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read bronze log version %d: %w", v, err)
	}
	var adds []delta.Add
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || !bytes.Contains(line, []byte(`"add"`)) {
			continue
		}
		var act struct {
			Add *delta.Add `json:"add"`
		}
		if err := json.Unmarshal(line, &act); err != nil {
			return nil, fmt.Errorf("bronze log version %d (%s): %w", v, key, err)
		}
		if act.Add == nil {
			continue
		}
		a := *act.Add
		if !strings.Contains(a.Path, "://") {
			p, err := url.PathUnescape(a.Path)
			if err != nil {
				return nil, fmt.Errorf("bronze log version %d: file path %q: %w", v, a.Path, err)
			}
			a.Path = p
		}
		adds = append(adds, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bronze log version %d (%s): %w", v, key, err)
	}
	return adds, nil
}
