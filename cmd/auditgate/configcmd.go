package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/auditgate/auditgate/config"
)

// runConfig is the config group; its one command is `config check FILE`.
func runConfig(args []string, stdout, stderr io.Writer) int {
	if _, code, ok := groupCommand("config", args, stdout, stderr); !ok {
		return code
	}
	fs := newFlagSet("config check", "config check [flags] FILE", stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	if code, ok := parseArgs(fs, args[1:], stdout); !ok {
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
