package testenv

import (
	"context"
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/randid"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/lake"
)

// minioStartTimeout bounds how long a started server may take to answer.
const minioStartTimeout = 60 * time.Second

// minioLaunchAttempts is how often a start is retried on fresh ports when the
// server exits early (another process grabbed a port we picked).
const minioLaunchAttempts = 3

// MinIOServer is an S3 endpoint for tests and the credentials to use it.
type MinIOServer struct {
	Endpoint  string // host:port, or a URL with http:// or https:// when it came from S3_ENDPOINT
	AccessKey string
	SecretKey string
	Secure    bool // HTTPS

	pid int // of the server this harness started; 0 for S3_ENDPOINT
}

// Options returns the lake options for bucket on this server.
func (s *MinIOServer) Options(bucket string) lake.S3Options {
	return lake.S3Options{
		Endpoint:  s.Endpoint,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
		Secure:    s.Secure,
		Bucket:    bucket,
	}
}

// Env returns the environment (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY,
// S3_SECURE) that points a subprocess, such as the medallion CLI under test,
// at this server. Append it to os.Environ().
func (s *MinIOServer) Env() []string {
	return []string{
		"S3_ENDPOINT=" + s.Endpoint,
		"S3_ACCESS_KEY=" + s.AccessKey,
		"S3_SECRET_KEY=" + s.SecretKey,
		"S3_SECURE=" + strconv.FormatBool(s.Secure),
	}
}

// sharedMinIO starts at most one server per test binary; it lives until the
// binary exits (the kernel kills it then, see launch), so every test in the
// package shares it, each in its own bucket.
var sharedMinIO = sync.OnceValues(startMinIO)

// MinIO returns a running S3 endpoint. If S3_ENDPOINT is set, that server is
// used with S3_ACCESS_KEY and S3_SECRET_KEY (an https:// endpoint turns on
// TLS). Otherwise one MinIO server per test binary is started from
// $MINIO_BIN or <repo root>/.bin/minio on a free 127.0.0.1 port with a temp
// data directory. A missing binary or a server that does not come up fails
// the test; it is never skipped.
func MinIO(t testing.TB) *MinIOServer {
	t.Helper()
	if ep := os.Getenv("S3_ENDPOINT"); ep != "" {
		secure := strings.HasPrefix(ep, "https://")
		if v, err := strconv.ParseBool(os.Getenv("S3_SECURE")); err == nil && !strings.Contains(ep, "://") {
			secure = v
		}
		return &MinIOServer{
			Endpoint:  ep,
			AccessKey: os.Getenv("S3_ACCESS_KEY"),
			SecretKey: os.Getenv("S3_SECRET_KEY"),
			Secure:    secure,
		}
	}
	srv, err := sharedMinIO()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return srv
}

// S3Store creates a fresh, uniquely named bucket on the MinIO server (so
// tests can run in parallel) and returns a store on it, the options it was
// opened with, and its URL (s3://bucket) for subprocesses; pair the URL with
// MinIO(t).Env(). The bucket's objects are deleted when the test ends.
func S3Store(t testing.TB) (lake.Store, lake.S3Options, string) {
	t.Helper()
	srv := MinIO(t)
	opts := srv.Options(bucketName(t.Name()))
	opts.CreateBucket = true
	st, err := lake.NewS3(t.Context(), opts)
	if err != nil {
		t.Fatalf("testenv: S3 store: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		objs, err := st.List(ctx, "", "")
		if err != nil {
			t.Logf("testenv: clean bucket %s: %v", opts.Bucket, err)
			return
		}
		for _, o := range objs {
			if err := st.Delete(ctx, o.Key); err != nil {
				t.Logf("testenv: clean bucket %s: %v", opts.Bucket, err)
				return
			}
		}
	})
	return st, opts, st.URL()
}

// bucketName makes a valid, unique S3 bucket name from a test name:
// lower-case letters, digits and '-', at most 63 characters.
func bucketName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	name := b.String()
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-")
	return "t-" + name + "-" + randid.Hex(4)
}

// startMinIO finds the binary and starts a server, retrying on new ports if
// it dies while starting.
func startMinIO() (*MinIOServer, error) {
	bin := os.Getenv("MINIO_BIN")
	if bin == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return nil, err
		}
		bin = filepath.Join(root, ".bin", "minio")
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("MinIO server not found at %s: run `make minio`", bin)
	}
	sweepStaleDataDirs()
	dataDir, err := os.MkdirTemp("", dataDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("start MinIO: %w", err)
	}
	srv := &MinIOServer{AccessKey: "medallion", SecretKey: "secret-" + randid.Hex(12)}
	for attempt := 1; ; attempt++ {
		addr, err1 := freeAddr()
		consoleAddr, err2 := freeAddr()
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("start MinIO: pick a free port: %w", err)
		}
		p, err := launch(bin, []string{"server", "--address", addr, "--console-address", consoleAddr, dataDir}, []string{
			"MINIO_ROOT_USER=" + srv.AccessKey,
			"MINIO_ROOT_PASSWORD=" + srv.SecretKey,
			"MINIO_UPDATE=off",
			"MINIO_BROWSER=off",
		})
		if err != nil {
			return nil, fmt.Errorf("start MinIO %s: %w", bin, err)
		}
		// /minio/health/live answers 200 before the object layer and IAM
		// are up; the cluster check waits for both.
		err = waitHealthy(p, "http://"+addr+"/minio/health/cluster", minioStartTimeout)
		if err == nil {
			srv.Endpoint, srv.pid = addr, p.cmd.Process.Pid
			return srv, nil
		}
		if !p.hasExited() || attempt == minioLaunchAttempts {
			p.kill()
			return nil, fmt.Errorf("start MinIO %s on %s: %w\n--- MinIO log (tail) ---\n%s", bin, addr, err, p.log.String())
		}
	}
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHealthy polls url until it answers 200, the process exits, or timeout.
func waitHealthy(p *process, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health check answered %s", resp.Status)
		}
		lastErr = err
		select {
		case <-p.exited:
			return fmt.Errorf("server exited while starting: %v", p.waitErr)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server did not answer %s within %s: %v", url, timeout, lastErr)
		}
	}
}

// process is a started server and its captured output.
type process struct {
	cmd     *exec.Cmd
	log     *tailBuffer
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid after exited is closed
}

// launch starts bin. The child gets SIGKILL when the thread that started it
// exits (Linux Pdeathsig); so the start and the Wait happen on one goroutine
// locked to its thread, which lives as long as the child, and the child dies
// with the test binary however that ends.
func launch(bin string, args, env []string) (*process, error) {
	p := &process{log: &tailBuffer{max: 32 << 10}, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout = p.log
		cmd.Stderr = p.log
		cmd.SysProcAttr = dieWithParent()
		if err := cmd.Start(); err != nil {
			started <- err
			close(p.exited)
			return
		}
		p.cmd = cmd
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// kill stops the process and waits for it to exit.
func (p *process) kill() {
	if !p.hasExited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// dataDirPrefix names MinIO data directories; the pid of the test binary
// that owns one follows it, so later runs can remove the ones left behind.
const dataDirPrefix = "medallion-minio-"

// sweepStaleDataDirs removes data directories of test binaries that are no
// longer running (a killed test binary cannot clean up after itself).
func sweepStaleDataDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dataDirPrefix+"*"))
	for _, dir := range matches {
		rest := strings.TrimPrefix(filepath.Base(dir), dataDirPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}
