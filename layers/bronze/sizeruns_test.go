package bronze

import (
	"fmt"
	"testing"
)

// TestSizeRuns: runs keep the order, respect both bounds, and an object
// over the byte bound is a run of its own.
func TestSizeRuns(t *testing.T) {
	for _, tc := range []struct {
		sizes      []int64
		maxObjects int
		maxBytes   int64
		want       string
	}{
		{nil, 3, 100, "[]"},
		{[]int64{10, 10, 10, 10}, 3, 100, "[[0 3] [3 4]]"},
		{[]int64{60, 50, 10}, 10, 100, "[[0 1] [1 3]]"},
		{[]int64{10, 500, 10}, 10, 100, "[[0 1] [1 2] [2 3]]"},
		{[]int64{100, 0}, 10, 100, "[[0 2]]"},
	} {
		ms := make([]manifest, len(tc.sizes))
		for i, s := range tc.sizes {
			ms[i].Size = s
		}
		if got := fmt.Sprint(sizeRuns(ms, tc.maxObjects, tc.maxBytes)); got != tc.want {
			t.Errorf("sizeRuns(%v, %d, %d) = %s, want %s", tc.sizes, tc.maxObjects, tc.maxBytes, got, tc.want)
		}
	}
}
