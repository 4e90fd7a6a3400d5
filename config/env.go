package config

import (
	"fmt"
	"os"
	"strings"
)

// overrides are the settings the environment may set over the file, for
// deployments (containers, systemd units) that change an address or a
// directory without shipping another file.
var overrides = []struct {
	env, key string
	field    func(*Config) *string
}{
	{"AUDITGATE_LISTEN", "listen", func(c *Config) *string { return &c.Gateway.Listen }},
	{"AUDITGATE_ADMIN_LISTEN", "admin.listen", func(c *Config) *string { return &c.Admin.Listen }},
	{"AUDITGATE_DATA_DIR", "data_dir", func(c *Config) *string { return &c.DataDir }},
	{"AUDITGATE_LOG_LEVEL", "log.level", func(c *Config) *string { return &c.Log.Level }},
	{"AUDITGATE_STORE", "trail.store", func(c *Config) *string { return &c.Trail.Store }},
	{"AUDITGATE_SPOOL", "trail.spool", func(c *Config) *string { return &c.Trail.Spool }},
	{"AUDITGATE_KEY", "trail.key", func(c *Config) *string { return &c.Trail.Key }},
}

// ApplyEnv applies the AUDITGATE_LISTEN, AUDITGATE_ADMIN_LISTEN,
// AUDITGATE_DATA_DIR, AUDITGATE_LOG_LEVEL, AUDITGATE_STORE,
// AUDITGATE_SPOOL and AUDITGATE_KEY overrides. Parse and Load
// already do; call it on Default when there is no file. An empty variable
// counts as unset, so an exported-but-blank variable cannot erase a setting.
func (c *Config) ApplyEnv() {
	c.applyEnv(os.LookupEnv)
}

func (c *Config) applyEnv(lookup func(string) (string, bool)) {
	for _, o := range overrides {
		v, ok := lookup(o.env)
		if !ok || v == "" {
			continue
		}
		*o.field(c) = v
		c.source().set(o.key, pos{val: v, note: "set by " + o.env})
	}
}

// expand replaces ${NAME} and ${NAME:-default} in s with the environment's
// values and $$ with a single $. Any other $ is kept as is, so values such
// as passwords with a lone $ need no escaping. ":-" uses the default when
// the variable is unset or empty, as in the shell.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q: close it with } or write $$ for a literal $", s[i:])
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid variable name %q in ${%s}: use letters, digits and _, not starting with a digit", name, ref)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set: set it or give a default as ${%s:-default}", name, name)
		}
		b.WriteString(v)
	}
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// pos records where a value came from.
type pos struct {
	line int
	// val is the value as decoded, printed with fmt.Sprint. A problem takes
	// the line only while the value is unchanged, so a value later replaced
	// by a flag is not blamed on the file.
	val string
	// note names a source other than the file, such as an environment
	// variable, appended to the problem's message.
	note string
}

// source maps dotted keys to their origins.
type source struct {
	pos map[string]pos
	// bad holds keys whose value could not be decoded; checks of their
	// meaning are skipped, since the decode problem already says what to fix.
	bad map[string]bool
}

func newSource() *source {
	return &source{pos: map[string]pos{}, bad: map[string]bool{}}
}

func (s *source) set(key string, p pos) { s.pos[key] = p }

// at returns the line and note for key. A nil val skips the comparison with
// the decoded value, for keys (mappings, list items) without one.
func (s *source) at(key string, val any) (int, string) {
	p, ok := s.pos[key]
	if !ok || val != nil && fmt.Sprint(val) != p.val {
		return 0, ""
	}
	return p.line, p.note
}

// isBad reports whether key or one of its parents failed to decode.
func (s *source) isBad(key string) bool {
	for {
		if s.bad[key] {
			return true
		}
		i := strings.LastIndexAny(key, ".[")
		if i <= 0 {
			return false
		}
		key = key[:i]
	}
}
