package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

// TestCLIGlobalFlagsFirst: the common flags work before the command, as
// users type them.
func TestCLIGlobalFlagsFirst(t *testing.T) {
	pipeline := initLake(t)
	code, stdout, stderr := cli(t, "", "-f", pipeline, "tables")
	if code != 0 || !strings.Contains(stdout, "bronze.meters") {
		t.Errorf("-f FILE tables: exit %d\n%s%s", code, stdout, stderr)
	}
	rows := `{"timestamp":"2024-01-01 00:00:00","meter_id":"m1","energy_usage":1.5}` + "\n"
	if code, _, stderr := cli(t, rows, "-f", pipeline, "ingest", "meters", "-"); code != 0 {
		t.Fatal(stderr)
	}
	code, _, stderr = cli(t, "", "--log-format", "json", "--log-level=info", "-f="+pipeline, "run", "bronze")
	if code != 0 || stderr == "" {
		t.Fatalf("--log-format json ... run: exit %d, stderr %q", code, stderr)
	}
	for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("--log-format json before the command: not JSON: %q", line)
		}
	}
	// A global flag missing its value is a usage error of the command.
	code, _, stderr = cli(t, "", "tables", "--log-format")
	if code != 2 || !strings.HasPrefix(stderr, "medallion tables: flag needs an argument") {
		t.Errorf("tables --log-format: exit %d, %q", code, stderr)
	}
}

func TestCLIHelpCommand(t *testing.T) {
	code, stdout, stderr := cli(t, "", "help", "run")
	if code != 0 || !strings.HasPrefix(stdout, "usage: medallion run") || !strings.Contains(stdout, "  -create-lake\n") {
		t.Errorf("help run: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = cli(t, "", "help", "rn")
	if code != 1 || !strings.Contains(stderr, `unknown command "rn" (did you mean "run"?)`) {
		t.Errorf("help rn: exit %d, %q", code, stderr)
	}
	code, stdout, stderr = cli(t, "", "tabels")
	if first, _, _ := strings.Cut(stderr, "\n"); code != 2 || stdout != "" || first != `medallion: unknown command "tabels" (did you mean "tables"?)` {
		t.Errorf("tabels: exit %d, stderr %q", code, stderr)
	}
}

// TestCLICompletion: the bash script completes commands and a command's
// flags in a real bash; zsh and fish scripts name every command.
func TestCLICompletion(t *testing.T) {
	code, script, stderr := cli(t, "", "completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct{ words, want string }{
		{"medallion ru", "run runs"},
		{"medallion run --cr", "--create-lake"},
		{"medallion -f x.yaml ser", "serve"},
		{"medallion completion f", "fish"},
		{"medallion query --log-format j", "json"},
	} {
		bash := script + "\nCOMP_WORDS=(" + tc.words + ")\nCOMP_CWORD=$((${#COMP_WORDS[@]}-1))\n_medallion\necho \"${COMPREPLY[*]}\"\n"
		cmd := exec.Command("bash", "--norc", "--noprofile")
		cmd.Stdin = strings.NewReader(bash)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("bash: %v\n%s", err, out.String())
		}
		if got := strings.TrimSpace(out.String()); got != tc.want {
			t.Errorf("completing %q: %q, want %q", tc.words, got, tc.want)
		}
	}
	for _, sh := range []string{"zsh", "fish"} {
		code, out, _ := cli(t, "", "completion", sh)
		if code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "create-lake") {
			t.Errorf("completion %s: exit %d\n%s", sh, code, out)
		}
	}
	if code, _, stderr := cli(t, "", "completion", "tcsh"); code != 2 || !strings.Contains(stderr, `unknown shell "tcsh"`) {
		t.Errorf("completion tcsh: exit %d, %q", code, stderr)
	}
}

func TestVersionFrom(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-06T20:00:00Z"}}
	for _, tc := range []struct {
		stamped, module string
		settings        []debug.BuildSetting
		want, when      string
	}{
		{"v1.0.0", "(devel)", vcs, "v1.0.0", ", committed 2026-12-06T20:00:00Z"},
		{"dev", "v0.3.1", nil, "v0.3.1", ""},
		{"dev", "(devel)", vcs, "dev-0123456789ab", ", committed 2026-12-06T20:00:00Z"},
		{"dev", "(devel)", append(vcs, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), "dev-0123456789ab-dirty", ", committed 2026-12-06T20:00:00Z"},
		{"dev", "(devel)", nil, "dev", ""},
	} {
		bi := &debug.BuildInfo{Main: debug.Module{Version: tc.module}, Settings: tc.settings}
		if v, when := versionFrom(tc.stamped, bi); v != tc.want || when != tc.when {
			t.Errorf("versionFrom(%q, %q) = %q, %q; want %q, %q", tc.stamped, tc.module, v, when, tc.want, tc.when)
		}
	}
}
