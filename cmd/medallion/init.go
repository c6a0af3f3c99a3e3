package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/redact"
)

// lakeLine matches the starter file's lake: line so --lake can replace it.
var lakeLine = regexp.MustCompile(`(?m)^lake:.*$`)

func runInit(ctx context.Context, a *app, args []string) error {
	fs := a.flags("init")
	lakeURL := fs.String("lake", "", "lake URL: file://DIR or s3://bucket/prefix (default file://./lake)")
	force := fs.Bool("force", false, "overwrite an existing pipeline file")
	template := fs.String("template", "energy", "pipeline to write, one per sample data kind: "+templateNames())
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	path := a.pipelineFile
	if path == "" {
		path = "medallion.yaml"
	}
	starter, info, err := config.Template(*template)
	if err != nil {
		return usagef("--template: %v", err)
	}
	if *lakeURL != "" {
		starter = lakeLine.ReplaceAll(starter, []byte("lake: "+*lakeURL))
	}
	// Parse before writing: a bad --lake is refused, not written.
	p, err := config.Parse(path, starter, os.LookupEnv)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil && !*force {
		return fmt.Errorf("%s already exists: edit it, or pass --force to overwrite it", path)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if err := os.WriteFile(path, starter, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	st, err := a.openLake(ctx, p)
	if err != nil {
		return err
	}
	marker := fmt.Sprintf("{\"created_by\":\"medallion %s\"}\n", version)
	if _, err := st.PutIfAbsent(ctx, "_medallion/lake.json", bytes.NewReader([]byte(marker)), int64(len(marker))); err != nil && !isExists(err) {
		return fmt.Errorf("create lake %s: %w", redact.String(p.Lake), err)
	}
	fmt.Fprintf(a.stdout, "wrote %s\nlake ready at %s\nnext: medallion generate %s --rows 100000 --out %s && medallion ingest %s %s && medallion run\n",
		path, st.URL(), info.Name, info.File, info.Source, info.File)
	return nil
}

// templateNames lists the names --template takes.
func templateNames() string {
	var names []string
	for _, t := range config.Templates() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}
