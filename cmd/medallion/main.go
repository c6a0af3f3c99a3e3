// Command medallion runs a medallion-architecture lakehouse pipeline declared
// in one medallion.yaml: raw landing, typed bronze tables, watermarked silver
// windows, gold moving averages and models, and a PostgreSQL mirror.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/medallion-dev/medallion/lake"
	_ "time/tzdata" // tz: in medallion.yaml works in minimal containers without zoneinfo
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand: one file in this folder each.
type command struct {
	name    string
	args    string // usage line after the name
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

func commands() []command {
	return []command{
		{"init", "[--lake URL] [--template KIND]", "write a starter medallion.yaml (or one per sample kind) and create the lake", runInit},
		{"generate", "KIND [--rows N] [--out FILE] [--format csv|ndjson|json] [--late-fraction F] [--bad-fraction F] [--seed S]", "write sample data (energy, ecommerce, sensor, turnstile)", runGenerate},
		{"ingest", "SOURCE FILE|DIR|-...", "land files in raw, exactly once by content", runIngest},
		{"run", "[LAYER|TABLE ...]", "promote raw -> bronze -> silver -> gold -> mirror, once", runRun},
		{"mirror", mirrorUsage, "copy mirrored tables into PostgreSQL now; --rebuild TABLE swaps in a fresh copy", runMirror},
		{"query", queryUsage, "read-only SQL over every table by name", runQuery},
		{"serve", "[--addr :8080] [--no-stream] [--no-ui] [--tls-cert FILE --tls-key FILE]", "ingest endpoints, dashboard, scheduler or stream mode, metrics", runServe},
		{"replay", replayUsage, "type a bronze table's quarantined rows again with the current rules; those that now pass move into bronze once", runReplay},
		{"tables", "", "every table: layer, rows, files, small files, bytes, version, last commit", runTables},
		{"history", "TABLE", "commits of a table: version, time, operation, rows in/out", runHistory},
		{"runs", "[--limit N] [JOB]", "run history: job, start, end, rows in/out, result, error", runRuns},
		{"refresh", refreshUsage, "recompute a table (or a time range of it) in one atomic commit; --downstream brings gold and the mirror along", runRefresh},
		{"optimize", optimizeUsage, "compact small data files into files of the target size (dataChange=false)", runOptimize},
		{"vacuum", vacuumUsage, "list (or delete with --yes) files no version within the retention needs", runVacuum},
		{"verify", verifyUsage, "check every live data file against its recorded size and checksum; exit 1 on a mismatch", runVerify},
		{"version", "", "print the version (module version or the VCS commit it was built from)", runVersion},
		{"help", "[COMMAND]", "list the commands, or show one command's usage and flags", runHelp},
		{"completion", "bash|zsh|fish", "print a shell completion script (e.g. source <(medallion completion bash))", runCompletion},
	}
}

// usageError is a mistake in how the command was called: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp is returned when --help was asked for: usage printed, exit 0.
var errHelp = errors.New("help requested")

// app is what every subcommand shares: output streams, logger and the
// common flags.
type app struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	log            *slog.Logger
	pipelineFile   string // -f
	logFormat      string // --log-format text|json
	logLevel       string
	// createLake: open the lake creating it if missing (init, or a writer
	// given --create-lake); createLakeAllowed: the command has that flag.
	createLake, createLakeAllowed bool
	// onFlags, when set, receives the command's flag set in place of
	// running the command (shell completion lists the flags this way).
	onFlags func(*flag.FlagSet)
	// storeCounts, when set (MEDALLION_STORESTATS), counts the calls to
	// every lake the command opens.
	storeCounts *lake.Counts
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startCPUProfile(os.Getenv("MEDALLION_CPUPROFILE"), os.Stderr)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// startCPUProfile writes a Go CPU profile of the whole command to path
// (MEDALLION_CPUPROFILE=path; read it with `go tool pprof`) and returns the
// function that finishes it. Time spent inside DuckDB shows as cgo calls.
// A profile that cannot be started is reported and the command runs anyway.
func startCPUProfile(path string, stderr io.Writer) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "medallion: MEDALLION_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "medallion: MEDALLION_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "medallion: MEDALLION_CPUPROFILE: %v\n", err)
		}
	}
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, stdin: stdin, logFormat: "text", logLevel: "warn"}
	globals, args := splitGlobals(args)
	if len(args) == 0 {
		a.printUsage(stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		a.printUsage(stdout)
		return 0
	}
	if name == "--version" {
		name = "version"
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == name {
			c := c
			cmd = &c
		}
	}
	if cmd == nil {
		fmt.Fprintln(stderr, unknownCommand(name))
		a.printUsage(stderr)
		return 2
	}
	statsPath := os.Getenv("MEDALLION_STORESTATS")
	if statsPath != "" {
		a.storeCounts = &lake.Counts{}
	}
	err := cmd.run(ctx, a, append(globals, args[1:]...))
	if statsPath != "" {
		writeStoreStats(statsPath, a.storeCounts, stderr)
	}
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "medallion %s: %s\nusage: %s\n", cmd.name, ue.msg, strings.TrimSpace("medallion "+cmd.name+" "+cmd.args))
		return 2
	default:
		fmt.Fprintf(stderr, "medallion %s: %s\n", cmd.name, errorLine(err))
		return 1
	}
}

