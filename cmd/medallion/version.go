package main

import (
	"context"
	"fmt"
	"runtime"
)

func runVersion(ctx context.Context, a *app, args []string) error {
	fs := a.flags("version")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	fmt.Fprintf(a.stdout, "medallion %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
