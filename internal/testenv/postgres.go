package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DefaultPostgresURL is the PostgreSQL the project's machines run for tests.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test"

// PostgresURL returns $DATABASE_URL, or DefaultPostgresURL when it is unset,
// after checking that the server accepts connections (a TCP or Unix-socket
// dial, no login). An unreachable server fails the test with one line saying
// how to provide one; it is never skipped. Give each test its own schema.
func PostgresURL(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		dsn = DefaultPostgresURL
	}
	network, addr, err := postgresAddr(dsn)
	if err != nil {
		t.Fatalf("testenv: DATABASE_URL: %v", err)
	}
	conn, err := net.DialTimeout(network, addr, 3*time.Second)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL is not reachable at %s (%v): run `make test`, which starts it, or set DATABASE_URL", addr, err)
	}
	conn.Close()
	return dsn
}

// postgresAddr finds the first host and port of a postgres:// URL or a
// "host=... port=..." connection string, as libpq would (a host starting
// with '/' is a Unix-socket directory).
func postgresAddr(dsn string) (network, addr string, err error) {
	var host, port string
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", err
		}
		host, port = u.Hostname(), u.Port()
		if h := u.Query().Get("host"); h != "" {
			host = h
		}
		if p := u.Query().Get("port"); p != "" {
			port = p
		}
	} else {
		for _, field := range strings.Fields(dsn) {
			k, v, _ := strings.Cut(field, "=")
			v = strings.Trim(v, "'")
			switch k {
			case "host":
				host = v
			case "port":
				port = v
			}
		}
	}
	host, _, _ = strings.Cut(host, ",")
	port, _, _ = strings.Cut(port, ",")
	if port == "" {
		port = "5432"
	}
	if host == "" {
		host = "localhost"
		for _, dir := range []string{"/var/run/postgresql", "/private/tmp", "/tmp"} {
			if _, err := os.Stat(filepath.Join(dir, ".s.PGSQL."+port)); err == nil {
				host = dir
				break
			}
		}
	}
	if strings.HasPrefix(host, "/") {
		return "unix", filepath.Join(host, ".s.PGSQL."+port), nil
	}
	if _, err := fmt.Sscan(port, new(uint16)); err != nil {
		return "", "", fmt.Errorf("port %q is not a number", port)
	}
	return "tcp", net.JoinHostPort(host, port), nil
}
