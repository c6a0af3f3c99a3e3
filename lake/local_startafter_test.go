package lake

import (
	"context"
	"strings"
	"testing"
)

// TestLocalListSkipsDirectoriesBeforeStartAfter: a listing that starts
// after a key returns the same keys whether or not it walks the
// directories wholly before it (it skips them).
func TestLocalListSkipsDirectoriesBeforeStartAfter(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a/1/x", "a/1/y", "a/10/x", "a/2/x", "a/2/y", "a/3/z", "a/3_/q", "b/1"} {
		if _, err := l.Put(ctx, k, strings.NewReader(k), int64(len(k))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ prefix, after, want string }{
		{"a/", "", "a/1/x a/1/y a/10/x a/2/x a/2/y a/3/z a/3_/q"},
		{"a/", "a/2/x", "a/2/y a/3/z a/3_/q"},
		{"a/", "a/2", "a/2/x a/2/y a/3/z a/3_/q"},
		{"a/", "a/1/y", "a/10/x a/2/x a/2/y a/3/z a/3_/q"},
		{"a/", "a/3", "a/3/z a/3_/q"},
		{"a/", "a/3/zz", "a/3_/q"},
		{"a/", "a/9", ""},
	} {
		objs, err := l.List(ctx, tc.prefix, tc.after)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range objs {
			got = append(got, o.Key)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("List(%q, %q) = %v, want %s", tc.prefix, tc.after, got, tc.want)
		}
	}
}
