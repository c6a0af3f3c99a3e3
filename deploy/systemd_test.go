package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitFile = "systemd/medallion.service"

// unit is a parsed systemd unit: section -> key -> values in order (a key
// may repeat).
type unit map[string]map[string][]string

// parseUnit reads the INI-like unit syntax: [Section], Key=Value, comments
// starting with # or ;, lines continued with a trailing backslash.
func parseUnit(data []byte) (unit, error) {
	u := unit{}
	var section string
	sc := bufio.NewScanner(bytes.NewReader(data))
	n, cont := 0, ""
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") || line == "" {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: want Key=Value inside a [Section], got %q", n, line)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	return u, sc.Err()
}

// last is the effective value of a key that is set once ("" if unset).
func (u unit) last(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// parseSystemdTime reads a systemd time span: "90", "90s", "1min 30s", "2min".
func parseSystemdTime(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	units := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "sec": time.Second, "m": time.Minute, "min": time.Minute, "h": time.Hour}
	var total time.Duration
	for _, f := range strings.Fields(s) {
		i := strings.IndexFunc(f, func(r rune) bool { return r < '0' || r > '9' })
		if i <= 0 {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		n, _ := strconv.Atoi(f[:i])
		unit, ok := units[f[i:]]
		if !ok {
			return 0, fmt.Errorf("bad unit in time span %q", s)
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

func TestParseSystemdTime(t *testing.T) {
	for in, want := range map[string]time.Duration{"90": 90 * time.Second, "75s": 75 * time.Second, "1min 30s": 90 * time.Second, "2min": 2 * time.Minute} {
		if got, err := parseSystemdTime(in); err != nil || got != want {
			t.Errorf("parseSystemdTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseSystemdTime("soon"); err == nil {
		t.Error("parseSystemdTime(soon): no error")
	}
}

func TestSystemdUnit(t *testing.T) {
	u, err := parseUnit(readFile(t, unitFile))
	if err != nil {
		t.Fatalf("%s: %v", unitFile, err)
	}
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Fatalf("%s: no [%s] section", unitFile, s)
		}
	}
	want := map[string]string{ // "" means any non-empty value
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
		"ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "RestrictAddressFamilies": "",
		"MemoryDenyWriteExecute": "yes", "LockPersonality": "yes", "RestrictNamespaces": "yes",
		"RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native", "ReadWritePaths": "",
		"EnvironmentFile": "", "Restart": "on-failure", "KillSignal": "SIGTERM", "DynamicUser": "yes",
	}
	for k, v := range want {
		got := u.last("Service", k)
		if got == "" || (v != "" && got != v) {
			t.Errorf("%s: [Service] %s=%q, want %s", unitFile, k, got, map[bool]string{true: "a value", false: v}[v == ""])
		}
	}
	if f := u["Service"]["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("%s: SystemCallFilter %v, want @system-service first", unitFile, f)
	}
	if af := u.last("Service", "RestrictAddressFamilies"); !strings.Contains(af, "AF_INET") || !strings.Contains(af, "AF_UNIX") {
		t.Errorf("%s: RestrictAddressFamilies=%s: serve needs AF_INET(6) and AF_UNIX (PostgreSQL sockets)", unitFile, af)
	}
	exec := strings.Fields(u.last("Service", "ExecStart"))
	if len(exec) < 2 || filepath.Base(exec[0]) != "medallion" || exec[1] != "serve" {
		t.Errorf("%s: ExecStart %v does not run medallion serve", unitFile, exec)
	}
	if f := flagValue(exec, "-f"); f == "" {
		t.Errorf("%s: ExecStart names no pipeline file (-f)", unitFile)
	}
	stop, err := parseSystemdTime(u.last("Service", "TimeoutStopSec"))
	if err != nil || stop <= 45*time.Second {
		t.Errorf("%s: TimeoutStopSec=%s (%v): must exceed serve's 45 s SIGTERM drain", unitFile, u.last("Service", "TimeoutStopSec"), err)
	}
	// Writable places the service needs: DuckDB's spill directory (TMPDIR)
	// and the object cache, under directories systemd creates for it.
	env := map[string]string{}
	for _, e := range u["Service"]["Environment"] {
		for _, kv := range strings.Fields(e) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	cacheDirs := strings.Fields(strings.Join(u["Service"]["CacheDirectory"], " "))
	for _, k := range []string{"TMPDIR", "MEDALLION_CACHE"} {
		dir := env[k]
		rel, ok := strings.CutPrefix(dir, "/var/cache/")
		if !ok || !slices.Contains(cacheDirs, rel) {
			t.Errorf("%s: %s=%q is not one of the CacheDirectory= directories %v", unitFile, k, dir, cacheDirs)
		}
	}
}

// TestSystemdVerify runs systemd-analyze verify on the unit (make test
// installs it). The binary need not be installed here: the copy verified runs
// an executable that exists.
func TestSystemdVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is not installed: run `make systemd` (make test does) or install Debian's systemd package")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(readFile(t, unitFile)), "ExecStart=/usr/local/bin/medallion ", "ExecStart="+self+" ", 1)
	dir := t.TempDir()
	path := filepath.Join(dir, "medallion.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, dir, "systemd-analyze", "verify", path)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
	// The exposure score is informative; 1.2 "OK" when this was written.
	if out, _, err := run(t, dir, "systemd-analyze", "security", "--offline=yes", path); err == nil {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		t.Log(lines[len(lines)-1])
	}
}