func (a *app) printUsage(w io.Writer) {
	fmt.Fprintln(w, "medallion: a medallion-architecture lakehouse in one binary")
	fmt.Fprintln(w, "\nusage: medallion COMMAND [flags] [args]\n\ncommands:")
	cmds := commands()
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nevery command takes -f FILE (default ./medallion.yaml), --log-format text|json, --log-level and --help,")
	fmt.Fprintln(w, "before or after the command; `medallion help COMMAND` shows a command's flags")
	fmt.Fprintln(w, "MEDALLION_CPUPROFILE=FILE writes a Go CPU profile of the command to FILE (go tool pprof)")
	fmt.Fprintln(w, "MEDALLION_STORESTATS=FILE writes the command's lake calls (lists, keys listed, gets, puts) to FILE as JSON")
}

// flags returns a flag set carrying the common flags; each subcommand adds its own.
func (a *app) flags(c string) *flag.FlagSet {
	fs := flag.NewFlagSet(c, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.pipelineFile, "f", "", "pipeline file (default ./medallion.yaml)")
	fs.StringVar(&a.logFormat, "log-format", a.logFormat, "log format: text or json")
	fs.StringVar(&a.logLevel, "log-level", a.logLevel, "log level: debug, info, warn, error (the summary lines on stdout do not depend on it)")
	return fs
}

// parse parses flags that may appear before, between or after positional
// arguments ("query 'SELECT 1' --format csv") and sets up logging.
func (a *app) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	if a.onFlags != nil {
		a.onFlags(fs)
		return nil, errHelp
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				a.printCommandHelp(fs)
				return nil, errHelp
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// A lone "-" is an argument (stdin), and "--" ends the flags.
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if err := a.setupLogging(); err != nil {
		return nil, err
	}
	return pos, nil
}

func (a *app) printCommandHelp(fs *flag.FlagSet) {
	for _, c := range commands() {
		if c.name == fs.Name() {
			fmt.Fprintf(a.stdout, "usage: %s\n\n%s\n\nflags:\n", strings.TrimSpace("medallion "+c.name+" "+c.args), c.summary)
		}
	}
	fs.SetOutput(a.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func (a *app) setupLogging() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	if a.logFormat != "text" && a.logFormat != "json" {
		return usagef("--log-format %q: want text or json", a.logFormat)
	}
	a.log = a.loggerTo(a.stderr)
	return nil
}

// loggerTo is a logger of the command's --log-format and --log-level
// (checked by setupLogging) writing to w.
func (a *app) loggerTo(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(a.logLevel))
	opts := &slog.HandlerOptions{Level: level}
	if a.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
