package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// helpCommands are the commands whose help is checked: every command run
// dispatches to, and every command of a group (config check, bucket init).
func helpCommands() [][]string {
	var cmds [][]string
	for _, c := range commands() {
		cmds = append(cmds, []string{c.name})
		for _, sub := range commandHelp[c.name].commands {
			cmds = append(cmds, []string{c.name, sub.name})
		}
	}
	return cmds
}

// runInProcess runs auditgate with args and returns what it wrote to
// stdout and stderr and its exit code.
func runInProcess(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// helpSections splits help into its sections by title ("Usage",
// "Flags", "Exit codes", …); the text after "Usage:" is the synopsis and
// the untitled paragraph is "About".
func helpSections(help string) map[string][]string {
	sections := make(map[string][]string)
	for _, block := range strings.Split(strings.TrimSuffix(help, "\n"), "\n\n") {
		lines := strings.Split(block, "\n")
		title, rest, titled := strings.Cut(lines[0], ":")
		switch {
		case strings.HasPrefix(lines[0], "Usage: "):
			sections["Usage"] = []string{strings.TrimPrefix(lines[0], "Usage: ")}
		case titled && strings.TrimSpace(rest) == "" && !strings.HasPrefix(title, " "):
			sections[title] = lines[1:]
		default:
			sections["About"] = append(sections["About"], lines...)
		}
	}
	return sections
}

func TestHelp(t *testing.T) {
	cmds := helpCommands()
	for _, want := range [][]string{{"config", "check"}, {"bucket", "init"}} {
		if !slices.ContainsFunc(cmds, func(c []string) bool { return slices.Equal(c, want) }) {
			t.Errorf("helpCommands lacks %q", want)
		}
	}
	for _, cmd := range cmds {
		name := strings.Join(cmd, " ")
		t.Run(name, func(t *testing.T) {
			help, errOut, code := runInProcess(slices.Concat(cmd, []string{"--help"})...)
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q: want exit 0 and the help on stdout", code, errOut)
			}
			for _, other := range [][]string{slices.Concat(cmd, []string{"-h"}), slices.Concat([]string{"help"}, cmd)} {
				if out, _, code := runInProcess(other...); code != exitOK || out != help {
					t.Errorf("%q: exit %d, help differs from --help:\n%s", other, code, out)
				}
			}
			h, ok := commandHelp[name]
			if !ok {
				t.Fatalf("commandHelp has no entry %q", name)
			}
			s := helpSections(help)
			synopsis := strings.Join(s["Usage"], "")
			if !strings.HasPrefix(synopsis, "auditgate "+name) {
				t.Errorf("synopsis %q does not start with %q", synopsis, "auditgate "+name)
			}
			if len(s["About"]) == 0 {
				t.Error("no sentence on what the command does")
			}
			flags, hasFlags := s["Flags"]
			if hasFlags != strings.Contains(synopsis, "[flags]") {
				t.Errorf("synopsis %q and the Flags section disagree on whether there are flags", synopsis)
			}
			if hasFlags && (len(flags) == 0 || !strings.HasPrefix(flags[0], "  --")) {
				t.Errorf("empty or malformed Flags section: %q", flags)
			}
			if strings.Contains(help, "Flags:") && !hasFlags {
				t.Error("a Flags: header that is not a section of its own")
			}
			for _, l := range flags {
				if strings.HasPrefix(l, "  -") && !strings.HasPrefix(l, "  --") {
					t.Errorf("flag written with one dash: %q", l)
				}
			}
			if h.exits != nil {
				exits := s["Exit codes"]
				for _, want := range []string{"  0  ", "  1  ", "  2  usage error"} {
					if !slices.ContainsFunc(exits, func(l string) bool { return strings.HasPrefix(l, want) }) {
						t.Errorf("Exit codes section lacks %q: %q", want, exits)
					}
				}
			} else if _, ok := s["Exit codes"]; ok {
				t.Error("an Exit codes section for a command without exit codes")
			}
			for _, sub := range h.commands {
				if !slices.ContainsFunc(s["Commands"], func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), sub.name+" "+sub.args+" ") }) {
					t.Errorf("Commands section lacks %q: %q", sub.name+" "+sub.args, s["Commands"])
				}
			}
			checkWidth(t, help)
		})
	}
}

// checkWidth checks that help fits in helpWidth columns, but for a word
// too long to wrap.
func checkWidth(t *testing.T, help string) {
	t.Helper()
	for _, l := range strings.Split(help, "\n") {
		if len([]rune(l)) > helpWidth && len(strings.Fields(l)) > 1 {
			t.Errorf("line wider than %d columns: %q", helpWidth, l)
		}
	}
}

func TestTopLevelHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, errOut, code := runInProcess(args...)
		if code != exitOK || errOut != "" || !strings.HasPrefix(out, "auditgate: ") {
			t.Fatalf("%q: exit %d, stderr %q, stdout %q", args, code, errOut, out)
		}
		s := helpSections(out)
		if s["Usage"][0] != "auditgate COMMAND [flags]" {
			t.Errorf("%q: synopsis %q", args, s["Usage"])
		}
		for _, c := range commands() {
			if !slices.ContainsFunc(s["Commands"], func(l string) bool { return strings.HasPrefix(l, "  "+c.name+" ") }) {
				t.Errorf("%q: %s is not listed: %q", args, c.name, s["Commands"])
			}
		}
		checkWidth(t, out)
	}
}

// TestUsageErrorsGoToStderr checks that help not asked for goes with the
// error to stderr, and the exit code is 2.
func TestUsageErrorsGoToStderr(t *testing.T) {
	cases := [][]string{{}, {"frobnicate"}, {"help", "frobnicate"}, {"config"}, {"config", "frobnicate"}, {"bucket"}, {"version", "extra"}}
	for _, cmd := range helpCommands() {
		cases = append(cases, slices.Concat(cmd, []string{"--no-such-flag"}))
	}
	for _, args := range cases {
		out, errOut, code := runInProcess(args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, "Usage: auditgate ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q: want exit 2 and the usage on stderr", args, code, out, errOut)
		}
	}
}
