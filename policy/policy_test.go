package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// loans is a policy exercising every match dimension.
var loans = []Rule{
	{Name: "health", Match: Match{Methods: []string{"get"}, Paths: []string{"/health*", "/v1/models"}}, Level: LevelNone},
	{Name: "batch", Match: Match{Routes: []string{"batch", "nightly"}}, Level: LevelMetadata, Durability: DurabilityAsync, OnTrailFailure: FailOpen},
	{Name: "scoring", Match: Match{Paths: []string{"/v1/models/**/predict"}}, Level: LevelFull, Durability: DurabilityStrict, MaxBody: 4096},
	{Name: "partner", Match: Match{Callers: []string{"k_3f9a*", "svc-partner-*"}}, Level: LevelRequest,
		Redact: Redact{Paths: []string{"messages[*].content"}, Detectors: []string{}}},
	{Name: "mini", Match: Match{Models: []string{"gpt-4o-mini*", "*embedding*"}}, Level: LevelMetadata,
		Redact: Redact{Detectors: []string{DetectorEmail, DetectorCard, DetectorEmail}}},
	{Match: Match{Methods: []string{"DELETE"}, Paths: []string{"/v1/files/*"}}, Level: LevelMetadata},
}

func mustCompile(t testing.TB, policies map[string][]Rule) *Set {
	t.Helper()
	s, err := Compile(policies)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func TestDecide(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, map[string][]Rule{
		"loans":   loans,
		"default": {{Name: "all", Level: LevelMetadata}},
		"empty":   nil,
	})
	tests := []struct {
		name   string
		policy string
		q      Query
		rule   string // "" for the fallback
	}{
		{"method and path", "loans", Query{Method: "GET", Path: "/healthz"}, "health"},
		{"method case-insensitive", "loans", Query{Method: "get", Path: "/v1/models"}, "health"},
		{"query string ignored", "loans", Query{Method: "GET", Path: "/health?verbose=1"}, "health"},
		{"path needs the method too", "loans", Query{Method: "POST", Path: "/healthz"}, ""},
		{"method needs the path too", "loans", Query{Method: "GET", Path: "/v1/models/x"}, ""},
		{"route", "loans", Query{Route: "nightly", Method: "GET", Path: "/v1/chat"}, "batch"},
		{"route names are exact", "loans", Query{Route: "Batch", Path: "/v1/chat"}, ""},
		{"first match wins", "loans", Query{Route: "batch", Method: "GET", Path: "/health"}, "health"},
		{"** across segments", "loans", Query{Path: "/v1/models/loans/versions/3/predict"}, "scoring"},
		{"** as no segment", "loans", Query{Path: "/v1/models/predict"}, "scoring"},
		{"** needs the suffix", "loans", Query{Path: "/v1/models/loans/explain"}, ""},
		{"caller by key id", "loans", Query{KeyID: "k_3f9a1c2e", Path: "/x"}, "partner"},
		{"caller by subject", "loans", Query{KeyID: "k_0000", Subject: "svc-partner-acme", Path: "/x"}, "partner"},
		{"caller not matching", "loans", Query{KeyID: "k_1111", Subject: "svc-internal", Path: "/x"}, ""},
		{"model glob", "loans", Query{Model: "gpt-4o-mini-2024-07-18", Path: "/v1/chat/completions"}, "mini"},
		{"model glob in the middle", "loans", Query{Model: "text-embedding-3-small"}, "mini"},
		{"model not matching", "loans", Query{Model: "gpt-4o"}, ""},
		{"unnamed rule", "loans", Query{Method: "delete", Path: "/v1/files/file-abc"}, "#5"},
		{"* stays within a segment", "loans", Query{Method: "DELETE", Path: "/v1/files/a/b"}, ""},
		{"nothing matches", "loans", Query{Route: "other", Method: "POST", Path: "/v1/chat/completions", Model: "claude"}, ""},
		{"empty policy name is default", "", Query{Path: "/x"}, "all"},
		{"policy without rules", "empty", Query{Path: "/x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := s.Decide(tt.policy, tt.q)
			if d.Rule != tt.rule {
				t.Fatalf("Decide(%q, %+v) chose rule %q, want %q", tt.policy, tt.q, d.Rule, tt.rule)
			}
			want := tt.policy
			if want == "" {
				want = DefaultPolicy
			}
			if d.Policy != want {
				t.Errorf("decision policy %q, want %q", d.Policy, want)
			}
		})
	}
}

