package lake_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/lake/storetest"
)

func TestS3(t *testing.T) {
	storetest.Run(t, func(t *testing.T) lake.Store {
		st, _, _ := testenv.S3Store(t)
		return st
	})
}

// TestS3Prefix runs the suite on a store rooted under a prefix, next to
// another prefix in the same bucket, and checks neither sees the other.
func TestS3Prefix(t *testing.T) {
	_, opts, _ := testenv.S3Store(t)
	neighbour := opts
	neighbour.Prefix = "team/lake-other"
	other, err := lake.NewS3(t.Context(), neighbour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Put(t.Context(), "l/a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(t *testing.T) lake.Store {
		o := opts
		o.Prefix = "/team/lake/" + strings.ReplaceAll(t.Name(), "/", "-") + "/"
		st, err := lake.NewS3(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(st.URL(), "s3://"+o.Bucket+"/team/lake/") || strings.HasSuffix(st.URL(), "/") {
			t.Errorf("URL() = %q, want s3://%s/team/lake/<name>", st.URL(), o.Bucket)
		}
		return st
	})
	got, err := other.List(t.Context(), "", "")
	if err != nil || len(got) != 1 {
		t.Errorf("neighbour prefix lists %v (%v), want only its own object", got, err)
	}
}

func TestNewS3MissingBucket(t *testing.T) {
	opts := testenv.MinIO(t).Options("no-such-bucket-for-medallion")
	_, err := lake.NewS3(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket-for-medallion") {
		t.Errorf("NewS3 on a missing bucket = %v, want an error naming the bucket", err)
	}
}

func TestS3OptionsValidate(t *testing.T) {
	good := lake.S3Options{Endpoint: "127.0.0.1:9000", Bucket: "b", AccessKey: "a", SecretKey: "s"}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", good, err)
	}
	for field, mutate := range map[string]func(*lake.S3Options){
		"endpoint":   func(o *lake.S3Options) { o.Endpoint = "" },
		"endpoint ":  func(o *lake.S3Options) { o.Endpoint = "http://host:9000/path" },
		"bucket":     func(o *lake.S3Options) { o.Bucket = "" },
		"secret key": func(o *lake.S3Options) { o.SecretKey = "" },
	} {
		o := good
		mutate(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(field)) {
			t.Errorf("Validate with a bad %s = %v, want an error naming it", field, err)
		}
	}
}

func TestS3ErrorNamesObject(t *testing.T) {
	st, _, url := testenv.S3Store(t)
	_, err := st.Stat(t.Context(), "a/b")
	var lerr *lake.Error
	if !errors.As(err, &lerr) || !errors.Is(err, lake.ErrNotExist) {
		t.Fatalf("Stat of a missing key = %v, want a *lake.Error wrapping ErrNotExist", err)
	}
	if want := "stat " + url + "/a/b: object does not exist"; err.Error() != want {
		t.Errorf("error text = %q, want %q", err, want)
	}
}
