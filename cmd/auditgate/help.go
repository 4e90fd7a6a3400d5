package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// helpText is what a command's help says besides its synopsis and flags.
type helpText struct {
	about    string       // what the command does, a sentence or two
	commands []subcommand // the commands of a group (config, bucket)
	exits    *exitCodes   // nil: the exit status says nothing but success or usage error
}

// subcommand is one command of a group: auditgate GROUP NAME ARGS.
type subcommand struct{ name, args, summary string }

// exitCodes say what 0 and 1 mean for one command, and what counts as a
// usage error (2) when it is more than bad flags or arguments.
type exitCodes struct{ ok, fail, usage string }

const usageExit = "usage error: bad flags or arguments"

var (
	configCheckExits = &exitCodes{ok: "the file is valid", fail: "problems found, or the file could not be read"}
	bucketInitExits  = &exitCodes{ok: "the bucket is ready for a trail", fail: "the bucket has problems, or could not be reached or created",
		usage: usageExit + ", or a malformed URL or retention"}
)

// commandHelp holds the help of every command run dispatches to, and of
// the commands of the groups, by the name their flag set carries.
var commandHelp = map[string]helpText{
	"serve": {
		about: "Run the gateway: a reverse proxy in front of model APIs that records every exchange in a signed, append-only trail. " +
			"Flags override the configuration file; SIGHUP reloads the file, SIGINT or SIGTERM drains in-flight requests and seals the trail.",
		exits: &exitCodes{ok: "stopped by a signal, the trail sealed",
			fail:  "could not start (bad configuration, address in use, trail unusable), or stopped on an error",
			usage: usageExit + ", or no upstream"},
	},
	"config": {
		about:    "Work with the gateway's YAML configuration file.",
		commands: []subcommand{{"check", "FILE", "check FILE without starting anything: every problem, each with its line and YAML key"}},
		exits:    configCheckExits,
	},
	"config check": {
		about: "Check a configuration file without starting anything. Every problem is reported, each with its file, line and YAML key; " +
			"--format json prints them as one JSON object with \"ok\" and \"problems\".",
		exits: configCheckExits,
	},
	"demo": {
		about: "Show the whole path on loopback: a mock model API, the gateway in front of it, a chat and a streamed chat sent through it, " +
			"a clean shutdown that seals the trail, then verify, show and prove on the trail just written. It leaves nothing running and removes what it wrote, unless --keep.",
		exits: &exitCodes{ok: "every check passed", fail: "a check failed; the report on stdout says which"},
	},
	"keygen": {
		about: "Write a new signing key (signing.key, mode 0600) and its trust file (trust.pub) into a directory. " +
			"serve signs the trail with the key (--key); auditors pin the trust file (verify --trust). Existing files are never overwritten.",
		exits: &exitCodes{ok: "the key pair was written", fail: "it could not be written, or a key file already exists"},
	},
	"bucket": {
		about:    "Prepare an S3 bucket for the trail.",
		commands: []subcommand{{"init", "URL", "create the bucket with Object Lock and versioning, or check an existing one and say what is wrong with it"}},
		exits:    bucketInitExits,
	},
	"bucket init": {
		about: "Create the trail's bucket with Object Lock and versioning, or check an existing one and say what is wrong with it. " +
			"URL is s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=R&secure=false; credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
		exits: bucketInitExits,
	},
	"verify": {
		about: "Verify a trail offline: every signature, link, hash, chain and root, against the keys pinned in the trust file. " +
			"The store is the argument or --store; --since-checkpoint also proves that the trail extends a checkpoint kept earlier, which catches a truncated tail.",
		exits: &exitCodes{ok: "everything holds", fail: "findings (listed on stdout), or the trail could not be read",
			usage: usageExit + ", a trust file or checkpoint that cannot be read, or a malformed store URL"},
	},
	"show": {
		about: "Print one record of a trail, found by its id: its fields, then its input and output, shortened. --format json prints the record as stored.",
		exits: &exitCodes{ok: "the record was printed", fail: "no such record, or the trail could not be read or, with --trust, did not verify"},
	},
	"search": {
		about: "List the records of a trail that match every filter given, one line each; --format json prints the records as stored, one per line.",
		exits: &exitCodes{ok: "the search finished, whether or not anything matched", fail: "the trail could not be read or, with --trust, did not verify"},
	},
	"prove": {
		about: "Write to stdout a proof that one record is in the trail: the record, its inclusion proof and the signed checkpoint it leads to. " +
			"verify-proof checks it offline, without the store.",
		exits: &exitCodes{ok: "the proof was written", fail: "no such record, or the proof could not be built or, with --trust, did not verify"},
	},
	"verify-proof": {
		about: "Check a record proof written by prove, offline: the record's inclusion under the checkpoint, and the checkpoint's signature against the keys pinned in the trust file.",
		exits: &exitCodes{ok: "the proof holds", fail: "the proof does not hold",
			usage: usageExit + ", or an unreadable proof or trust file"},
	},
	"bench": {
		about: "Measure the latency the gateway adds: open-loop load at each rate against the upstream directly, through the gateway " +
			"(a child auditgate serve, measured from outside) and through nginx when asked, then a closed-loop maximum-throughput run, all in one run.",
		exits: &exitCodes{ok: "the report was written", fail: "the run failed"},
	},
	"mock-upstream": {
		about: "Serve a mock model API that speaks the OpenAI, Anthropic and Open Inference Protocol v2 (KServe) APIs, to try the gateway without a model. " +
			"It runs until interrupted.",
		exits: &exitCodes{ok: "stopped by SIGINT or SIGTERM", fail: "could not listen, or failed"},
	},
	"version": {
		about: "Print auditgate's version: the release it was built as, or the module version and VCS revision.",
	},
}

