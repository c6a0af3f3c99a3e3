package pgmirror_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/warehouse"
	"github.com/medallion-dev/medallion/warehouse/pgmirror"
)

// TestConnectErrorHidesPassword: a mirror whose PostgreSQL cannot be
// reached says so without the password, in its error and its log lines.
// A password with an unescaped @ used to reach the error as a host name
// ("lookup Sekr1tPW@127.0.0.1: no such host").
func TestConnectErrorHidesPassword(t *testing.T) {
	t.Parallel()
	ref := warehouse.TableRef{Schema: "gold", Name: "p"}
	f := newFixture(t, ref, basicSchema)
	for _, dsn := range []string{
		"postgres://medallion:Sekr1tPW@127.0.0.1:1/test?connect_timeout=2",
		"postgres://medallion:hunter2@Sekr1tPW@127.0.0.1:1/test?connect_timeout=2",
		"postgres://medallion:Sekr1tPW@127.0.0.1:1/test?sslpassword=Sekr1tPW&connect_timeout=2",
		"host=127.0.0.1 port=1 user=medallion password=Sekr1tPW dbname=test connect_timeout=2",
		"host=127.0.0.1 port=1 user=medallion password='Sekr1t PW' dbname=test connect_timeout=2",
	} {
		var logs bytes.Buffer
		opts := pgmirror.DefaultOptions()
		opts.MaxAttempts, opts.MinBackoff, opts.MaxBackoff = 2, time.Millisecond, time.Millisecond
		opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		m, err := pgmirror.New(dsn, pgmirror.Deps{Store: f.store, Engine: f.eng}, opts)
		if err == nil {
			_, err = m.Sync(context.Background(), pgmirror.Spec{Source: ref, Schema: "public", Table: "p", Key: []string{"id"}})
		}
		if err == nil {
			t.Fatalf("%s: no error", dsn)
		}
		out := err.Error() + "\n" + logs.String()
		for _, secret := range []string{"Sekr1t", "hunter2"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s: the password shows:\n%s", dsn, out)
			}
		}
	}
}
