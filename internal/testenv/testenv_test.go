package testenv

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("RepoRoot = %s, which has no go.mod: %v", root, err)
	}
}

func TestMinIOAndS3Store(t *testing.T) {
	srv := MinIO(t)
	if srv.Endpoint == "" || srv.AccessKey == "" || srv.SecretKey == "" {
		t.Fatalf("MinIO() = %+v, want endpoint and credentials", srv)
	}
	if again := MinIO(t); os.Getenv("S3_ENDPOINT") == "" && again != srv {
		t.Error("a second MinIO() call started another server")
	}
	st1, opts1, url1 := S3Store(t)
	_, opts2, url2 := S3Store(t)
	if opts1.Bucket == opts2.Bucket || url1 == url2 {
		t.Errorf("two S3Store calls share bucket %q", opts1.Bucket)
	}
	if url1 != "s3://"+opts1.Bucket {
		t.Errorf("url = %q, want s3://%s", url1, opts1.Bucket)
	}
	if _, err := st1.Put(t.Context(), "x/y", strings.NewReader("z"), 1); err != nil {
		t.Fatalf("Put: %v", err)
	}
	env := strings.Join(srv.Env(), " ")
	for _, want := range []string{"S3_ENDPOINT=" + srv.Endpoint, "S3_ACCESS_KEY=", "S3_SECRET_KEY="} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() = %q, missing %q", env, want)
		}
	}
}

func TestBucketName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	for _, name := range []string{"TestX", "TestS3/Sub_Test#01", strings.Repeat("VeryLong/", 20), "Test__", "/"} {
		b := bucketName(name)
		if !valid.MatchString(b) {
			t.Errorf("bucketName(%q) = %q, not a valid bucket name", name, b)
		}
		if b == bucketName(name) {
			t.Errorf("bucketName(%q) is not unique", name)
		}
	}
}

func TestStartMinIOMissingBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-minio")
	t.Setenv("MINIO_BIN", missing)
	_, err := startMinIO()
	want := "MinIO server not found at " + missing + ": run `make minio`"
	if err == nil || err.Error() != want {
		t.Errorf("startMinIO with a missing binary = %v, want %q", err, want)
	}
}

func TestPostgresURL(t *testing.T) {
	u := PostgresURL(t)
	if u == "" {
		t.Fatal("PostgresURL returned an empty URL")
	}
}

func TestPostgresAddr(t *testing.T) {
	cases := []struct{ dsn, network, addr string }{
		{"postgres://postgres@127.0.0.1:5432/test", "tcp", "127.0.0.1:5432"},
		{"postgresql://u:p@db.example:6543/x?sslmode=disable", "tcp", "db.example:6543"},
		{"postgres://u@h1,h2/x", "tcp", "h1:5432"}, // the first of several hosts
		{"postgres:///db?host=/run/pg&port=5433", "unix", "/run/pg/.s.PGSQL.5433"},
		{"host=10.0.0.1 port=5544 user=x dbname=y", "tcp", "10.0.0.1:5544"},
		{"host=/tmp user=x", "unix", "/tmp/.s.PGSQL.5432"},
	}
	for _, c := range cases {
		network, addr, err := postgresAddr(c.dsn)
		if err != nil || network != c.network || addr != c.addr {
			t.Errorf("postgresAddr(%q) = %s %s %v, want %s %s", c.dsn, network, addr, err, c.network, c.addr)
		}
	}
	if _, _, err := postgresAddr("host=x port=abc"); err == nil {
		t.Error("postgresAddr with a non-numeric port: no error")
	}
}

// childEnv marks a re-executed test binary that starts MinIO, prints its pid
// and exits without stopping it.
const childEnv = "TESTENV_MINIO_CHILD"

// TestMinIODiesWithTestBinary checks the server does not outlive the test
// binary that started it.
func TestMinIODiesWithTestBinary(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		os.Stdout.WriteString("PID " + strconv.Itoa(MinIO(t).pid) + "\n")
		return
	}
	if os.Getenv("S3_ENDPOINT") != "" {
		t.Log("S3_ENDPOINT is set: the harness starts no server to check")
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMinIODiesWithTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child test binary: %v\n%s", err, out)
	}
	var pid int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "PID "); ok {
			pid, _ = strconv.Atoi(p)
		}
	}
	if pid <= 0 {
		t.Fatalf("child printed no MinIO pid:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for processAlive(pid) && !isZombie(pid) {
		select {
		case <-ctx.Done():
			t.Fatalf("MinIO (pid %d) still runs after its test binary exited", pid)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// isZombie reports whether pid has exited but not been reaped yet.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(after, "Z")
}
