package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/ferrydr/ferry"
)

// subcommands are the fixed words a verb takes first.
var subcommands = map[string][]string{
	"token":       {"create", "list", "revoke", "bootstrap"},
	"replication": {"show", "suspend", "resume"},
	"completion":  {"bash", "zsh", "fish"},
	"run": {ferry.KindProtect, ferry.KindUnprotect, ferry.KindReprotect, ferry.KindFailover, ferry.KindFailback,
		ferry.KindDrill, ferry.KindEvacuate, ferry.KindBackendFailover, ferry.KindSharePromote},
}

// verbSpec is what completion knows of a verb.
type verbSpec struct {
	name, summary string
	subs          []string
	flags         []string            // without dashes, sorted
	values        map[string][]string // a flag's fixed values
	files         map[string]bool     // flags that name a file
}

var (
	usageFlag   = regexp.MustCompile(`(?:^|[\s\[|])--?([a-z][a-z-]*)`)
	usageValues = regexp.MustCompile(`--?([a-z][a-z-]*) ([a-z]+(?:\|[a-z]+)+)`)
	usageFile   = regexp.MustCompile(`--?([a-z][a-z-]*) FILE`)
)

// usageFlags are the flags a verb's usage line names.
func usageFlags(verb string) []string {
	var out []string
	for _, m := range usageFlag.FindAllStringSubmatch(usage(verb), -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// verbFlagSets asks a verb for its flag sets (one per subcommand) by
// running it with --help: the flags it really parses.
func verbFlagSets(verb string) []*flag.FlagSet {
	c := &CLI{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
	calls := [][]string{{"--help"}}
	if verb == "token" {
		calls = nil
		for _, sub := range subcommands[verb] {
			calls = append(calls, []string{sub, "--help"})
		}
	}
	var sets []*flag.FlagSet
	for _, args := range calls {
		var he *helpError
		if errors.As(c.dispatch(context.Background(), verb, args), &he) {
			sets = append(sets, he.fs)
		}
	}
	return sets
}

// specs builds what completion knows of every verb from the verb table,
// the usage lines and the verbs' own flag sets, so that it cannot drift
// from what the verbs accept: a flag is offered when the usage line names
// it and the verb parses it.
func specs() []verbSpec {
	var out []verbSpec
	for _, verb := range Verbs {
		s := verbSpec{name: verb, subs: subcommands[verb], values: map[string][]string{}, files: map[string]bool{}}
		s.summary = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(usage(verb), "\n", 2)[0], "ferry "+verb))
		parsed := map[string]bool{}
		for _, fs := range verbFlagSets(verb) {
			fs.VisitAll(func(f *flag.Flag) { parsed[f.Name] = true })
		}
		for _, f := range usageFlags(verb) {
			if len(parsed) == 0 || parsed[f] {
				s.flags = append(s.flags, f)
			}
		}
		for _, m := range usageValues.FindAllStringSubmatch(usage(verb), -1) {
			s.values[m[1]] = strings.Split(m[2], "|")
		}
		for _, m := range usageFile.FindAllStringSubmatch(usage(verb), -1) {
			s.files[m[1]] = true
		}
		if parsed["output"] && slices.Contains(s.flags, "o") {
			s.values["o"], s.values["output"] = Outputs, Outputs
			if !slices.Contains(s.flags, "output") {
				s.flags = append(s.flags, "output")
			}
		}
		for _, g := range globalFlags {
			s.flags = append(s.flags, g.name)
			if g.arg == "FILE" {
				s.files[g.name] = true
			}
		}
		sort.Strings(s.flags)
		out = append(out, s)
	}
	return out
}

// dashed is a flag as typed: -f, --output.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// completion prints a shell's completion script.
func (c *CLI) completion(_ context.Context, args []string) error {
	pos, err := parse(flags("completion"), args, "SHELL")
	if err != nil {
		return err
	}
	var script string
	switch pos[0] {
	case "bash":
		script = bashCompletion(specs(), c.Services)
	case "zsh":
		script = zshCompletion(specs(), c.Services)
	case "fish":
		script = fishCompletion(specs(), c.Services)
	default:
		return &usageError{"completion", fmt.Sprintf("unknown shell %q: want bash, zsh or fish", pos[0])}
	}
	_, err = io.WriteString(c.Stdout, script)
	return err
}

// globalValueFlags are the global flags as a shell pattern: a verb is
// the first word that is neither a flag nor one of their values.
func globalValueFlags() string {
	var p []string
	for _, g := range globalFlags {
		p = append(p, "--"+g.name, "-"+g.name)
	}
	return strings.Join(p, "|")
}

func allVerbs(specs []verbSpec, services []string) []string {
	var v []string
	for _, s := range specs {
		v = append(v, s.name)
	}
	return append(v, services...)
}

func valueFlags(s verbSpec) (files, values []string) {
	for _, f := range s.flags {
		if s.files[f] {
			files = append(files, f)
		}
	}
	for f := range s.values {
		if slices.Contains(s.flags, f) {
			values = append(values, f)
		}
	}
	sort.Strings(values)
	return files, values
}

func dashedAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = dashed(n)
	}
	return out
}

