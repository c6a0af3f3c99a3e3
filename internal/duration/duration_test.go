package duration

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := map[string]time.Duration{
		"0": 0, "30s": 30 * time.Second, "1m": time.Minute, "1h30m": 90 * time.Minute, "1d": 24 * time.Hour,
		"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "-1m": -time.Minute, " 15m ": 15 * time.Minute, "500ms": 500 * time.Millisecond,
	}
	for in, want := range tests {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1", "1x", "d", "1d-1h", "1.5d", "99999999999d", "1d1d"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, got)
		}
	}
}