// helpWidth is the column help text wraps at.
const helpWidth = 80

// writeHelp writes the help of the command fs belongs to: its synopsis,
// what it does, its flags with their defaults and its exit codes. A
// section with nothing to say is left out.
func writeHelp(w io.Writer, fs *flag.FlagSet, synopsis string) {
	h := commandHelp[fs.Name()]
	fmt.Fprintf(w, "Usage: auditgate %s\n", synopsis)
	writeAbout(w, h)
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	if len(flags) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		for _, f := range flags {
			writeFlag(w, f)
		}
	}
	writeExits(w, h.exits)
}

// writeGroupHelp writes the help of a group of commands (config, bucket).
func writeGroupHelp(w io.Writer, group string) {
	h := commandHelp[group]
	fmt.Fprintf(w, "Usage: auditgate %s COMMAND [ARGUMENTS]\n", group)
	writeAbout(w, h)
	fmt.Fprint(w, "\nCommands:\n")
	width := 0
	for _, c := range h.commands {
		width = max(width, len(c.name)+1+len(c.args))
	}
	for _, c := range h.commands {
		head := fmt.Sprintf("  %-*s  ", width, c.name+" "+c.args)
		writeWrapped(w, c.summary, head, strings.Repeat(" ", len(head)))
	}
	fmt.Fprintf(w, "\nRun 'auditgate %s COMMAND --help' for a command's flags.\n", group)
	writeExits(w, h.exits)
}

func writeAbout(w io.Writer, h helpText) {
	if h.about != "" {
		fmt.Fprintln(w)
		writeWrapped(w, h.about, "", "")
	}
}

// writeFlag writes one flag as --name VALUE, in the synopsis' upper case,
// then what it does and its default, if that is not the zero value, on
// indented lines.
func writeFlag(w io.Writer, f *flag.Flag) {
	value, usage := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if value != "" {
		line += " " + strings.ToUpper(value)
	}
	if !isZeroDefault(f.DefValue) {
		usage += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	fmt.Fprintln(w, line)
	writeWrapped(w, usage, "      ", "      ")
}

// isZeroDefault reports whether a flag's default is the zero value of the
// kinds of flag the commands use (string, bool, int, duration), which
// help does not mention.
func isZeroDefault(def string) bool {
	switch def {
	case "", "false", "0", "0s":
		return true
	}
	return false
}

func writeExits(w io.Writer, e *exitCodes) {
	if e == nil {
		return
	}
	usage := e.usage
	if usage == "" {
		usage = usageExit
	}
	fmt.Fprint(w, "\nExit codes:\n")
	for i, what := range []string{e.ok, e.fail, usage} {
		writeWrapped(w, what, fmt.Sprintf("  %d  ", i), "     ")
	}
}

// writeWrapped writes text in lines no wider than helpWidth: the first
// starts with first, the others with indent.
func writeWrapped(w io.Writer, text, first, indent string) {
	line, start := first, utf8.RuneCountInString(first)
	n := start
	for _, word := range strings.Fields(text) {
		wn := utf8.RuneCountInString(word)
		if n > start && n+1+wn > helpWidth {
			fmt.Fprintln(w, line)
			line, start = indent, utf8.RuneCountInString(indent)
			n = start
		}
		if n > start {
			line, n = line+" ", n+1
		}
		line, n = line+word, n+wn
	}
	fmt.Fprintln(w, line)
}

// groupCommand picks the command of a group (config check, bucket init)
// that args name. Otherwise it ends the group: with its help on stdout
// and exit 0 if help was asked for, or a usage error on stderr.
func groupCommand(group string, args []string, stdout, stderr io.Writer) (string, int, bool) {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			writeGroupHelp(stdout, group)
			return "", exitOK, false
		}
		for _, c := range commandHelp[group].commands {
			if c.name == args[0] {
				return c.name, 0, true
			}
		}
		fmt.Fprintf(stderr, "auditgate %s: unknown command %q\n\n", group, args[0])
	}
	writeGroupHelp(stderr, group)
	return "", exitUsage, false
}
