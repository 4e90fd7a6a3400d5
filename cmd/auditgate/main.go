// Command auditgate is the auditing inference gateway: a reverse proxy in
// front of model APIs that records every exchange, plus the tools around it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// Set by the build (-ldflags "-X main.version=...").
var version = ""

// Exit codes, shared by every subcommand.
const (
	exitOK       = 0
	exitFailure  = 1 // the command ran and found problems, or failed
	exitUsage    = 2 // bad flags or arguments
	exitInternal = 3
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", "run the gateway", runServe},
		{"config", "check a configuration file (config check FILE)", runConfig},
		{"demo", "run a mock model API and the gateway, send traffic through it, report", runDemo},
		{"keygen", "write a signing key and its trust file", runKeygen},
		{"bucket", "create or check an S3 bucket for the trail (bucket init URL)", runBucket},
		{"verify", "verify a trail offline: signatures, links, hashes, chain, roots", runVerify},
		{"show", "print one record of a trail (show ID --store URL)", runShow},
		{"search", "list the records of a trail that match filters", runSearch},
		{"prove", "write a proof that one record is in the trail (prove ID --store URL)", runProve},
		{"verify-proof", "check a record proof offline (verify-proof FILE --trust FILE)", runVerifyProof},
		{"bench", "measure the gateway's added latency against direct (and nginx), open-loop, in one run", runBench},
		{"mock-upstream", "serve a mock OpenAI/Anthropic/KServe-compatible model API", runMock},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "auditgate: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "auditgate: an auditing reverse proxy for model APIs")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: auditgate COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'auditgate COMMAND --help' for a command's flags.")
}

// newFlagSet returns a flag set that prints its usage to stderr and
// returns errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: auditgate %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and returns the exit code to use if parsing
// ended the command (help asked for, or a usage error).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

// parseInterspersed parses flags that may come before or after positional
// arguments (auditgate verify URL --trust FILE) and returns the positional
// ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if code, ok := parseFlags(fs, args); !ok {
			return nil, code, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			return strings.TrimSpace(fmt.Sprintf("%s %s%s", v, rev, dirty))
		}
		if v != "" {
			return v
		}
	}
	return "devel"
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "version", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintf(stdout, "auditgate %s\n", versionString())
	return exitOK
}
