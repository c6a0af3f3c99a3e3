package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "medallion test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

const tlsPipeline = `sources:
  meters:
    format: ndjson
    schema:
      meter_id:     {type: string, required: true}
      energy_usage: {type: double}
`

// TestServeTLS: with --tls-cert/--tls-key, ingest, dashboard and metrics are
// served over HTTPS; the ingest token works for ingest and only there, the
// dashboard's token only for the dashboard, and the dashboard's session
// cookie is Secure and holds neither token.
func TestServeTLS(t *testing.T) {
	const ingestToken, dashToken = "ingest-s3cret-token", "dashboard-s3cret-token"
	certFile, keyFile, pool := selfSigned(t)
	l := newTestLake(t, "local")
	l.writePipeline(t, tlsPipeline)
	l.env = append(l.env, "MEDALLION_INGEST_TOKEN="+ingestToken, "MEDALLION_DASHBOARD_TOKEN="+dashToken)
	srv := startServe(t, l, "--tls-cert", certFile, "--tls-key", keyFile)
	defer func() {
		if t.Failed() {
			t.Logf("serve output:\n%s", srv.out)
		}
	}()
	if !strings.HasPrefix(srv.base, "https://") {
		t.Fatalf("serve prints %s, want an https:// address", srv.base)
	}
	c := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	do := func(method, path, ct, body string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s over HTTPS: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	waitFor(t, "/readyz over HTTPS", func() bool {
		resp, err := c.Get(srv.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if r := do("GET", "/metrics", "", ""); r.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics over HTTPS: %s", r.Status)
	}
	row := `{"meter_id":"m1","energy_usage":1.5}` + "\n"
	for _, tc := range []struct {
		token string
		want  int
	}{{ingestToken, http.StatusAccepted}, {dashToken, http.StatusUnauthorized}} {
		if r := do("POST", "/v1/ingest/meters", "application/x-ndjson", row, "Authorization", "Bearer "+tc.token); r.StatusCode != tc.want {
			t.Errorf("ingest with the %s token: %s, want %d", tc.token, r.Status, tc.want)
		}
	}
	// The dashboard takes its own token, not the ingest token, in any form.
	if r := do("GET", "/api/pipeline", "", "", "Authorization", "Bearer "+ingestToken); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("dashboard with the ingest token: %s, want 401", r.Status)
	}
	for _, name := range []string{"medallion_session", "medallion_token"} {
		if r := do("GET", "/api/pipeline", "", "", "Cookie", name+"="+ingestToken); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("dashboard with the ingest token as cookie %s: %s, want 401", name, r.Status)
		}
	}
	if r := do("POST", "/login", "application/x-www-form-urlencoded", "token="+url.QueryEscape(ingestToken)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with the ingest token: %s, want 401", r.Status)
	}
	r := do("POST", "/login", "application/x-www-form-urlencoded", "token="+url.QueryEscape(dashToken))
	cookies := r.Cookies()
	if r.StatusCode != http.StatusSeeOther || len(cookies) != 1 {
		t.Fatalf("login: %s, cookies %v", r.Status, cookies)
	}
	ck := cookies[0]
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || ck.MaxAge > 24*3600 {
		t.Errorf("session cookie over HTTPS: %s; want Secure, HttpOnly, SameSite=Strict, Max-Age of a day at most", r.Header.Get("Set-Cookie"))
	}
	if sc := r.Header.Get("Set-Cookie"); strings.Contains(sc, dashToken) || strings.Contains(sc, ingestToken) {
		t.Errorf("the session cookie holds a token: %s", sc)
	}
	if r := do("GET", "/api/pipeline", "", "", "Cookie", ck.Name+"="+ck.Value); r.StatusCode != http.StatusOK {
		t.Errorf("dashboard with the session cookie: %s, want 200", r.Status)
	}
	// Plain HTTP on the HTTPS port is not served.
	if resp, err := http.Get("http://" + strings.TrimPrefix(srv.base, "https://") + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP on the HTTPS port answered 200")
		}
	}
}

// TestServeTLSFlags: --tls-cert without --tls-key is a usage error, and a
// certificate that does not load fails the start naming the file.
func TestServeTLSFlags(t *testing.T) {
	l := newTestLake(t, "local")
	l.writePipeline(t, tlsPipeline)
	certFile, _, _ := selfSigned(t)
	_, stderr, err := l.exec(t, nil, "serve", "--addr", "127.0.0.1:0", "--tls-cert", certFile)
	if code := exitCode(err); code != 2 || !strings.Contains(stderr, "--tls-cert and --tls-key go together") {
		t.Errorf("--tls-cert alone: exit %d, %s", code, stderr)
	}
	_, stderr, err = l.exec(t, nil, "serve", "--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", certFile)
	if code := exitCode(err); code != 1 || !strings.Contains(stderr, "load TLS certificate "+certFile) {
		t.Errorf("a key file that is no key: exit %d, %s", code, stderr)
	}
}

// TestServeBodyLimits: the serve.http limits of medallion.yaml reach the
// receiver: a body over max_body_bytes gets 413, and a body that stops
// arriving gets 408 after body_timeout.
func TestServeBodyLimits(t *testing.T) {
	l := newTestLake(t, "local")
	l.writePipeline(t, tlsPipeline+"serve:\n  http:\n    max_body_bytes: 1KiB\n    body_timeout: 500ms\n")
	srv := startServe(t, l)
	waitReady(t, srv.base)
	big := strings.Repeat(`{"meter_id":"m1","energy_usage":1.5}`+"\n", 100)
	resp, err := http.Post(srv.base+"/v1/ingest/meters", "application/x-ndjson", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte body over max_body_bytes 1KiB: %s, want 413", len(big), resp.Status)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/ingest/meters HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 500\r\n\r\n{\"meter_id\"")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a stalled body got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("a stalled body: %s, want 408", resp.Status)
	}
}

// exitCode is the exit status of a finished command (0 for no error, -1 when
// it did not run).
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		return -1
	}
}
