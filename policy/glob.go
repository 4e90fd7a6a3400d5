package policy

import (
	"fmt"
	"strings"
)

// glob is a compiled wildcard pattern. In path globs "*" matches within one
// segment and "**" any number of whole segments (see Match.Paths); in the
// other globs (callers, models) there are no segments and "*" matches any
// characters.
type glob struct {
	pat string
	// dir is the pattern without a trailing "/**", which also matches, so
	// that "/v1/**" covers "/v1" itself as well as everything below it.
	dir   string
	paths bool
}

// compilePathGlob checks and compiles a glob on request paths.
func compilePathGlob(s string) (glob, error) {
	switch {
	case s == "":
		return glob{}, fmt.Errorf("empty glob: remove it, or use ** for every path")
	case strings.Contains(s, "***"):
		return glob{}, fmt.Errorf("invalid glob %q: *** is not a wildcard: use * within a segment or ** across segments", s)
	case !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "**"):
		return glob{}, fmt.Errorf("invalid glob %q: a path glob starts with / or **, such as /v1/**", s)
	}
	// "**" standing for part of a segment would be read two ways (as * or
	// as crossing "/"); requiring whole segments keeps one meaning.
	for i := strings.Index(s, "**"); i >= 0; {
		end := i + 2
		if i > 0 && s[i-1] != '/' || end < len(s) && s[end] != '/' {
			return glob{}, fmt.Errorf("invalid glob %q: ** must be a whole segment, as in /v1/** or /**/models; use * within a segment", s)
		}
		next := strings.Index(s[end:], "**")
		if next < 0 {
			break
		}
		i = end + next
	}
	g := glob{pat: s, paths: true}
	if dir, ok := strings.CutSuffix(s, "/**"); ok && dir != "" {
		g.dir = dir
	}
	return g, nil
}

// compileGlob checks and compiles a glob on a name without segments, such
// as a model or a caller.
func compileGlob(s string) (glob, error) {
	switch {
	case s == "":
		return glob{}, fmt.Errorf("empty glob: remove it, or use * for any value")
	case strings.Contains(s, "**"):
		return glob{}, fmt.Errorf("invalid glob %q: ** is only for paths: use *, which matches any characters here", s)
	}
	return glob{pat: s}, nil
}

func (g *glob) match(s string) bool {
	return wildcard(g.pat, s, g.paths) || g.dir != "" && wildcard(g.dir, s, true)
}

// wildcard reports whether s matches pat. With paths, "*" does not match
// "/" and "**" does; otherwise any "*" matches anything.
//
// It runs in O(len(pat)·len(s)) without allocating, by resuming from the
// last "*" and, when that one would have to cross a "/", from the last
// "**": a later star can always take what an earlier one of its kind
// would, so earlier ones never need to be revisited. Recursion would be
// exponential on long paths, which clients choose.
func wildcard(pat, s string, paths bool) bool {
	px, sx := 0, 0
	starP, starS := -1, -1 // resume points after the last "*"
	anyP, anyS := -1, -1   // and after the last star that crosses "/"
	// anySegs is set when that star is "**/", which takes whole segments:
	// "/v1/**/models" matches /v1/models and /v1/a/b/models.
	anySegs := false
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			if c := pat[px]; c == '*' {
				switch {
				case !paths:
					px++
					anyP, anyS, anySegs, starP = px, sx, false, -1
				case px+1 < len(pat) && pat[px+1] == '*':
					px += 2
					anySegs = px < len(pat) && pat[px] == '/'
					if anySegs {
						px++
					}
					anyP, anyS, starP = px, sx, -1
				default:
					px++
					starP, starS = px, sx
				}
				continue
			} else if sx < len(s) && s[sx] == c {
				px++
				sx++
				continue
			}
		}
		switch {
		case starP >= 0 && starS < len(s) && s[starS] != '/':
			starS++
			px, sx = starP, starS
		case anyP >= 0 && anyS < len(s):
			if !anySegs {
				anyS++
			} else if i := strings.IndexByte(s[anyS:], '/'); i >= 0 {
				anyS += i + 1
			} else {
				return false
			}
			px, sx = anyP, anyS
			starP = -1
		default:
			return false
		}
	}
	return true
}

// matchesEverything reports whether a path glob matches every path.
func (g *glob) matchesEverything() bool { return g.pat == "**" }
