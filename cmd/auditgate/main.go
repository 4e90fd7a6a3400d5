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
		{"demo", "send traffic through the gateway to a mock model API and report", runDemo},
		{"keygen", "write a signing key and its trust file", runKeygen},
		{"bucket", "create or check an S3 bucket for the trail (bucket init URL)", runBucket},
		{"verify", "verify a trail offline: signatures, links, hashes, chain, roots", runVerify},
		{"show", "print one record of a trail (show ID --store URL)", runShow},
		{"search", "list the records of a trail that match filters", runSearch},
		{"prove", "write a proof that one record is in the trail (prove ID)", runProve},
		{"verify-proof", "check a record proof offline (verify-proof FILE --trust FILE)", runVerifyProof},
		{"bench", "measure the latency the gateway adds, against direct and nginx", runBench},
		{"mock-upstream", "serve a mock OpenAI/Anthropic/KServe-compatible model API", runMock},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return exitOK
		}
		// auditgate help COMMAND [SUBCOMMAND] is COMMAND [SUBCOMMAND] --help.
		return run(append(args[1:len(args):len(args)], "--help"), stdout, stderr)
	case "--version", "-version":
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
		head := fmt.Sprintf("  %-14s ", c.name)
		writeWrapped(w, c.summary, head, strings.Repeat(" ", len(head)))
	}
	fmt.Fprintln(w)
	writeWrapped(w, "Run 'auditgate COMMAND --help' for a command's flags and exit codes. "+
		"Every command exits 0 on success, 1 when it fails or finds problems, 2 on a usage error.", "", "")
}

// newFlagSet returns the flag set of the command called name ("verify",
// "config check"), whose help is its synopsis, its commandHelp entry and
// its flags. Parse errors, and the help after them, go to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { writeHelp(fs.Output(), fs, synopsis) }
	return fs
}

// parseArgs parses args and returns the exit code to use if parsing ended
// the command. Help asked for (-h, --help) goes to stdout, where it can be
// paged or searched, and exits 0; a usage error goes to stderr, followed
// by the help, and exits 2.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) (int, bool) {
	help := fs.Usage
	// The flag package calls Usage for both; which stream gets the help
	// is known only once Parse returns.
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = help
	switch {
	case errors.Is(err, flag.ErrHelp):
		stderr := fs.Output()
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return exitOK, false
	case err != nil:
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

// parseInterspersed parses flags that may come before or after positional
// arguments (auditgate verify URL --trust FILE) and returns the positional
// ones. Help and usage errors go as with parseArgs.
func parseInterspersed(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, int, bool) {
	var pos []string
	for {
		if code, ok := parseArgs(fs, args, stdout); !ok {
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
	if code, ok := parseArgs(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "auditgate version: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	fmt.Fprintf(stdout, "auditgate %s\n", versionString())
	return exitOK
}
