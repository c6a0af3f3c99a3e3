package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDeployPipelineParses keeps the pipeline shipped in deploy/ loadable:
// compose and Kubernetes mount it as is.
func TestDeployPipelineParses(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "medallion.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"S3_ACCESS_KEY": "k", "S3_SECRET_KEY": "s", "DATABASE_URL": "postgres://x@db/medallion"}
	p, err := Parse(path, data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("deploy/medallion.yaml: %v", err)
	}
	if p.Lake != "s3://lake/medallion" || len(p.Mirror) != 1 || p.Stream.Trigger == 0 {
		t.Errorf("unexpected pipeline: lake %q, %d mirrors, trigger %v", p.Lake, len(p.Mirror), p.Stream.Trigger)
	}
}
