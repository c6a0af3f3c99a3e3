// Package redact hides passwords in connection strings and URLs before
// they reach an error message or a log line: the user info of a URL
// (postgres://user:PASSWORD@host, nats://user:PASSWORD@host) and the
// password= settings of a key=value connection string.
//
// Masking is textual and errs on the side of hiding too much: a password
// holding an unescaped "@" or "/" makes a URL ambiguous, so everything from
// the user name's colon to the last "@" of the URL is masked.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces a hidden password.
const Mask = "xxxxx"

// setting matches password settings of key=value connection strings and
// URL queries: password=..., sslpassword='...'.
var setting = regexp.MustCompile(`(?i)\b((?:ssl)?password)(\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&'"` + "`" + `]*)`)

// String returns s with every password it can recognise masked.
func String(s string) string {
	if strings.Contains(s, "://") {
		s = userinfo(s)
	}
	if strings.Contains(strings.ToLower(s), "password") {
		s = setting.ReplaceAllString(s, "${1}${2}"+Mask)
	}
	return s
}

// userinfo masks the password of each URL in s. A URL ends at white space
// or a quote; its user info at the last "@" before that.
func userinfo(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		start := i + 3
		b.WriteString(s[:start])
		s = s[start:]
		end := strings.IndexAny(s, " \t\r\n\"'`<>")
		if end < 0 {
			end = len(s)
		}
		tok := s[:end]
		at := strings.LastIndexByte(tok, '@')
		colon := strings.IndexByte(tok, ':')
		if at < 0 || colon < 0 || colon > at || strings.ContainsAny(tok[:colon], "/?#") {
			continue
		}
		b.WriteString(tok[:colon+1] + Mask)
		s = s[at:]
	}
}

// Error returns err with String applied to its message, and every one of
// secrets (passwords known to the caller) masked; secrets shorter than 4
// bytes are left, as masking them would mangle the words of the message.
// errors.Is and errors.As see through the result. A nil err stays nil.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := String(msg)
	for _, s := range secrets {
		if len(s) >= 4 {
			red = strings.ReplaceAll(red, s, Mask)
		}
	}
	if red != msg {
		return &redacted{msg: red, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }
