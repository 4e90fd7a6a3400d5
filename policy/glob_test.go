package policy

import (
	"regexp"
	"strings"
	"testing"
)

func TestPathGlob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		glob string
		yes  []string
		no   []string
	}{
		{"/v1/models", []string{"/v1/models"}, []string{"/v1/models/", "/v1/model", "/v1/modelsx", ""}},
		{"/v1/models*", []string{"/v1/models", "/v1/models-list", "/v1/modelsx"}, []string{"/v1/models/gpt-4o", "/v1/model"}},
		{"/health*", []string{"/health", "/healthz"}, []string{"/health/live", "/v1/health"}},
		{"/v1/*", []string{"/v1/", "/v1/chat"}, []string{"/v1", "/v1/chat/completions"}},
		{"/v1/**", []string{"/v1", "/v1/", "/v1/chat", "/v1/chat/completions"}, []string{"/v1beta", "/v2/chat"}},
		{"/**/completions", []string{"/v1/chat/completions", "/completions", "/a/b/c/completions"}, []string{"/v1/completions/x", "/v1/chatcompletions"}},
		{"/v1/*/completions", []string{"/v1/chat/completions", "/v1//completions"}, []string{"/v1/completions", "/v1/a/b/completions"}},
		{"/v1/*/*", []string{"/v1/a/b", "/v1/a/"}, []string{"/v1/a", "/v1/a/b/c"}},
		{"/*/*/x*y", []string{"/a/b/xy", "/a/b/x-y", "/a/b/xyy"}, []string{"/a/b/x/y", "/a/xy"}},
		{"/a*b*c", []string{"/abc", "/aXbYc", "/abbbc", "/abcbc"}, []string{"/ab", "/a/b/c", "/acb"}},
		{"/**/v*/**", []string{"/v1", "/x/v2", "/x/v2/y/z", "/v/"}, []string{"/x/y", "/x/av1"}},
		{"**", []string{"", "/", "/a/b/c", "*"}, nil},
		{"**/models", []string{"/v1/models", "x/models"}, []string{"/v1/models/x"}},
		{"/", []string{"/"}, []string{"", "/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.glob, func(t *testing.T) {
			t.Parallel()
			g, err := compilePathGlob(tt.glob)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, s := range tt.yes {
				if !g.match(s) {
					t.Errorf("%q does not match %q", tt.glob, s)
				}
			}
			for _, s := range tt.no {
				if g.match(s) {
					t.Errorf("%q matches %q", tt.glob, s)
				}
			}
		})
	}
}

func TestNameGlob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		glob string
		yes  []string
		no   []string
	}{
		{"gpt-4o*", []string{"gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06"}, []string{"gpt-4", "GPT-4o"}},
		{"*llama*", []string{"meta-llama/Llama-3.1-8B", "llama"}, []string{"Llama"}},
		{"k_3f9a*", []string{"k_3f9a1c2e"}, []string{"k_3f9b1c2e"}},
		{"*", []string{"", "a/b/c"}, nil},
		{"svc-*-prod", []string{"svc-loans-prod", "svc-a/b-prod"}, []string{"svc-loans-dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.glob, func(t *testing.T) {
			t.Parallel()
			g, err := compileGlob(tt.glob)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, s := range tt.yes {
				if !g.match(s) {
					t.Errorf("%q does not match %q", tt.glob, s)
				}
			}
			for _, s := range tt.no {
				if g.match(s) {
					t.Errorf("%q matches %q", tt.glob, s)
				}
			}
		})
	}
}

func TestGlobErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		glob  string
		paths bool
		want  string
	}{
		{"", true, "empty glob: remove it, or use ** for every path"},
		{"v1/*", true, `invalid glob "v1/*": a path glob starts with / or **, such as /v1/**`},
		{"*", true, `invalid glob "*": a path glob starts with / or **, such as /v1/**`},
		{"/v1/***", true, `invalid glob "/v1/***": *** is not a wildcard: use * within a segment or ** across segments`},
		{"/v1/models**", true, `invalid glob "/v1/models**": ** must be a whole segment, as in /v1/** or /**/models; use * within a segment`},
		{"/**x", true, `invalid glob "/**x": ** must be a whole segment, as in /v1/** or /**/models; use * within a segment`},
		{"/**/a**", true, `invalid glob "/**/a**": ** must be a whole segment, as in /v1/** or /**/models; use * within a segment`},
		{"", false, "empty glob: remove it, or use * for any value"},
		{"gpt-**", false, `invalid glob "gpt-**": ** is only for paths: use *, which matches any characters here`},
	}
	for _, tt := range tests {
		t.Run(tt.glob, func(t *testing.T) {
			t.Parallel()
			compile := compileGlob
			if tt.paths {
				compile = compilePathGlob
			}
			_, err := compile(tt.glob)
			if err == nil || err.Error() != tt.want {
				t.Errorf("compile(%q) = %v, want %q", tt.glob, err, tt.want)
			}
		})
	}
}

// globRegexp is a slow, obviously right reading of a valid glob, to check
// the matcher against.
func globRegexp(pat string, paths bool) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^`)
	for i := 0; i < len(pat); i++ {
		switch rest := pat[i:]; {
		case !paths && rest[0] == '*':
			b.WriteString(`.*`)
		case rest == "/**" && i > 0:
			b.WriteString(`(/.*)?`)
			i += 2
		case strings.HasPrefix(rest, "**/"):
			b.WriteString(`(.*/)?`)
			i += 2
		case rest == "**":
			b.WriteString(`.*`)
			i++
		case rest[0] == '*':
			b.WriteString(`[^/]*`)
		default:
			b.WriteString(regexp.QuoteMeta(rest[:1]))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// FuzzGlob checks the backtracking matcher against regular expressions,
// with a small alphabet so that matches are frequent.
func FuzzGlob(f *testing.F) {
	for _, seed := range [][2]string{
		{"/a*b*c", "/aXbYc"}, {"/**/a*/b", "/x/y/ab/b"}, {"/*/**", "/a"}, {"a*a*a", "aaaa/aa"},
		{"**/a/*", "a/a/a/a"}, {"/*a*", "/ba/a"}, {"/**/a/**/b", "/a/b"}, {"/a/**", "/a"},
	} {
		f.Add(seed[0], seed[1], true)
		f.Add(seed[0], seed[1], false)
	}
	f.Fuzz(func(t *testing.T, pat, s string, paths bool) {
		if len(pat) > 12 || len(s) > 24 {
			return
		}
		for _, r := range pat + s {
			if !strings.ContainsRune("ab/*", r) {
				return
			}
		}
		compile := compileGlob
		if paths {
			compile = compilePathGlob
		}
		g, err := compile(pat)
		if err != nil {
			return
		}
		if got, want := g.match(s), globRegexp(pat, paths).MatchString(s); got != want {
			t.Fatalf("glob %q (paths %v) matching %q = %v, want %v", pat, paths, s, got, want)
		}
	})
}

func TestWildcardLongInput(t *testing.T) {
	t.Parallel()
	// Quadratic at worst: a long path against many stars stays fast.
	s := "/" + strings.Repeat("a", 8000)
	g, err := compilePathGlob("/*a*a*a*a*a*a*a*a*b")
	if err != nil {
		t.Fatal(err)
	}
	if g.match(s) {
		t.Error("matched a path without b")
	}
	g, err = compilePathGlob("/**/**/**/**/b")
	if err != nil {
		t.Fatal(err)
	}
	if g.match(strings.Repeat("/a", 4000)) {
		t.Error("matched a path without b")
	}
}