func TestAnonymousCallerAndUnknownModel(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, map[string][]Rule{"p": {
		{Name: "anyone", Match: Match{Callers: []string{"*"}}, Level: LevelFull},
		{Name: "any-model", Match: Match{Models: []string{"*"}}, Level: LevelFull},
	}})
	if d := s.Decide("p", Query{}); d.Rule != "" {
		t.Errorf("an anonymous exchange naming no model matched %q", d.Rule)
	}
	if d := s.Decide("p", Query{Subject: "alice"}); d.Rule != "anyone" {
		t.Errorf("an identified caller matched %q, want anyone", d.Rule)
	}
	if d := s.Decide("p", Query{Model: "m"}); d.Rule != "any-model" {
		t.Errorf("a named model matched %q, want any-model", d.Rule)
	}
}

func TestDecisionValues(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, map[string][]Rule{"loans": loans})
	tests := []struct {
		q    Query
		want Decision
	}{
		{Query{Method: "GET", Path: "/health"}, Decision{Policy: "loans", Rule: "health", Level: LevelNone, MaxBody: DefaultMaxBody,
			Detectors: Detectors(), Durability: DurabilityAsync, OnTrailFailure: FailClosed}},
		{Query{Route: "batch"}, Decision{Policy: "loans", Rule: "batch", Level: LevelMetadata, MaxBody: DefaultMaxBody,
			Detectors: Detectors(), Durability: DurabilityAsync, OnTrailFailure: FailOpen}},
		{Query{Path: "/v1/models/m/predict"}, Decision{Policy: "loans", Rule: "scoring", Level: LevelFull, MaxBody: 4096,
			Detectors: Detectors(), Durability: DurabilityStrict, OnTrailFailure: FailClosed}},
		{Query{KeyID: "k_3f9a"}, Decision{Policy: "loans", Rule: "partner", Level: LevelRequest, MaxBody: DefaultMaxBody,
			RedactPaths: []string{"messages[*].content"}, Detectors: []string{}, Durability: DurabilityAsync, OnTrailFailure: FailClosed}},
		{Query{Model: "gpt-4o-mini"}, Decision{Policy: "loans", Rule: "mini", Level: LevelMetadata, MaxBody: DefaultMaxBody,
			Detectors: []string{DetectorEmail, DetectorCard}, Durability: DurabilityAsync, OnTrailFailure: FailClosed}},
		{Query{}, Decision{Policy: "loans", Level: LevelFull, MaxBody: DefaultMaxBody,
			Detectors: Detectors(), Durability: DurabilityAsync, OnTrailFailure: FailClosed}},
	}
	for _, tt := range tests {
		t.Run(tt.want.Rule, func(t *testing.T) {
			t.Parallel()
			got := *s.Decide("loans", tt.q)
			if !reflect.DeepEqual(normalize(got), normalize(tt.want)) {
				t.Errorf("Decide(%+v) =\n%+v\nwant\n%+v", tt.q, got, tt.want)
			}
		})
	}
}

// normalize treats nil and empty redaction paths alike: both redact no
// path. Detectors keep the difference, since nil would mean all.
func normalize(d Decision) Decision {
	if len(d.RedactPaths) == 0 {
		d.RedactPaths = nil
	}
	return d
}

