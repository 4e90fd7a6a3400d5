package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/auditgate/auditgate/config"
)

func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stderr, "Usage: auditgate config check [--format text|json] FILE")
			return exitOK
		}
		fmt.Fprintln(stderr, "Usage: auditgate config check [--format text|json] FILE")
		return exitUsage
	}
	fs := newFlagSet("config check", "config check [--format text|json] FILE", stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	if code, ok := parseFlags(fs, args[1:]); !ok {
		return code
	}
	if fs.NArg() != 1 || (*format != "text" && *format != "json") {
		fs.Usage()
		return exitUsage
	}
	path := fs.Arg(0)
	_, err := config.Load(path)
	var ps *config.Problems
	if err != nil && !errors.As(err, &ps) {
		// Not a list of problems: the file could not be read at all.
		ps = &config.Problems{{File: path, Msg: err.Error()}}
	}
	if *format == "json" {
		out := struct {
			OK       bool             `json:"ok"`
			Problems []config.Problem `json:"problems"`
		}{OK: err == nil, Problems: []config.Problem{}}
		if ps != nil {
			out.Problems = *ps
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else if err == nil {
		fmt.Fprintf(stdout, "%s: ok\n", path)
	} else {
		for _, p := range *ps {
			fmt.Fprintln(stdout, p.String())
		}
		fmt.Fprintf(stdout, "%d problem(s) in %s\n", len(*ps), path)
	}
	if err != nil {
		return exitFailure
	}
	return exitOK
}
