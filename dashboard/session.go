package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CookieName is the cookie that carries a session after a login. It holds
// a signed expiry, never the token: see sessionValue.
const CookieName = "medallion_session"

// DefaultSessionTTL is how long a login lasts.
const DefaultSessionTTL = 12 * time.Hour

// sessionPrefix versions the session format; a change of format (or of the
// key derivation) changes it, ending older sessions.
const sessionPrefix = "v1."

// sessionKey derives the key sessions are signed with from the dashboard
// token. Deriving it (rather than drawing one per process) keeps sessions
// valid across restarts and across replicas behind one load balancer;
// changing the token ends every session. HMAC is one-way: neither the key
// nor a session reveals the token.
func sessionKey(token string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("medallion dashboard session key v1"))
	return m.Sum(nil)
}

// sessionValue is the cookie value of a session that ends at exp:
// "v1.<unix seconds>.<HMAC-SHA256 of the first two parts, base64url>".
func sessionValue(key []byte, exp time.Time) string {
	payload := sessionPrefix + strconv.FormatInt(exp.Unix(), 10)
	return payload + "." + base64.RawURLEncoding.EncodeToString(sessionMAC(key, payload))
}

func sessionMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// sessionOK reports whether v is a session signed with key that has not
// ended at now. The signature is checked in constant time.
func sessionOK(key []byte, v string, now time.Time) bool {
	i := strings.LastIndexByte(v, '.')
	if i < 0 || !strings.HasPrefix(v, sessionPrefix) {
		return false
	}
	payload, sig := v[:i], v[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, sessionMAC(key, payload)) {
		return false
	}
	exp, err := strconv.ParseInt(strings.TrimPrefix(payload, sessionPrefix), 10, 64)
	return err == nil && now.Unix() < exp
}

// secureRequest reports whether the browser reached us over HTTPS: TLS here,
// or a proxy in front that terminated it. Trusting the proxy's header can
// only make the cookie stricter (Secure), never weaker.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
