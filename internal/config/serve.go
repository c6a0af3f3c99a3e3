package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of the serve.http limits (the receiver takes them from here).
const (
	DefaultMaxBodyBytes     = 16 << 20
	DefaultMaxPendingBytes  = 64 << 20
	DefaultMaxBufferedBytes = 256 << 20
	DefaultBodyTimeout      = 30 * time.Second
)

// Serve configures `medallion serve`.
type Serve struct {
	HTTP ServeHTTP
}

// ServeHTTP bounds what the HTTP ingest endpoint holds. Zero values take the
// Default* constants; the loader fills them, so they are always set after Load.
type ServeHTTP struct {
	MaxBodyBytes     int64         // one request body (and one TCP line); larger gets 413; default 16MiB
	MaxPendingBytes  int64         // bytes one source holds until they are landed; beyond: 429; default 64MiB
	MaxBufferedBytes int64         // request-body bytes in memory over all requests; beyond: 429; default 256MiB
	BodyTimeout      time.Duration // time to receive one body; slower gets 408; default 30s
}

func (l *loader) decodeServe(n *yaml.Node, path string, s *Serve) {
	l.object(n, path,
		field{"http", func(n *yaml.Node, path string) {
			h := &s.HTTP
			l.object(n, path,
				field{"max_body_bytes", func(n *yaml.Node, path string) { h.MaxBodyBytes = l.size(n, path) }},
				field{"max_pending_bytes", func(n *yaml.Node, path string) { h.MaxPendingBytes = l.size(n, path) }},
				field{"max_buffered_bytes", func(n *yaml.Node, path string) { h.MaxBufferedBytes = l.size(n, path) }},
				field{"body_timeout", func(n *yaml.Node, path string) { h.BodyTimeout = l.duration(n, path) }},
			)
		}},
	)
}

// validateServe fills the defaults and checks that the limits fit together:
// one largest body must fit a source's pending bytes, and twice over (the
// body and its framed copy) the memory budget.
func (l *loader) validateServe(s *Serve) {
	h := &s.HTTP
	positive := func(key string, v int64) bool {
		if l.has("serve.http."+key) && v <= 0 {
			l.errorf(nil, "serve.http."+key, "must be a positive size, e.g. 16MiB")
			return false
		}
		return true
	}
	ok := positive("max_body_bytes", h.MaxBodyBytes)
	ok = positive("max_pending_bytes", h.MaxPendingBytes) && ok
	ok = positive("max_buffered_bytes", h.MaxBufferedBytes) && ok
	if l.has("serve.http.body_timeout") && h.BodyTimeout <= 0 {
		l.errorf(nil, "serve.http.body_timeout", "must be a positive duration, e.g. 30s")
		ok = false
	}
	if !ok {
		return
	}
	if h.MaxBodyBytes == 0 {
		h.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if h.MaxPendingBytes == 0 {
		h.MaxPendingBytes = max(DefaultMaxPendingBytes, h.MaxBodyBytes)
	}
	if h.MaxBufferedBytes == 0 {
		h.MaxBufferedBytes = max(DefaultMaxBufferedBytes, 2*h.MaxBodyBytes+1)
	}
	if h.BodyTimeout == 0 {
		h.BodyTimeout = DefaultBodyTimeout
	}
	if h.MaxPendingBytes < h.MaxBodyBytes {
		l.errorf(nil, "serve.http.max_pending_bytes", "%d is below max_body_bytes %d: one largest request would never fit", h.MaxPendingBytes, h.MaxBodyBytes)
	}
	if h.MaxBufferedBytes <= 2*h.MaxBodyBytes {
		l.errorf(nil, "serve.http.max_buffered_bytes", "%d is not above twice max_body_bytes %d: one largest request (its body and its framed copy) would never fit", h.MaxBufferedBytes, h.MaxBodyBytes)
	}
}

var sizeRE = regexp.MustCompile(`(?i)^\s*([0-9]+)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$`)

var sizeUnits = map[string]int64{
	"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// size reads a byte count: a whole number, or one with a unit (KB, MB, GB
// are powers of 1000; KiB, MiB, GiB of 1024).
func (l *loader) size(n *yaml.Node, path string) int64 {
	val, _, ok := l.scalar(n, path, "a size")
	if !ok {
		return 0
	}
	v, err := ParseSize(val)
	if err != nil {
		l.errorf(l.deref(n), path, "%s", err.Error())
		return 0
	}
	return v
}

// ParseSize parses a byte count of the pipeline file, e.g. 16MiB or 1000000.
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("expected a size such as 16MiB, 64MB or 1048576, got %q", s)
	}
	num, err := strconv.ParseInt(m[1], 10, 64)
	unit := sizeUnits[strings.ToLower(m[2])]
	if err != nil || num > (1<<62)/unit {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return num * unit, nil
}
