//go:build linux

package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Linux prctl(2) options for the memory-deny-write-execute mode, the
// kernel's own form of MemoryDenyWriteExecute=yes (Linux 6.3 and later).
const (
	prSetMDWE            = 65
	prGetMDWE            = 66
	prMDWERefuseExecGain = 1
)

// mdweEnv asks TestMain to turn MDWE on before the tests run.
const mdweEnv = "MEDALLION_DEPLOY_TEST_MDWE"

// TestMain turns on MDWE for the whole process when mdweEnv is set (see
// TestMemoryDenyWriteExecute), before Go or DuckDB map anything more.
func TestMain(m *testing.M) {
	if os.Getenv(mdweEnv) == "1" {
		if _, _, errno := syscall.Syscall6(syscall.SYS_PRCTL, prSetMDWE, prMDWERefuseExecGain, 0, 0, 0, 0); errno != 0 {
			fmt.Fprintf(os.Stderr, "prctl(PR_SET_MDWE): %v\n", errno)
			os.Exit(3)
		}
	}
	os.Exit(m.Run())
}

// TestMemoryDenyWriteExecute runs the pipeline build (DuckDB over bronze,
// silver, gold, and the mirror) in a child process under the kernel's
// memory-deny-write-execute mode, which refuses what the unit's
// MemoryDenyWriteExecute=yes refuses: a writable and executable mapping.
// If a DuckDB or Go upgrade starts generating code, this fails here
// instead of in a user's service.
func TestMemoryDenyWriteExecute(t *testing.T) {
	if os.Getenv(mdweEnv) == "1" {
		t.Skip("already the child")
	}
	if testing.Short() {
		t.Skip("builds the pipeline in a child process")
	}
	if r, _, errno := syscall.Syscall6(syscall.SYS_PRCTL, prGetMDWE, 0, 0, 0, 0, 0); errno != 0 {
		t.Skipf("this kernel has no PR_SET_MDWE (%v)", errno)
	} else if r != 0 {
		t.Skip("MDWE is already on for this process")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run", "^(TestMDWEOn|TestGrafanaQueriesAgainstMirror)$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), mdweEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestMDWEOn") || !strings.Contains(string(out), "--- PASS: TestGrafanaQueriesAgainstMirror") {
		t.Fatalf("the pipeline under MDWE: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "--- ") || strings.Contains(line, " rows ") {
			t.Log("child:", strings.TrimSpace(line))
		}
	}
}

// TestMDWEOn, in the child of TestMemoryDenyWriteExecute, checks that the
// mode is really enforced: a writable and executable mapping is refused.
func TestMDWEOn(t *testing.T) {
	if os.Getenv(mdweEnv) != "1" {
		t.Skip("runs in TestMemoryDenyWriteExecute's child")
	}
	r, _, errno := syscall.Syscall6(syscall.SYS_PRCTL, prGetMDWE, 0, 0, 0, 0, 0)
	if errno != 0 || r&prMDWERefuseExecGain == 0 {
		t.Fatalf("PR_GET_MDWE = %d, %v: the mode is off", r, errno)
	}
	mem, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err == nil {
		syscall.Munmap(mem)
		t.Fatal("a writable and executable mapping was allowed under MDWE")
	}
}
