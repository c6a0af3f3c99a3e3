package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
)

// globalFlags are the flags every command takes, so they may come before
// the command too (`medallion -f x.yaml run`); true: the flag takes a value.
var globalFlags = map[string]bool{"f": true, "log-format": true, "log-level": true}

// splitGlobals moves the common flags written before the command to after
// it: it returns them and the command line from the command on. A flag
// that needs a value and has none is left in place for the usage error.
func splitGlobals(args []string) (globals, rest []string) {
	for len(args) > 0 {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if !strings.HasPrefix(args[0], "-") || args[0] == "-" || args[0] == "--" || !globalFlags[name] {
			break
		}
		if hasValue || len(args) == 1 {
			globals, args = append(globals, args[0]), args[1:]
			continue
		}
		globals, args = append(globals, args[0], args[1]), args[2:]
	}
	return globals, args
}

// unknownCommand is the error line for a command medallion does not have,
// naming the nearest one when it looks like a typo.
func unknownCommand(name string) string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	msg := fmt.Sprintf("medallion: unknown command %q", name)
	if s := config.Closest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// runHelp is `medallion help [COMMAND]`: the command list, or one
// command's usage and flags as `medallion COMMAND --help` prints them.
func runHelp(ctx context.Context, a *app, args []string) error {
	fs := a.flags("help")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		a.printUsage(a.stdout)
		return nil
	}
	if len(pos) > 1 {
		return usagef("want at most one COMMAND")
	}
	for _, c := range commands() {
		if c.name == pos[0] && c.name != "help" {
			return c.run(ctx, a, []string{"--help"})
		}
	}
	return fmt.Errorf("%s: `medallion help` lists the commands", strings.TrimPrefix(unknownCommand(pos[0]), "medallion: "))
}
