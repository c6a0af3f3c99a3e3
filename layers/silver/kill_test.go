//go:build unix

package silver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/warehouse"
)

// TestSIGKILL kills a silver run with SIGKILL (a child process running the
// same test binary) at each crash point of the batch with late rows, reruns
// it in this process, and compares with an uninterrupted run.
func TestSIGKILL(t *testing.T) {
	if os.Getenv("SILVER_KILL_LAKE") != "" {
		killHelper(t)
		return
	}
	t.Parallel()
	tc := referenceCases[0]
	refStore := localStore(t)
	ref := newLakeEnv(t, refStore, tc.cfg)
	for _, s := range tc.steps {
		if s.rows != nil {
			ref.appendBronze(s.rows...)
		}
		ref.run(tc.cfg.Name)
	}
	for _, point := range []string{pointLateCommitted, pointFilesWritten} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			store, err := lake.NewLocal(dir)
			if err != nil {
				t.Fatal(err)
			}
			le := newLakeEnv(t, store, tc.cfg)
			for i, s := range tc.steps {
				if s.rows != nil {
					le.appendBronze(s.rows...)
				}
				if i == 2 { // the batch with a late row
					cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILL$", "-test.count=1")
					cmd.Env = append(os.Environ(), "SILVER_KILL_LAKE="+dir, "SILVER_KILL_POINT="+point, "SILVER_KILL_CASE=0")
					out, err := cmd.CombinedOutput()
					var ee *exec.ExitError
					if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
						t.Fatalf("child: want death by SIGKILL at %s, got %v\n%s", point, err, out)
					}
				}
				le.run(tc.cfg.Name)
			}
			diffLines(t, "silver", silverRows(t, store, tc.cfg.Name), silverRows(t, refStore, tc.cfg.Name))
			diffLines(t, "silver._late", lateRows(t, store), lateRows(t, refStore))
			diffLines(t, "state", stateRows(t, store, tc.cfg.Name), stateRows(t, refStore, tc.cfg.Name))
			if a, b := watermark(t, store, tc.cfg.Name), watermark(t, refStore, tc.cfg.Name); a != b {
				t.Errorf("watermark %s, want %s", a, b)
			}
		})
	}
}

// killHelper is the child: it runs one silver batch and SIGKILLs itself at
// the crash point.
func killHelper(t *testing.T) {
	store, err := lake.NewLocal(os.Getenv("SILVER_KILL_LAKE"))
	if err != nil {
		t.Fatal(err)
	}
	ci, _ := strconv.Atoi(os.Getenv("SILVER_KILL_CASE"))
	tc := referenceCases[ci]
	le := newLakeEnv(t, store, tc.cfg)
	eng, err := warehouse.Open(context.Background(), warehouse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	point := os.Getenv("SILVER_KILL_POINT")
	_, err = Run(context.Background(), Deps{Env: layers.Env{Store: store, DB: eng.DB(), Crash: func(p string) error {
		if p == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return nil
	}}}, le.p.Silver[tc.cfg.Name])
	fmt.Println("not killed:", err)
	os.Exit(3)
}
