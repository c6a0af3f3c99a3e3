package lake_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
)

func TestOpenLocal(t *testing.T) {
	dir := t.TempDir()
	real, _ := filepath.EvalSymlinks(dir)
	t.Chdir(dir)
	for _, u := range []string{
		"file://" + filepath.ToSlash(real) + "/abs",
		"file://./rel",
		"./bare",
		real + "/bare-abs",
		"file://localhost" + filepath.ToSlash(real) + "/host",
	} {
		st, err := lake.Open(t.Context(), u, lake.S3Options{})
		if err != nil {
			t.Errorf("Open(%q): %v", u, err)
			continue
		}
		loc, ok := st.(*lake.Local)
		if !ok {
			t.Errorf("Open(%q) = %T, want *lake.Local", u, st)
			continue
		}
		if !strings.HasPrefix(loc.Dir(), real+string(filepath.Separator)) {
			t.Errorf("Open(%q) is rooted at %s, want under %s", u, loc.Dir(), real)
		}
		if fi, err := os.Stat(loc.Dir()); err != nil || !fi.IsDir() {
			t.Errorf("Open(%q) did not create %s: %v", u, loc.Dir(), err)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, u := range []string{"", "gs://bucket/x", "http://host/x", "s3://", "s3:///prefix", "file://", "s3://b/p?x=1"} {
		_, err := lake.Open(t.Context(), u, lake.S3Options{Endpoint: "127.0.0.1:1"})
		if err == nil {
			t.Errorf("Open(%q): no error", u)
			continue
		}
		if u != "" && !strings.Contains(err.Error(), u) {
			t.Errorf("Open(%q) = %q, want the error to name the URL", u, err)
		}
	}
}

// TestOpenHidesPasswords: a lake URL or endpoint with user info is
// refused without showing the password.
func TestOpenHidesPasswords(t *testing.T) {
	for _, c := range []struct{ url, endpoint string }{
		{"s3://user:Sekr1tPW@bucket/p", "127.0.0.1:1"},
		{"gs://user:Sekr1tPW@bucket/p", "127.0.0.1:1"},
		{"s3://bucket/p", "user:Sekr1tPW@127.0.0.1:1"},
	} {
		_, err := lake.Open(t.Context(), c.url, lake.S3Options{Endpoint: c.endpoint})
		if err == nil || strings.Contains(err.Error(), "Sekr1t") {
			t.Errorf("Open(%q, endpoint %q) = %v, want an error without the password", c.url, c.endpoint, err)
		}
	}
}

func TestOpenS3CreatesBucket(t *testing.T) {
	srv := testenv.MinIO(t)
	bucket := "open-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	st, err := lake.Open(t.Context(), "s3://"+bucket+"/lake/root/", srv.Options("ignored"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if want := "s3://" + bucket + "/lake/root"; st.URL() != want {
		t.Errorf("URL() = %q, want %q", st.URL(), want)
	}
	if _, err := st.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Delete(t.Context(), "k") })
	// Opening again finds the existing bucket and object.
	again, err := lake.Open(t.Context(), "s3://"+bucket+"/lake/root", srv.Options(""))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := again.Stat(t.Context(), "k"); err != nil || info.Size != 1 {
		t.Errorf("Stat through a second Open = %+v, %v", info, err)
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"a", "a/b", "bronze/meters/_delta_log/00000000000000000000.json", ".hidden", "a/..b", "a b/ü"} {
		if err := lake.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/", "a//b", ".", "..", "a/../b", "./a", "a\\b", "a\x00b"} {
		if err := lake.ValidateKey(k); err == nil {
			t.Errorf("ValidateKey(%q) = nil, want an error", k)
		}
	}
}
