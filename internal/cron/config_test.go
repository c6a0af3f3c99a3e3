package cron_test

import (
	"testing"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/cron"
)

// The pipeline loader validates schedules with this package; @every takes
// the same durations as every other duration in the pipeline file.
func TestEveryAcceptsWhatConfigAccepts(t *testing.T) {
	for _, d := range []string{"30s", "1m", "1h30m", "1d", "2d12h", "0.5s", "1d1d", "d", "-1m", "1d-1h", "soon", "", " 1m", "9223372036s", "106751d", "106752d", "1.5d"} {
		want, wantErr := config.ParseDuration(d)
		s, err := cron.Parse("@every " + d)
		switch {
		case wantErr != nil || want <= 0:
			if err == nil {
				t.Errorf("@every %q accepted; config.ParseDuration says %v, %v", d, want, wantErr)
			}
		case err != nil:
			t.Errorf("@every %q: %v; config.ParseDuration accepts it as %s", d, err, want)
		case s.Every() != want:
			t.Errorf("@every %q = %s, config.ParseDuration = %s", d, s.Every(), want)
		}
	}
}
