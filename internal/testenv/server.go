package testenv

import (
	"errors"
	"fmt"
	"github.com/medallion-dev/medallion/internal/randid"
	"os"
	"path/filepath"
	"strconv"
)

// StartMinIO starts a MinIO server of its own for a program that is not a
// test (the benchmarks): from bin, or $MINIO_BIN, or <repo root>/.bin/minio
// when bin is empty, on a free 127.0.0.1 port with a fresh temp data
// directory. Unlike MinIO(t) it is not shared and ignores S3_ENDPOINT. The
// returned stop kills the server, waits for it and removes its data; the
// server is also killed if the calling program dies first.
func StartMinIO(bin string) (srv *MinIOServer, stop func(), err error) {
	if bin == "" {
		bin = os.Getenv("MINIO_BIN")
	}
	if bin == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return nil, nil, err
		}
		bin = filepath.Join(root, ".bin", "minio")
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return nil, nil, fmt.Errorf("MinIO server not found at %s: run `make minio`", bin)
	}
	sweepStaleDataDirs()
	dataDir, err := os.MkdirTemp("", dataDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, nil, fmt.Errorf("start MinIO: %w", err)
	}
	srv = &MinIOServer{AccessKey: "medallion", SecretKey: "secret-" + randid.Hex(12)}
	for attempt := 1; ; attempt++ {
		addr, err1 := freeAddr()
		consoleAddr, err2 := freeAddr()
		if err := errors.Join(err1, err2); err != nil {
			os.RemoveAll(dataDir)
			return nil, nil, fmt.Errorf("start MinIO: pick a free port: %w", err)
		}
		p, err := launch(bin, []string{"server", "--address", addr, "--console-address", consoleAddr, dataDir}, []string{
			"MINIO_ROOT_USER=" + srv.AccessKey,
			"MINIO_ROOT_PASSWORD=" + srv.SecretKey,
			"MINIO_UPDATE=off",
			"MINIO_BROWSER=off",
		})
		if err != nil {
			os.RemoveAll(dataDir)
			return nil, nil, fmt.Errorf("start MinIO %s: %w", bin, err)
		}
		err = waitHealthy(p, "http://"+addr+"/minio/health/cluster", minioStartTimeout)
		if err == nil {
			srv.Endpoint, srv.pid = addr, p.cmd.Process.Pid
			stop = func() {
				p.kill()
				os.RemoveAll(dataDir)
			}
			return srv, stop, nil
		}
		if !p.hasExited() || attempt == minioLaunchAttempts {
			p.kill()
			os.RemoveAll(dataDir)
			return nil, nil, fmt.Errorf("start MinIO %s on %s: %w\n--- MinIO log (tail) ---\n%s", bin, addr, err, p.log.String())
		}
	}
}
