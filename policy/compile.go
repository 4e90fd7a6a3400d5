package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a policy, found by Compile.
type Problem struct {
	// Policy is the policy's name.
	Policy string
	// Rule is the rule's index in the policy, or -1 for the policy itself;
	// Name is the rule's name, if it has one.
	Rule int
	Name string
	// Field is the rule's setting, named as in the configuration file, such
	// as "level", "match.paths[1]" or "redact.detectors[0]"; "" for the
	// rule as a whole.
	Field string
	// Value is the field's offending value as text (a level by its name),
	// "" for problems of the rule or policy as a whole.
	Value string
	// Msg says what is wrong and what to do about it.
	Msg string
}

// String formats the problem as `policy "P" rule N "NAME": FIELD: message`.
func (p Problem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %q", p.Policy)
	if p.Rule >= 0 {
		fmt.Fprintf(&b, " rule %d", p.Rule)
		if p.Name != "" {
			fmt.Fprintf(&b, " %q", p.Name)
		}
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// CompileError is every problem Compile found, ordered by policy name and
// rule index.
type CompileError struct {
	Problems []Problem
}

// Error lists the problems one per line.
func (e *CompileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Compile checks and compiles policies, which map policy names to their
// ordered rules. It reports every problem at once as *CompileError.
func Compile(policies map[string][]Rule) (*Set, error) {
	c := &compiler{}
	s := &Set{policies: make(map[string]*compiled, len(policies))}
	names := make([]string, 0, len(policies))
	for name := range policies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s.policies[name] = c.compilePolicy(name, policies[name])
	}
	if len(c.probs) > 0 {
		return nil, &CompileError{Problems: c.probs}
	}
	return s, nil
}

type compiler struct {
	probs []Problem
	// where locates the problems of the rule being compiled.
	where Problem
}

func (c *compiler) problem(field, value, format string, args ...any) {
	p := c.where
	p.Field, p.Value, p.Msg = field, value, fmt.Sprintf(format, args...)
	c.probs = append(c.probs, p)
}

func (c *compiler) compilePolicy(name string, rules []Rule) *compiled {
	c.where = Problem{Policy: name, Rule: -1}
	if name == "" {
		c.problem("", "", "empty policy name: name it, such as %s", DefaultPolicy)
	}
	p := &compiled{rules: make([]rule, len(rules))}
	p.fallback = defaultDecision
	p.fallback.Policy = name
	p.fallback.Detectors = Detectors()
	seen := map[string]int{}
	everything := -1
	for i := range rules {
		r := &rules[i]
		c.where.Rule, c.where.Name = i, r.Name
		if r.Name != "" {
			if first, dup := seen[r.Name]; dup {
				c.problem("name", r.Name, "duplicate rule name %q (also rule %d): give each rule its own name", r.Name, first)
			} else {
				seen[r.Name] = i
			}
		}
		if everything >= 0 {
			c.problem("", "", "unreachable: rule %d%s matches every exchange first: put the narrower rule first", everything, quoted(rules[everything].Name))
		}
		p.rules[i] = c.compileRule(name, i, r)
		if everything < 0 && matchesEverything(&p.rules[i]) {
			everything = i
		}
		p.needsCaller = p.needsCaller || len(r.Match.Callers) > 0
		p.needsModel = p.needsModel || len(r.Match.Models) > 0
		p.hasStrict = p.hasStrict || p.rules[i].d.Durability == DurabilityStrict
	}
	return p
}

func quoted(name string) string {
	if name == "" {
		return ""
	}
	return " " + strconv.Quote(name)
}

// compileRule compiles one rule, reporting its problems.
func (c *compiler) compileRule(policy string, i int, r *Rule) rule {
	m := &r.Match
	out := rule{
		routes:  c.names("match.routes", m.Routes, "a route name"),
		methods: c.methods(m.Methods),
		paths:   c.globs("match.paths", m.Paths, compilePathGlob),
		callers: c.globs("match.callers", m.Callers, compileGlob),
		models:  c.globs("match.models", m.Models, compileGlob),
	}
	d := &out.d
	d.Policy = policy
	d.Rule = r.Name
	if d.Rule == "" {
		d.Rule = "#" + strconv.Itoa(i)
	}
	d.Level = r.Level
	if !r.Level.valid() {
		c.problem("level", r.Level.String(), "unknown level %d: use none, metadata, request or full", int(r.Level))
	}
	switch {
	case r.MaxBody < 0:
		c.problem("max_body", strconv.Itoa(r.MaxBody), "negative size %d: use a positive size, or 0 for the default of 1MiB", r.MaxBody)
	case r.MaxBody == 0:
		d.MaxBody = DefaultMaxBody
	default:
		d.MaxBody = r.MaxBody
	}
	for j, p := range r.Redact.Paths {
		if err := checkJSONPath(p); err != nil {
			c.problem(fmt.Sprintf("redact.paths[%d]", j), p, "%v", err)
		}
	}
	d.RedactPaths = slices.Clone(r.Redact.Paths)
	if r.Redact.Detectors == nil {
		d.Detectors = Detectors()
	} else {
		d.Detectors = make([]string, 0, len(r.Redact.Detectors))
		for j, name := range r.Redact.Detectors {
			if !knownDetector(name) {
				c.problem(fmt.Sprintf("redact.detectors[%d]", j), name, "unknown detector %q: use %s", name, orList(detectors))
				continue
			}
			if !slices.Contains(d.Detectors, name) {
				d.Detectors = append(d.Detectors, name)
			}
		}
	}
	switch r.Durability {
	case "":
		d.Durability = DurabilityAsync
	case DurabilityAsync, DurabilityStrict:
		d.Durability = r.Durability
	default:
		c.problem("durability", string(r.Durability), "unknown durability %q: use async or strict", r.Durability)
	}
	switch r.OnTrailFailure {
	case "":
		d.OnTrailFailure = FailClosed
	case FailClosed, FailOpen:
		d.OnTrailFailure = r.OnTrailFailure
	default:
		c.problem("on_trail_failure", string(r.OnTrailFailure), "unknown failure mode %q: use closed or open", r.OnTrailFailure)
	}
	return out
}

func (c *compiler) names(field string, list []string, what string) []string {
	for j, s := range list {
		if s == "" {
			c.problem(fmt.Sprintf("%s[%d]", field, j), s, "empty: give %s, or remove the entry", what)
		}
	}
	return slices.Clone(list)
}

func (c *compiler) methods(list []string) []string {
	out := make([]string, 0, len(list))
	for j, m := range list {
		if !isToken(m) {
			c.problem(fmt.Sprintf("match.methods[%d]", j), m, "invalid method %q: use an HTTP method such as GET or POST", m)
			continue
		}
		out = append(out, strings.ToUpper(m))
	}
	return out
}

func (c *compiler) globs(field string, list []string, compile func(string) (glob, error)) []glob {
	out := make([]glob, 0, len(list))
	for j, s := range list {
		g, err := compile(s)
		if err != nil {
			c.problem(fmt.Sprintf("%s[%d]", field, j), s, "%v", err)
			continue
		}
		out = append(out, g)
	}
	return out
}

// matchesEverything reports whether r matches every exchange, which makes
// every later rule of its policy unreachable.
func matchesEverything(r *rule) bool {
	if len(r.routes) > 0 || len(r.methods) > 0 || len(r.callers) > 0 || len(r.models) > 0 {
		return false
	}
	if len(r.paths) == 0 {
		return true
	}
	for i := range r.paths {
		if r.paths[i].matchesEverything() {
			return true
		}
	}
	return false
}

// isToken reports whether s is an HTTP token (RFC 9110), as methods are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// orList writes "a, b or c".
func orList(list []string) string {
	if len(list) < 2 {
		return strings.Join(list, "")
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}

// checkJSONPath checks a redaction path in capture's syntax: dotted object
// keys, ["quoted keys"], [n] array indexes and [*] for every element, as
// in messages[*].content or metadata["user id"].
func checkJSONPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty JSON path: remove it, or write one such as messages[*].content")
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid JSON path %q: %s; write paths such as messages[*].content or metadata.user_id", p, fmt.Sprintf(format, args...))
	}
	for i := 0; i < len(p); {
		switch c := p[i]; {
		case c == '[' && i+1 < len(p) && p[i+1] == '"':
			k := i + 2
			for k < len(p) && p[k] != '"' {
				if p[k] == '\\' {
					k++
				}
				k++
			}
			if k+1 >= len(p) || p[k+1] != ']' {
				return bad(`unterminated ["key"] at offset %d`, i)
			}
			var key string
			if json.Unmarshal([]byte(p[i+1:k+1]), &key) != nil {
				return bad("invalid quoted key at offset %d", i)
			}
			i = k + 2
		case c == '[':
			k := strings.IndexByte(p[i:], ']')
			if k < 0 {
				return bad("[ without ] at offset %d", i)
			}
			if in := p[i+1 : i+k]; in != "*" {
				if n, err := strconv.Atoi(in); err != nil || n < 0 || in != strconv.Itoa(n) {
					return bad("index %q at offset %d: an index is a number or *, as in [0] or [*]", in, i)
				}
			}
			i += k + 1
		case c == '.' && i > 0, c != '.' && i == 0:
			if c == '.' {
				i++
			}
			k := i
			for k < len(p) && !pathDelim(p[k]) {
				k++
			}
			switch p[i:k] {
			case "":
				return bad("empty key at offset %d", i)
			case "*":
				return bad("bare * at offset %d: write [*]", i)
			}
			i = k
		default:
			return bad("unexpected %q at offset %d", c, i)
		}
	}
	return nil
}

func pathDelim(c byte) bool {
	return c == '.' || c == '[' || c == ']' || c == '"' || c <= ' '
}
