package files

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// TestInPlace: a prefix of the lake's own bucket (the lake under
// s3://bucket/lake, the folder s3://bucket/incoming) is referenced in
// place: the manifest names the file, its size, ETag and sha256, and no
// object but manifests, index entries and the source's state is written.
// A prefix of another bucket on the same server, and a folder of the lake's
// bucket with after_ingest delete, are copied as before. The same bytes
// sent again through raw.Land are already landed, and not copied either.
func TestInPlace(t *testing.T) {
	ctx := context.Background()
	srv := testenv.MinIO(t)
	_, opts, url := testenv.S3Store(t)
	_, _, other := testenv.S3Store(t)
	l, err := lake.Open(ctx, url+"/lake", opts)
	if err != nil {
		t.Fatal(err)
	}
	p := &config.Pipeline{S3: config.S3{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Secure: srv.Secure}}
	cases := []struct {
		name, source, path, after string
		inPlace                   bool
	}{
		{"own bucket", "own", url + "/incoming", "keep", true},
		{"other bucket", "other", other + "/incoming", "keep", false},
		{"own bucket, after_ingest delete", "del", url + "/deleted", "delete", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &config.Source{Name: c.source, Format: "ndjson", Files: &config.Files{Path: c.path, Glob: "*.ndjson",
				IncludeExisting: true, AfterIngest: c.after, OnChange: "ignore", MinAge: time.Nanosecond}}
			w, err := FromConfig(ctx, l, p, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			body := "{\"x\":1}\n{\"x\":2}\n"
			put(t, w.o.Dir, "a.ndjson", body)
			time.Sleep(10 * time.Millisecond)
			if b := poll(t, w); b.Taken != 1 {
				t.Fatalf("poll: %+v", b)
			}
			ms, err := raw.Manifests(ctx, l, c.source)
			if err != nil || len(ms) != 1 {
				t.Fatalf("manifests %v (%v)", ms, err)
			}
			m := ms[0]
			if got := m.Ref != ""; got != c.inPlace {
				t.Fatalf("in place = %v, want %v: %+v", got, c.inPlace, m)
			}
			if c.inPlace {
				// The same bytes sent another way are already landed, and
				// no copy is made for a manifest that references a file.
				if _, already, err := raw.Land(ctx, l, c.source, "again.ndjson", "ndjson", strings.NewReader(body), time.Now()); err != nil || !already {
					t.Fatalf("send again: already=%v err=%v", already, err)
				}
			}
			objs, err := l.List(ctx, raw.SourceDir(c.source), "")
			if err != nil {
				t.Fatal(err)
			}
			var data int
			for _, o := range objs {
				if !strings.Contains(o.Key, "/_manifest/") && !strings.Contains(o.Key, "/_index/") {
					data++
				}
			}
			if c.inPlace {
				if m.Ref != c.path+"/a.ndjson" || m.ETag == "" || m.Size != int64(len(body)) || data != 0 {
					t.Errorf("manifest %+v, %d data objects under raw/; want a reference to %s/a.ndjson and no copy", m, data, c.path)
				}
			} else if data != 1 {
				t.Errorf("%d data objects under raw/, want the copy", data)
			}
			rc, err := raw.OpenObject(ctx, l, m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(got) != body {
				t.Errorf("read back %q (%v)", got, err)
			}
		})
	}
}