func bashCompletion(specs []verbSpec, services []string) string {
	var b strings.Builder
	b.WriteString(`# bash completion for ferry, generated by "ferry completion bash".
# Load it with: source <(ferry completion bash)
_ferry() {
    local cur prev verb i
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    verb=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            ` + globalValueFlags() + `) ((i++)) ;;
            -*) ;;
            *) verb="${COMP_WORDS[i]}"; break ;;
        esac
    done
    case "$prev" in
        ` + globalValueFlags() + `) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [[ -z "$verb" ]]; then
        COMPREPLY=($(compgen -W "` + strings.Join(allVerbs(specs, services), " ") + `" -- "$cur"))
        return
    fi
    case "$verb" in
`)
	for _, s := range specs {
		fmt.Fprintf(&b, "        %s)\n", s.name)
		files, values := valueFlags(s)
		if len(files)+len(values) > 0 {
			b.WriteString("            case \"$prev\" in\n")
			if len(files) > 0 {
				fmt.Fprintf(&b, "                %s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", strings.Join(dashedAll(files), "|"))
			}
			for _, f := range values {
				fmt.Fprintf(&b, "                %s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return ;;\n", dashed(f), strings.Join(s.values[f], " "))
			}
			b.WriteString("            esac\n")
		}
		fmt.Fprintf(&b, "            if [[ \"$cur\" == -* ]]; then COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return; fi\n", strings.Join(dashedAll(s.flags), " "))
		if len(s.subs) > 0 {
			fmt.Fprintf(&b, "            if [[ \"$prev\" == %q ]]; then COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); fi\n", s.name, strings.Join(s.subs, " "))
		}
		b.WriteString("            ;;\n")
	}
	b.WriteString(`    esac
}
complete -o default -F _ferry ferry
`)
	return b.String()
}

// zshQuote quotes s for a single-quoted zsh word.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func zshCompletion(specs []verbSpec, services []string) string {
	var b strings.Builder
	b.WriteString(`#compdef ferry
# zsh completion for ferry, generated by "ferry completion zsh".
# Load it with: source <(ferry completion zsh)   (after compinit), or save it
# as _ferry in a folder of $fpath.
_ferry() {
    local verb prev i
    local -a verbs
    verbs=(
`)
	for _, s := range specs {
		fmt.Fprintf(&b, "        %s\n", zshQuote(s.name+":"+strings.ReplaceAll(cut(s.summary, 70), ":", `\:`)))
	}
	for _, s := range services {
		fmt.Fprintf(&b, "        %s\n", zshQuote(s+":service"))
	}
	b.WriteString(`    )
    for ((i = 2; i < CURRENT; i++)); do
        case "${words[i]}" in
            ` + globalValueFlags() + `) ((i++)) ;;
            -*) ;;
            *) verb="${words[i]}"; break ;;
        esac
    done
    prev="${words[CURRENT-1]}"
    case "$prev" in
        ` + globalValueFlags() + `) _files; return ;;
    esac
    if [[ -z "$verb" ]]; then
        _describe 'verb' verbs
        return
    fi
    case "$verb" in
`)
	for _, s := range specs {
		fmt.Fprintf(&b, "        %s)\n", s.name)
		files, values := valueFlags(s)
		if len(files)+len(values) > 0 {
			b.WriteString("            case \"$prev\" in\n")
			if len(files) > 0 {
				fmt.Fprintf(&b, "                %s) _files; return ;;\n", strings.Join(dashedAll(files), "|"))
			}
			for _, f := range values {
				fmt.Fprintf(&b, "                %s) compadd -- %s; return ;;\n", dashed(f), strings.Join(s.values[f], " "))
			}
			b.WriteString("            esac\n")
		}
		fmt.Fprintf(&b, "            if [[ \"${words[CURRENT]}\" == -* ]]; then compadd -- %s; return; fi\n", strings.Join(dashedAll(s.flags), " "))
		if len(s.subs) > 0 {
			fmt.Fprintf(&b, "            if [[ \"$prev\" == %s ]]; then compadd -- %s; fi\n", s.name, strings.Join(s.subs, " "))
		}
		b.WriteString("            ;;\n")
	}
	b.WriteString(`    esac
}
if [[ "${funcstack[1]}" == "_ferry" ]]; then
    _ferry "$@"
else
    compdef _ferry ferry
fi
`)
	return b.String()
}

// fishQuote quotes s for a single-quoted fish word.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func fishCompletion(specs []verbSpec, services []string) string {
	var b strings.Builder
	b.WriteString(`# fish completion for ferry, generated by "ferry completion fish".
# Load it with: ferry completion fish | source
complete -c ferry -f
`)
	verbs := strings.Join(allVerbs(specs, services), " ")
	for _, s := range specs {
		fmt.Fprintf(&b, "complete -c ferry -n 'not __fish_seen_subcommand_from %s' -a %s -d %s\n", verbs, s.name, fishQuote(cut(s.summary, 70)))
	}
	for _, s := range services {
		fmt.Fprintf(&b, "complete -c ferry -n 'not __fish_seen_subcommand_from %s' -a %s -d service\n", verbs, s)
	}
	for _, s := range specs {
		cond := fmt.Sprintf("-n '__fish_seen_subcommand_from %s'", s.name)
		for _, f := range s.flags {
			opt := "-l " + f
			if len(f) == 1 {
				opt = "-s " + f
			}
			switch {
			case s.files[f]:
				fmt.Fprintf(&b, "complete -c ferry %s %s -r -F\n", cond, opt)
			case len(s.values[f]) > 0:
				fmt.Fprintf(&b, "complete -c ferry %s %s -x -a %s\n", cond, opt, fishQuote(strings.Join(s.values[f], " ")))
			default:
				fmt.Fprintf(&b, "complete -c ferry %s %s\n", cond, opt)
			}
		}
		if len(s.subs) > 0 {
			fmt.Fprintf(&b, "complete -c ferry %s -n 'not __fish_seen_subcommand_from %s' -a %s\n", cond, strings.Join(s.subs, " "), fishQuote(strings.Join(s.subs, " ")))
		}
	}
	return b.String()
}