func TestDefault(t *testing.T) {
	t.Parallel()
	want := Decision{Level: LevelFull, MaxBody: 1 << 20, Detectors: []string{"email", "phone", "card", "ssn", "iban", "ip", "secret"},
		Durability: DurabilityAsync, OnTrailFailure: FailClosed}
	if got := Default(); !reflect.DeepEqual(*got, want) {
		t.Errorf("Default() = %+v, want %+v", *got, want)
	}
	Default().Detectors[0] = "changed"
	if Default().Detectors[0] != "email" {
		t.Error("changing a Default decision changed the next one")
	}
	var nilSet *Set
	s := mustCompile(t, map[string][]Rule{"p": {{Level: LevelNone}}})
	for name, d := range map[string]*Decision{
		"nil set":        nilSet.Decide("p", Query{}),
		"unknown policy": s.Decide("nope", Query{}),
		"no default":     s.Decide("", Query{}),
	} {
		if !reflect.DeepEqual(*d, want) {
			t.Errorf("%s: decision %+v, want the built-in default", name, *d)
		}
	}
	if !s.Has("p") || s.Has("nope") || s.Has("") || nilSet.Has("p") {
		t.Error("Has answers wrong")
	}
}

func TestNeeds(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, map[string][]Rule{
		"loans":   loans,
		"default": {{Match: Match{Models: []string{"gpt-*"}}}},
		"plain":   {{Match: Match{Paths: []string{"/v1/**"}}}, {Level: LevelFull, Durability: DurabilityStrict}},
	})
	tests := []struct {
		policy                string
		caller, model, strict bool
	}{
		{"loans", true, true, true},
		{"", false, true, false},
		{"plain", false, false, true},
		{"missing", false, false, false},
	}
	for _, tt := range tests {
		if got := s.NeedsCaller(tt.policy); got != tt.caller {
			t.Errorf("NeedsCaller(%q) = %v, want %v", tt.policy, got, tt.caller)
		}
		if got := s.NeedsModel(tt.policy); got != tt.model {
			t.Errorf("NeedsModel(%q) = %v, want %v", tt.policy, got, tt.model)
		}
		if got := s.HasStrict(tt.policy); got != tt.strict {
			t.Errorf("HasStrict(%q) = %v, want %v", tt.policy, got, tt.strict)
		}
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for _, l := range []Level{LevelNone, LevelMetadata, LevelRequest, LevelFull} {
		got, err := ParseLevel(l.String())
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, err)
		}
	}
	if _, err := ParseLevel("Full"); err == nil || err.Error() != `unknown level "Full": use none, metadata, request or full` {
		t.Errorf("ParseLevel(Full) error = %v", err)
	}
	if got := Level(9).String(); got != "Level(9)" {
		t.Errorf("Level(9).String() = %q", got)
	}
}

func TestCompileProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policies map[string][]Rule
		want     []string
	}{
		{
			name: "enumerations and sizes",
			policies: map[string][]Rule{"p": {
				{Name: "a", Level: Level(7), MaxBody: -1, Durability: "sync", OnTrailFailure: "ignore", Match: Match{Routes: []string{"r"}}},
			}},
			want: []string{
				`policy "p" rule 0 "a": level: unknown level 7: use none, metadata, request or full`,
				`policy "p" rule 0 "a": max_body: negative size -1: use a positive size, or 0 for the default of 1MiB`,
				`policy "p" rule 0 "a": durability: unknown durability "sync": use async or strict`,
				`policy "p" rule 0 "a": on_trail_failure: unknown failure mode "ignore": use closed or open`,
			},
		},
		{
			name: "globs and match lists",
			policies: map[string][]Rule{"p": {{Match: Match{
				Routes:  []string{"ok", ""},
				Paths:   []string{"/v1/**", "v1/chat"},
				Methods: []string{"GET", "GET POST"},
				Callers: []string{"k_**"},
				Models:  []string{""},
			}}}},
			want: []string{
				`policy "p" rule 0: match.routes[1]: empty: give a route name, or remove the entry`,
				`policy "p" rule 0: match.methods[1]: invalid method "GET POST": use an HTTP method such as GET or POST`,
				`policy "p" rule 0: match.paths[1]: invalid glob "v1/chat": a path glob starts with / or **, such as /v1/**`,
				`policy "p" rule 0: match.callers[0]: invalid glob "k_**": ** is only for paths: use *, which matches any characters here`,
				`policy "p" rule 0: match.models[0]: empty glob: remove it, or use * for any value`,
			},
		},
		{
			name: "redaction",
			policies: map[string][]Rule{"p": {{Name: "r", Match: Match{Routes: []string{"x"}}, Redact: Redact{
				Paths: []string{"messages[*].content", "", ".a", "a..b", "a[x]", "a[0", "a]", "a[0]b", "metadata.user_id",
					`metadata["user id"]`, `[*].x`, "a.*", "a[01]", `a["x`},
				Detectors: []string{"email", "passport"},
			}}}},
			want: []string{
				`policy "p" rule 0 "r": redact.paths[1]: empty JSON path: remove it, or write one such as messages[*].content`,
				`policy "p" rule 0 "r": redact.paths[2]: invalid JSON path ".a": unexpected '.' at offset 0; write paths such as messages[*].content or metadata.user_id`,
				`policy "p" rule 0 "r": redact.paths[3]: invalid JSON path "a..b": empty key at offset 2; write paths such as messages[*].content or metadata.user_id`,
				`policy "p" rule 0 "r": redact.paths[4]: invalid JSON path "a[x]": index "x" at offset 1: an index is a number or *, as in [0] or [*]; write paths such as messages[*].content or metadata.user_id`,
				`policy "p" rule 0 "r": redact.paths[5]: invalid JSON path "a[0": [ without ] at offset 1; write paths such as messages[*].content or metadata.user_id`,
				`policy "p" rule 0 "r": redact.paths[6]: invalid JSON path "a]": unexpected ']' at offset 1; write paths such as messages[*].content or metadata.user_id`,
				`policy "p" rule 0 "r": redact.paths[7]: invalid JSON path "a[0]b": unexpected 'b' at offset 4; write paths such as messages[*].content or metadata.user_id`,
				`policy "p" rule 0 "r": redact.paths[11]: invalid JSON path "a.*": bare * at offset 2: write [*]; write paths such as messages[*].content or metadata.user_id`,
				`policy "p" rule 0 "r": redact.paths[12]: invalid JSON path "a[01]": index "01" at offset 1: an index is a number or *, as in [0] or [*]; write paths such as messages[*].content or metadata.user_id`,
				`policy "p" rule 0 "r": redact.paths[13]: invalid JSON path "a[\"x": unterminated ["key"] at offset 1; write paths such as messages[*].content or metadata.user_id`,
				`policy "p" rule 0 "r": redact.detectors[1]: unknown detector "passport": use email, phone, card, ssn, iban, ip or secret`,
			},
		},
		{
			name: "names and reachability",
			policies: map[string][]Rule{
				"": nil,
				"b": {
					{Name: "x", Match: Match{Methods: []string{"GET"}}},
					{Name: "all", Match: Match{Paths: []string{"/a", "**"}}},
					{Name: "x"},
					{},
				},
				"a": {{Name: "catch"}, {Name: "late", Match: Match{Routes: []string{"r"}}}},
			},
			want: []string{
				`policy "": empty policy name: name it, such as default`,
				`policy "a" rule 1 "late": unreachable: rule 0 "catch" matches every exchange first: put the narrower rule first`,
				`policy "b" rule 2 "x": name: duplicate rule name "x" (also rule 0): give each rule its own name`,
				`policy "b" rule 2 "x": unreachable: rule 1 "all" matches every exchange first: put the narrower rule first`,
				`policy "b" rule 3: unreachable: rule 1 "all" matches every exchange first: put the narrower rule first`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Compile(tt.policies)
			var ce *CompileError
			if !errors.As(err, &ce) || s != nil {
				t.Fatalf("Compile = %v, %v; want *CompileError", s, err)
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestDecideAllocs(t *testing.T) {
	s := mustCompile(t, map[string][]Rule{"loans": loans})
	queries := []Query{
		{Method: "GET", Path: "/healthz?x=1"},
		{Path: "/v1/models/a/b/predict"},
		{KeyID: "k_1", Subject: "svc-partner-x"},
		{Model: "gpt-4o-mini"},
		{Route: "r", Method: "POST", Path: "/v1/chat/completions", KeyID: "k_2", Subject: "s", Model: "m"},
	}
	for _, q := range queries {
		if n := testing.AllocsPerRun(100, func() { _ = s.Decide("loans", q) }); n != 0 {
			t.Errorf("Decide(%+v) allocates %v times, want 0", q, n)
		}
	}
}

// BenchmarkDecide decides on a 10-rule policy for an exchange that matches
// only the fallback, the worst case: every rule is tried.
func BenchmarkDecide(b *testing.B) {
	rules := []Rule{
		{Name: "health", Match: Match{Methods: []string{"GET"}, Paths: []string{"/health*", "/v1/models"}}, Level: LevelNone},
		{Name: "batch", Match: Match{Routes: []string{"batch", "nightly"}}, Level: LevelMetadata},
		{Name: "scoring", Match: Match{Paths: []string{"/v1/models/**/predict"}}, Level: LevelFull, Durability: DurabilityStrict},
		{Name: "partner", Match: Match{Callers: []string{"k_3f9a*", "svc-partner-*"}}, Level: LevelRequest},
		{Name: "mini", Match: Match{Models: []string{"gpt-4o-mini*", "*embedding*"}}, Level: LevelMetadata},
		{Name: "files", Match: Match{Methods: []string{"DELETE"}, Paths: []string{"/v1/files/*"}}, Level: LevelMetadata},
		{Name: "anthropic", Match: Match{Routes: []string{"anthropic"}, Paths: []string{"/v1/messages"}}, Level: LevelFull},
		{Name: "audio", Match: Match{Paths: []string{"/v1/audio/**"}}, Level: LevelMetadata},
		{Name: "internal", Match: Match{Callers: []string{"svc-internal-*"}, Models: []string{"llama*"}}, Level: LevelRequest},
		{Name: "images", Match: Match{Paths: []string{"/v1/images/*"}, Methods: []string{"POST"}}, Level: LevelMetadata},
	}
	s := mustCompile(b, map[string][]Rule{"default": rules})
	q := Query{Route: "openai", Path: "/v1/chat/completions", Method: "POST", KeyID: "k_77aa01bc", Subject: "svc-loans", Model: "gpt-4o"}
	b.ReportAllocs()
	for b.Loop() {
		if d := s.Decide("", q); d.Rule != "" {
			b.Fatal(d.Rule)
		}
	}
}

func TestProblemFields(t *testing.T) {
	t.Parallel()
	_, err := Compile(map[string][]Rule{"p": {{Name: "ok", Match: Match{Routes: []string{"r"}}}, {Name: "bad", Level: LevelFull, Redact: Redact{Detectors: []string{"dob"}}}}})
	var ce *CompileError
	if !errors.As(err, &ce) || len(ce.Problems) != 1 {
		t.Fatalf("Compile = %v, want one problem", err)
	}
	want := Problem{Policy: "p", Rule: 1, Name: "bad", Field: "redact.detectors[0]", Value: "dob",
		Msg: `unknown detector "dob": use email, phone, card, ssn, iban, ip or secret`}
	if ce.Problems[0] != want {
		t.Errorf("problem %+v, want %+v", ce.Problems[0], want)
	}
}
