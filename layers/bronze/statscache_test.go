package bronze

import (
	"reflect"
	"testing"

	"github.com/medallion-dev/medallion/lake/delta"
)

// TestCachedStats: the cache answers what ParseStats does, errors
// included, and parses each distinct stats text once.
func TestCachedStats(t *testing.T) {
	for _, s := range []string{
		`{"numRecords":3,"minValues":{"id":"a"},"maxValues":{"id":"z"},"nullCount":{"id":0}}`,
		`{"numRecords":1}`,
		``,
		`{"minValues":`,
	} {
		want, wantErr := delta.ParseStats(s)
		for range 2 {
			got, err := cachedStats(s)
			if !reflect.DeepEqual(got, want) || (err == nil) != (wantErr == nil) {
				t.Errorf("cachedStats(%q) = %+v, %v; want %+v, %v", s, got, err, want, wantErr)
			}
		}
		statsCache.Lock()
		_, ok := statsCache.m[s]
		statsCache.Unlock()
		if !ok {
			t.Errorf("%q not cached", s)
		}
	}
}
