package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration, located as precisely as
// its origin allows.
type Problem struct {
	// File is the configuration file, or "" when the value did not come
	// from one.
	File string
	// Line is the 1-based line in File, or 0 when unknown (a value set in
	// code, by a flag or by an environment variable).
	Line int
	// Key is the dotted path of the setting, such as
	// "routes[1].timeouts.dial"; "" for problems of the file as a whole.
	Key string
	// Msg says what is wrong and what to do about it.
	Msg string
}

// String formats the problem as "FILE:LINE: KEY: message", leaving out the
// parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Line > 0 && p.File != "":
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one configuration. Reporting them all
// at once spares the operator a fix-and-retry loop per mistake.
type Problems []Problem

// Error lists the problems one per line.
func (ps *Problems) Error() string {
	lines := make([]string, len(*ps))
	for i, p := range *ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// err returns ps as an error, or nil when there is nothing to report.
// Problems are ordered by line so they read top to bottom like the file;
// those without a line come last.
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Line, ps[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
	return &ps
}
