package config

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"HOST": "10.0.0.1", "EMPTY": "", "PORT": "8080"}
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${HOST}:${PORT}", want: "10.0.0.1:8080"},
		{in: "${MISSING:-127.0.0.1}:80", want: "127.0.0.1:80"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${EMPTY}", want: ""},
		{in: "${MISSING:-}", want: ""},
		{in: "${HOST:-unused}", want: "10.0.0.1"},
		{in: "$${HOST}", want: "${HOST}"},
		{in: "pa$word$", want: "pa$word$"},
		{in: "a$$b", want: "a$b"},
		{in: "${MISSING}", err: "environment variable MISSING is not set: set it or give a default as ${MISSING:-default}"},
		{in: "x${HOST", err: `unterminated ${ in "${HOST": close it with } or write $$ for a literal $`},
		{in: "${}", err: `invalid variable name "" in ${}: use letters, digits and _, not starting with a digit`},
		{in: "${A-B}", err: `invalid variable name "A-B" in ${A-B}: use letters, digits and _, not starting with a digit`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := expand(tt.in, env(vars))
			switch {
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Errorf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
			case tt.err == "" && err != nil:
				t.Errorf("expand(%q) error = %v", tt.in, err)
			case tt.err == "" && got != tt.want:
				t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEnvInFile(t *testing.T) {
	t.Parallel()
	src := "listen: ${HOST:-127.0.0.1}:${PORT}\nroutes:\n  - name: r\n    upstream: ${UPSTREAM}\n    max_conns: ${CONNS:-16}\n" +
		"    timeouts: {dial: '${DIAL}'}\n"
	c := mustParse(t, src, map[string]string{"PORT": "8181", "UPSTREAM": "https://llm.example.com", "DIAL": "3s"})
	r := c.Gateway.Routes[0]
	if c.Gateway.Listen != "127.0.0.1:8181" || r.Upstream != "https://llm.example.com" || r.MaxConns != 16 || r.DialTimeout.String() != "3s" {
		t.Errorf("got listen %q, route %+v", c.Gateway.Listen, r)
	}
	// An expanded value is checked like a written one, at the line of the
	// reference.
	got := problemLines(t, src, map[string]string{"PORT": "x", "UPSTREAM": "https://llm.example.com", "DIAL": "3"})
	want := []string{
		`t.yaml:1: listen: invalid port "x" in "127.0.0.1:x": use a number from 0 to 65535`,
		`t.yaml:6: routes[0].timeouts.dial: invalid duration "3": use a Go duration such as 10s or 2m`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	src := "listen: 127.0.0.1:8080\nadmin: {listen: 127.0.0.1:9090}\ndata_dir: /var/lib/a\nlog: {level: info}\n"
	fromFile := [4]string{"127.0.0.1:8080", "127.0.0.1:9090", "/var/lib/a", "info"}
	tests := []struct {
		name string
		vars map[string]string
		want [4]string // listen, admin.listen, data_dir, log.level
	}{
		{name: "none set", want: fromFile},
		{
			name: "all set",
			vars: map[string]string{
				"AUDITGATE_LISTEN": ":80", "AUDITGATE_ADMIN_LISTEN": ":81",
				"AUDITGATE_DATA_DIR": "/data", "AUDITGATE_LOG_LEVEL": "debug",
			},
			want: [4]string{":80", ":81", "/data", "debug"},
		},
		{name: "empty counts as unset", vars: map[string]string{"AUDITGATE_DATA_DIR": ""}, want: fromFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, src, tt.vars)
			if got := [4]string{c.Gateway.Listen, c.Admin.Listen, c.DataDir, c.Log.Level}; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("invalid override names its variable", func(t *testing.T) {
		t.Parallel()
		got := problemLines(t, src, map[string]string{"AUDITGATE_LISTEN": "80", "AUDITGATE_LOG_LEVEL": "loud"})
		want := []string{
			`listen: invalid address "80": use host:port such as 127.0.0.1:8080 (set by AUDITGATE_LISTEN)`,
			`log.level: unknown level "loud": use debug, info, warn or error (set by AUDITGATE_LOG_LEVEL)`,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
