// Package deploy_test keeps the files in deploy/ runnable: it parses the
// compose file, the Grafana provisioning, the Kubernetes manifests and the
// systemd unit, checks them against each other and against the example
// pipeline, and runs the dashboard's SQL against a real mirror built from
// that pipeline. No container engine runs here; the docker, kubectl and
// systemd-analyze checks run when those commands are installed.
package deploy_test

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medallion-dev/medallion/internal/config"
)

// update rewrites deploy/k8s/configmap.yaml from deploy/medallion.yaml.
var update = flag.Bool("update", false, "rewrite k8s/configmap.yaml from medallion.yaml")

// pipelineFile is the example pipeline every deployment runs.
const pipelineFile = "medallion.yaml"

// readFile reads a file of deploy/ (the test's working directory).
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return data
}

// envRef matches a ${VAR} or ${VAR:-default} reference; group 2 is ":-"
// when there is a default.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-)?`)

// pipelineVars returns the variables the pipeline file's values refer to
// (comments excluded), sorted, and which of them have no default.
func pipelineVars(t *testing.T) (all, noDefault []string) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(readFile(t, pipelineFile), &doc); err != nil {
		t.Fatalf("%s: %v", pipelineFile, err)
	}
	seen := map[string]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range envRef.FindAllStringSubmatch(strings.ReplaceAll(n.Value, "$$", ""), -1) {
				if !seen[m[1]] {
					seen[m[1]] = true
					all = append(all, m[1])
					if m[2] == "" {
						noDefault = append(noDefault, m[1])
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	sort.Strings(all)
	sort.Strings(noDefault)
	if len(all) == 0 {
		t.Fatalf("%s refers to no ${VAR}: the deployments expect its secrets from the environment", pipelineFile)
	}
	return all, noDefault
}

// parsePipeline loads data as the pipeline file with env as the whole
// environment.
func parsePipeline(name string, data []byte, env map[string]string) (*config.Pipeline, error) {
	return config.Parse(name, data, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

// TestPipelineParses keeps the example pipeline loadable with the
// environment the deployments give it.
func TestPipelineParses(t *testing.T) {
	all, _ := pipelineVars(t)
	env := map[string]string{
		"S3_ACCESS_KEY": "k", "S3_SECRET_KEY": "s", "DATABASE_URL": "postgres://x@db/medallion",
		"MEDALLION_DUCKDB_MEMORY_LIMIT": "3GB", "MEDALLION_DUCKDB_THREADS": "2", "S3_SECURE": "true",
	}
	p, err := parsePipeline(pipelineFile, readFile(t, pipelineFile), env)
	if err != nil {
		t.Fatalf("%s: %v", pipelineFile, err)
	}
	if p.Lake != "s3://lake/medallion" || len(p.Mirror) != 1 || p.Stream.Trigger == 0 {
		t.Errorf("unexpected pipeline: lake %q, %d mirrors, trigger %v", p.Lake, len(p.Mirror), p.Stream.Trigger)
	}
	if p.DuckDB.MemoryLimit != "3GB" || p.DuckDB.Threads != 2 || !p.S3.Secure {
		t.Errorf("environment not applied: duckdb %+v, s3 secure %v", p.DuckDB, p.S3.Secure)
	}
	// With only the secrets set, the defaults must make a valid file too.
	if _, err := parsePipeline(pipelineFile, readFile(t, pipelineFile), map[string]string{"S3_ACCESS_KEY": "k", "S3_SECRET_KEY": "s"}); err != nil {
		t.Errorf("%s with its defaults: %v", pipelineFile, err)
	}
	t.Logf("variables: %s", strings.Join(all, ", "))
}

// TestReadmeTable checks that deploy/README.md lists every file of deploy/
// (tests aside) and names no file that is gone.
func TestReadmeTable(t *testing.T) {
	readme := string(readFile(t, "README.md"))
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)`").FindAllStringSubmatch(readme, -1) {
		listed[m[1]] = true
	}
	for name := range listed {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("README.md lists %s: %v", name, err)
		}
	}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") || path == "README.md" {
			return err
		}
		for dir := path; dir != "."; dir = filepath.Dir(dir) {
			if listed[dir] || listed[dir+"/"] {
				return nil
			}
		}
		t.Errorf("README.md's table does not list %s (or a folder holding it)", path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// imagePinned says what is wrong with an image reference that is not
// pinned to a tag or digest other than latest; "" when it is pinned.
func imagePinned(image string) string {
	if strings.Contains(image, "@sha256:") {
		return ""
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case image == "":
		return "no image"
	case !ok || tag == "":
		return "no tag (means latest)"
	case tag == "latest":
		return "tag latest"
	}
	return ""
}

func TestImagePinned(t *testing.T) {
	for _, tc := range []struct {
		image string
		ok    bool
	}{
		{"postgres:16.9-bookworm", true},
		{"quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z", true},
		{"localhost:5000/medallion", false},
		{"localhost:5000/medallion:1.0", true},
		{"grafana/grafana:latest", false},
		{"grafana/grafana", false},
		{"x/y@sha256:abc", true},
	} {
		if got := imagePinned(tc.image) == ""; got != tc.ok {
			t.Errorf("imagePinned(%q) pinned = %v, want %v", tc.image, got, tc.ok)
		}
	}
}

// run runs a command, returning its combined output; skip says the command
// is not installed (the caller skips that check).
func run(t *testing.T, dir, name string, args ...string) (out string, skip bool, err error) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		return "", true, nil
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return buf.String(), false, err
	}
	return buf.String(), false, err
}

// subset reports whether every key of sel has the same value in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
