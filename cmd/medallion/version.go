package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
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
	v, commit := buildVersion()
	fmt.Fprintf(a.stdout, "medallion %s (%s, %s/%s%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, commit)
	return nil
}

// buildVersion is the version to print: the -ldflags stamp if any, else
// the module version (go install ...@v1.2.3), else "dev-" and the VCS
// revision a plain `go build` in a checkout records; the second value
// names the commit time when known.
func buildVersion() (string, string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, ""
	}
	return versionFrom(version, bi)
}

func versionFrom(stamped string, bi *debug.BuildInfo) (string, string) {
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	when := ""
	if t := settings["vcs.time"]; t != "" {
		when = ", committed " + t
	}
	switch {
	case stamped != "dev":
		return stamped, when
	case bi.Main.Version != "" && bi.Main.Version != "(devel)":
		return bi.Main.Version, when
	}
	rev := settings["vcs.revision"]
	if rev == "" {
		return stamped, ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := "dev-" + rev
	if settings["vcs.modified"] == "true" {
		v += "-dirty"
	}
	return v, when
}
