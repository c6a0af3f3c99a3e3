package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/internal/redact"
	"github.com/medallion-dev/medallion/lake"
)

// lakeMarker is what `medallion init` writes: the mark of an initialised
// lake. Only init and a writer told --create-lake write it; every other
// command checks it, so a mistyped lake URL is never silently a new lake.
const lakeMarker = "_medallion/lake.json"

// createLakeFlag adds --create-lake to a command that writes to the lake.
func (a *app) createLakeFlag(fs *flag.FlagSet) {
	a.createLakeAllowed = true
	fs.BoolVar(&a.createLake, "create-lake", false,
		// No backquotes: flag's help would show the quoted words as the
		// flag's argument ("-create-lake medallion init").
		"create the lake if the lake URL has none, as medallion init does (without it, a lake URL with no lake is refused)")
}

// openLake opens the pipeline's lake. Unless a.createLake is set it creates
// nothing: the directory or bucket must exist and hold an initialised lake,
// else the error says "no lake at URL" and how to make one.
func (a *app) openLake(ctx context.Context, p *config.Pipeline) (lake.Store, error) {
	opts := lake.S3Options{
		Endpoint:  p.S3.Endpoint,
		AccessKey: p.S3.AccessKey,
		SecretKey: p.S3.SecretKey,
		Region:    p.S3.Region,
		Secure:    p.S3.Secure,
	}
	if a.createLake {
		st, err := lake.Open(ctx, p.Lake, opts)
		if err != nil {
			return nil, fmt.Errorf("open lake %s: %w", redact.String(p.Lake), err)
		}
		if err := writeLakeMarker(ctx, st); err != nil {
			return nil, fmt.Errorf("create lake %s: %w", st.URL(), err)
		}
		return a.countStore(st), nil
	}
	st, err := lake.OpenExisting(ctx, p.Lake, opts)
	if errors.Is(err, lake.ErrNoLake) {
		return nil, a.noLake(redact.String(p.Lake), err)
	}
	if err != nil {
		return nil, fmt.Errorf("open lake %s: %w", redact.String(p.Lake), err)
	}
	ok, err := initialised(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("open lake %s: %w", st.URL(), err)
	}
	if !ok {
		return nil, a.noLake(st.URL(), fmt.Errorf("no %s", lakeMarker))
	}
	return a.countStore(st), nil
}

// noLake is the error for a lake URL with no lake behind it.
func (a *app) noLake(url string, cause error) error {
	hint := "run `medallion init`"
	if a.createLakeAllowed {
		hint += ", or pass --create-lake"
	}
	return fmt.Errorf("no lake at %s (%s): %v", url, hint, cause)
}

// initialised reports whether st holds a lake: the marker init writes, or,
// for a lake written before init wrote one, medallion's own state folder.
func initialised(ctx context.Context, st lake.Store) (bool, error) {
	_, err := st.Stat(ctx, lakeMarker)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, lake.ErrNotExist) {
		return false, fmt.Errorf("check %s: %w", lakeMarker, err)
	}
	objs, err := st.List(ctx, "_medallion/", "")
	if err != nil {
		return false, fmt.Errorf("list _medallion/: %w", err)
	}
	return len(objs) > 0, nil
}

// writeLakeMarker marks st as an initialised lake; an existing mark is kept.
func writeLakeMarker(ctx context.Context, st lake.Store) error {
	marker := fmt.Sprintf("{\"created_by\":\"medallion %s\"}\n", version)
	_, err := st.PutIfAbsent(ctx, lakeMarker, bytes.NewReader([]byte(marker)), int64(len(marker)))
	if err != nil && !isExists(err) {
		return err
	}
	return nil
}
