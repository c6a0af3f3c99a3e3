package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// cmdFlags is one command and the flags it takes, for completion scripts.
type cmdFlags struct {
	command
	flags []*flag.Flag
}

// allFlags asks each command for its flag set without running it.
func allFlags(ctx context.Context) []cmdFlags {
	var out []cmdFlags
	for _, c := range commands() {
		cf := cmdFlags{command: c}
		a := &app{stdout: io.Discard, stderr: io.Discard, logFormat: "text", logLevel: "warn"}
		a.onFlags = func(fs *flag.FlagSet) {
			fs.VisitAll(func(f *flag.Flag) { cf.flags = append(cf.flags, f) })
		}
		_ = c.run(ctx, a, nil)
		sort.Slice(cf.flags, func(i, j int) bool { return cf.flags[i].Name < cf.flags[j].Name })
		out = append(out, cf)
	}
	return out
}

// runCompletion is `medallion completion bash|zsh|fish`: a script that
// completes command names, each command's flags, and the arguments of help
// and completion; other words complete as file names.
func runCompletion(ctx context.Context, a *app, args []string) error {
	fs := a.flags("completion")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one shell: bash, zsh or fish")
	}
	cmds := allFlags(ctx)
	switch pos[0] {
	case "bash":
		writeBash(a.stdout, cmds, false)
	case "zsh":
		writeBash(a.stdout, cmds, true)
	case "fish":
		writeFish(a.stdout, cmds)
	default:
		return usagef("unknown shell %q: want bash, zsh or fish", pos[0])
	}
	return nil
}

func commandNames(cmds []cmdFlags) string {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	return strings.Join(names, " ")
}

// writeBash writes the bash script; zsh runs the same one through its
// bashcompinit layer.
func writeBash(w io.Writer, cmds []cmdFlags, zsh bool) {
	if zsh {
		fmt.Fprint(w, "#compdef medallion\n# zsh: source <(medallion completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n")
	} else {
		fmt.Fprint(w, "# bash: source <(medallion completion bash)\n")
	}
	fmt.Fprintf(w, `_medallion() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd="" i
  for ((i=1; i<COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      -f|--f|-log-format|--log-format|-log-level|--log-level) ((i++)) ;;
      -*) ;;
      *) cmd=${COMP_WORDS[i]}; break ;;
    esac
  done
  case $prev in
    -log-format|--log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
    -log-level|--log-level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
  esac
  local flags=""
  case $cmd in
    "") COMPREPLY=($(compgen -W "%s" -- "$cur")); return ;;
    help) COMPREPLY=($(compgen -W "%s" -- "$cur")); return ;;
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
`, commandNames(cmds), commandNames(cmds))
	for _, c := range cmds {
		if c.name == "help" || c.name == "completion" {
			continue // their arguments are completed above
		}
		var fl []string
		for _, f := range c.flags {
			fl = append(fl, "--"+f.Name)
		}
		fmt.Fprintf(w, "    %s) flags=%q ;;\n", c.name, strings.Join(fl, " "))
	}
	fmt.Fprint(w, `  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  fi
}
complete -o default -F _medallion medallion
`)
}

// writeFish writes the fish script.
func writeFish(w io.Writer, cmds []cmdFlags) {
	fmt.Fprint(w, "# fish: medallion completion fish | source\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "complete -c medallion -f -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
		for _, f := range c.flags {
			opt := "-l " + f.Name
			if len(f.Name) == 1 {
				opt = "-o " + f.Name
			}
			fmt.Fprintf(w, "complete -c medallion -n '__fish_seen_subcommand_from %s' %s -d %s\n", c.name, opt, fishQuote(firstSentence(f.Usage)))
		}
	}
	fmt.Fprintf(w, "complete -c medallion -f -n '__fish_seen_subcommand_from help' -a %s\n", fishQuote(commandNames(cmds)))
	fmt.Fprint(w, "complete -c medallion -f -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// firstSentence keeps a flag's usage short enough for a completion menu.
func firstSentence(s string) string {
	if i := strings.IndexAny(s, "(:;"); i > 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
