package bronze

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/layers/raw/files"
)

// TestInPlaceFiles: files dropped under s3://bucket/incoming, beside a lake
// at s3://bucket/lake, are referenced in place (nothing copied under
// raw/m/); one rewritten after landing is refused by bronze, which names
// it, and once it is restored every row is in bronze exactly once, its
// _source_file the file's own URL.
func TestInPlaceFiles(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	p := verifyPipeline(t)
	srv := testenv.MinIO(t)
	_, opts, url := testenv.S3Store(t)
	st, err := lake.Open(ctx, url+"/lake", opts)
	if err != nil {
		t.Fatal(err)
	}
	p.S3 = config.S3{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Secure: srv.Secure}
	src := p.Sources["m"]
	src.Files = &config.Files{Path: url + "/incoming", Glob: "*.ndjson", IncludeExisting: true,
		AfterIngest: "keep", OnChange: "ignore", MinAge: time.Nanosecond}
	w, err := files.FromConfig(ctx, st, p, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := lake.Open(ctx, url+"/incoming", opts)
	if err != nil {
		t.Fatal(err)
	}
	inputs := verifyInputs()
	for i, data := range inputs {
		writeObject(t, dir, fmt.Sprintf("in%d.ndjson", i), data)
	}
	time.Sleep(10 * time.Millisecond)
	if b, err := w.TakeAll(ctx, 10*time.Millisecond); err != nil || b.Taken != 3 {
		t.Fatalf("take: %+v %v", b, err)
	}
	objs, err := st.List(ctx, raw.SourceDir("m"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if !strings.Contains(o.Key, "/_manifest/") && !strings.Contains(o.Key, "/_index/") {
			t.Errorf("%s was written: in-place files are not copied", o.Key)
		}
	}

	edited := bytes.Replace(inputs[1], []byte(`"v":1017`), []byte(`"v":1917`), 1)
	writeObject(t, dir, "in1.ndjson", edited)
	_, err = Run(ctx, Deps{Env: layers.Env{Store: st, DB: e.DB(), ScratchDir: t.TempDir(), Now: func() time.Time { return received.Add(time.Hour) }}}, src)
	if err == nil {
		t.Fatal("run over a file rewritten after landing succeeded")
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{url + "/incoming/in1.ndjson", "has sha256 ", "nothing of it is committed", "referenced in place"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	checkRows(t, st, e, inputs[:1])

	writeObject(t, dir, "in1.ndjson", inputs[1])
	if s := runBronze(t, st, p, e.DB()); s.Objects != 2 || s.Written != 80 {
		t.Errorf("run after the restore: %s; want the 2 waiting objects, 80 rows", s)
	}
	checkRows(t, st, e, inputs)
	got := tableCSV(t, st, e.DB(), "bronze/m", "DISTINCT _source_file")
	want := "_source_file\n"
	for i := range inputs {
		want += fmt.Sprintf("%s/incoming/in%d.ndjson\n", url, i)
	}
	if got != want {
		t.Errorf("_source_file:\n%s\nwant\n%s", got, want)
	}
}
