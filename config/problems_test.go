package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/auditgate/auditgate/gateway"
)

// env is a fixed environment for tests, so they can run in parallel
// without os.Setenv.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// problemLines parses src as t.yaml and returns its problems, one string
// each, failing the test if parsing did not return *Problems.
func problemLines(t *testing.T, src string, vars map[string]string) []string {
	t.Helper()
	_, err := parse("t.yaml", []byte(src), env(vars))
	if err == nil {
		return nil
	}
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("parse returned %T %v, want *Problems", err, err)
	}
	return strings.Split(ps.Error(), "\n")
}

func TestParseProblems(t *testing.T) {
	t.Parallel()
	const route = "routes:\n  - name: r\n    upstream: https://api.example.com\n"
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []string
	}{
		{
			name: "syntax error",
			src:  "listen: 127.0.0.1:8080\nadmin:\n  listen: [a,\n",
			want: []string{`t.yaml:3: invalid YAML: did not find expected node content`},
		},
		{
			name: "second document",
			src:  "listen: 127.0.0.1:8080\n---\nlisten: 127.0.0.1:8081\n",
			want: []string{`t.yaml:2: a second YAML document: keep the whole configuration in one document`},
		},
		{
			name: "top level not a mapping",
			src:  "- listen\n",
			want: []string{`t.yaml:1: expected a mapping of settings such as "listen: 127.0.0.1:8080" at the top level, got a list`},
		},
		{
			name: "admin tokens",
			src: route + "admin:\n  tokens:\n    - name: ops\n      token: short\n      roles: [operator, janitor]\n" +
				"    - name: ops\n      token: ${AG_TOKEN}\n      roles: [auditor]\n    - token: 0123456789abcdef0123\n",
			env: map[string]string{"AG_TOKEN": "0123456789abcdef0123456789"},
			want: []string{
				`t.yaml:7: admin.tokens[0].token: too short (5 characters): use at least 16 random characters, such as the output of: openssl rand -hex 32`,
				`t.yaml:8: admin.tokens[0].roles[1]: unknown role "janitor": use operator, auditor or admin`,
				`t.yaml:9: admin.tokens[1].name: duplicate token name "ops" (also admin.tokens[0])`,
				`t.yaml:12: admin.tokens[2].name: name is required: it identifies the token in logs`,
				`t.yaml:12: admin.tokens[2].roles: roles are required: list one or more of operator, auditor, admin`,
			},
		},
		{
			name: "admin token items",
			src:  route + "admin:\n  tokens:\n    - ops\n    - {name: ci, roles: [auditor]}\n    - " + strings.Repeat("x", 45) + "\n",
			want: []string{
				`t.yaml:6: admin.tokens[0]: expected a token mapping with name, token and roles, got "ops"`,
				`t.yaml:7: admin.tokens[1].token: token is required: set it from the environment, such as token: ${AUDITGATE_ADMIN_TOKEN}`,
				`t.yaml:8: admin.tokens[2]: expected a token mapping with name, token and roles, got "` + strings.Repeat("x", 40) + `..."`,
			},
		},
		{
			name: "keys that are not plain names",
			src:  "log:\n  ? [level]\n  : info\n? {listen: x}\n: 127.0.0.1:8080\n",
			want: []string{
				`t.yaml:2: log: keys must be plain names, got a list`,
				`t.yaml:4: keys must be plain names, got a mapping`,
			},
		},
		{
			// The walk passes maxPairs at key a399 of the last route,
			// reported at that key's line in the aliased mapping.
			name: "aliases expanding past the limit",
			src:  aliasExpansion(100, 1000),
			want: []string{`t.yaml:406: routes[99].extract.attributes: too many keys after expanding aliases and merges: simplify the file`},
		},
		{
			name: "invalid stream id",
			src:  "stream: Gateway 1\n",
			want: []string{`t.yaml:1: stream: invalid stream id "Gateway 1": use 1 to 64 of a-z, 0-9, '.', '_' and '-'`},
		},
		{
			name: "client certificates required without a CA",
			src:  route + "tls:\n  require_client_cert: true\n",
			want: []string{`t.yaml:5: tls.require_client_cert: requires tls.client_ca_file: name the CA that signs client certificates`},
		},
		{
			name: "credential header as identity header",
			src:  route + "identity:\n  headers: [X-User-Id, Cookie]\n",
			want: []string{`t.yaml:5: identity.headers[1]: "Cookie" carries credentials, which are never recorded: remove it (the key is recorded as caller.key_id)`},
		},
		{
			name: "unknown key listing the known ones",
			src:  "frobnicate: 1\n",
			want: []string{`t.yaml:1: frobnicate: unknown key "frobnicate": use one of listen, tls, admin, read_timeout, idle_timeout, shutdown_timeout, max_concurrency, forwarded, log, data_dir, stream, trail, identity, policies, routes`},
		},
		{
			name: "unknown key with suggestion",
			src:  "listn: 127.0.0.1:8080\n",
			want: []string{`t.yaml:1: listn: unknown key "listn"; did you mean "listen"?`},
		},
		{
			name: "unknown key without suggestion",
			src:  "upstream: https://x\n",
			want: []string{`t.yaml:1: upstream: unknown key "upstream": an upstream belongs to a route, as in routes: [{name: default, upstream: URL}]`},
		},
		{
			name: "unknown nested keys",
			src:  "log:\n  levl: info\nroutes:\n  - name: r\n    upstrem: https://x\n    timeouts: {dail: 1s}\n",
			want: []string{
				`t.yaml:2: log.levl: unknown key "levl"; did you mean "level"?`,
				`t.yaml:4: routes[0].upstream: missing: give the base URL of the model API, such as https://api.openai.com`,
				`t.yaml:5: routes[0].upstrem: unknown key "upstrem"; did you mean "upstream"?`,
				`t.yaml:6: routes[0].timeouts.dail: unknown key "dail"; did you mean "dial"?`,
			},
		},
		{
			name: "duplicate key",
			src:  "listen: 127.0.0.1:8080\nlog: {level: info, level: debug}\nlisten: 127.0.0.1:8081\n",
			want: []string{
				`t.yaml:2: log.level: duplicate key (first at line 2): remove one`,
				`t.yaml:3: listen: duplicate key (first at line 1): remove one`,
			},
		},
		{
			name: "wrong types",
			src: "listen: {host: x}\nadmin: [a]\nmax_concurrency: abc\nforwarded: {for: yes}\nroutes: all\n" +
				"read_timeout: [1s]\nshutdown_timeout: {s: 1}\ntls: {require_client_cert: [true]}\n",
			want: []string{
				`t.yaml:1: listen: expected a string, got a mapping`,
				`t.yaml:2: admin: expected a mapping of keys to values, got a list`,
				`t.yaml:3: max_concurrency: invalid number "abc": use a whole number such as 1024`,
				`t.yaml:4: forwarded.for: invalid boolean "yes": use true or false`,
				`t.yaml:5: routes: expected a list, got "all"`,
				`t.yaml:6: read_timeout: expected a duration, got a list`,
				`t.yaml:7: shutdown_timeout: expected a duration, got a mapping`,
				`t.yaml:8: tls.require_client_cert: expected true or false, got a list`,
			},
		},
		{
			name: "wrong types in a route",
			src: route + "    protocol: {a: b}\n    max_conns: [1]\n    max_request_body: [1MiB]\n    profile: [a]\n" +
				"    extract: {model: [a], attributes: [a]}\n",
			want: []string{
				`t.yaml:4: routes[0].protocol: expected a protocol name, got a mapping`,
				`t.yaml:5: routes[0].max_conns: expected a whole number, got a list`,
				`t.yaml:6: routes[0].max_request_body: expected a size, got a list`,
				`t.yaml:7: routes[0].profile: expected a profile name, got a list`,
				`t.yaml:8: routes[0].extract.model: expected a gjson path, got a list`,
				`t.yaml:8: routes[0].extract.attributes: expected a mapping of attribute names to gjson paths, got a list`,
			},
		},
		{
			name: "route item not a mapping",
			src:  "routes:\n  - openai\n  - name: r\n    upstream: https://api.example.com\n",
			want: []string{`t.yaml:2: routes[0]: expected a route mapping with name and upstream, got "openai"`},
		},
		{
			name: "route missing required keys",
			src:  "routes:\n  - match: {path_prefix: /a/}\n",
			want: []string{
				`t.yaml:2: routes[0].name: missing: name the route with lower-case letters, digits, - and _, such as openai`,
				`t.yaml:2: routes[0].upstream: missing: give the base URL of the model API, such as https://api.openai.com`,
			},
		},
		{
			name: "invalid route and policy names",
			src:  "routes:\n  - name: Open AI\n    upstream: https://api.example.com\n    policy: Strict!\n",
			want: []string{
				`t.yaml:2: routes[0].name: invalid name "Open AI": use lower-case letters, digits, - and _`,
				`t.yaml:4: routes[0].policy: invalid policy name "Strict!": use lower-case letters, digits, - and _`,
			},
		},
		{
			name: "duplicate route names",
			src: "routes:\n  - name: r\n    match: {path_prefix: /a/}\n    upstream: https://a.example.com\n" +
				"  - name: r\n    upstream: https://b.example.com\n",
			want: []string{`t.yaml:5: routes[1].name: duplicate route name "r" (also routes[0]): give each route its own name`},
		},
		{
			name: "invalid upstream URLs",
			src: "routes:\n" +
				"  - {name: a, match: {path_prefix: /a/}, upstream: 'ftp://x.example.com'}\n" +
				"  - {name: b, match: {path_prefix: /b/}, upstream: 'https:///v1'}\n" +
				"  - {name: c, match: {path_prefix: /c/}, upstream: 'https://x.example.com/v1?key=k'}\n" +
				"  - {name: d, match: {path_prefix: /d/}, upstream: 'https://x.example.com/#top'}\n" +
				"  - {name: e, match: {path_prefix: /e/}, upstream: 'https://x.example.com:99999'}\n" +
				"  - {name: f, match: {path_prefix: /f/}, upstream: api.example.com}\n" +
				"  - {name: g, match: {path_prefix: /g/}, upstream: 'http://x.example.com', tls: {server_name: x}}\n" +
				"  - {name: h, match: {path_prefix: /h/}, upstream: 'https://x.example.com/%zz'}\n",
			want: []string{
				`t.yaml:2: routes[0].upstream: invalid upstream URL "ftp://x.example.com": the scheme must be http or https, as in https://api.openai.com`,
				`t.yaml:3: routes[1].upstream: invalid upstream URL "https:///v1": missing host: write it as https://HOST[:PORT][/base/path]`,
				`t.yaml:4: routes[2].upstream: invalid upstream URL "https://x.example.com/v1?key=k": remove the query ?key=k: a base URL carries only scheme, host, port and path`,
				`t.yaml:5: routes[3].upstream: invalid upstream URL "https://x.example.com/#top": remove the fragment #top: a base URL carries only scheme, host, port and path`,
				`t.yaml:6: routes[4].upstream: invalid upstream URL "https://x.example.com:99999": invalid port "99999": use a number from 1 to 65535`,
				`t.yaml:7: routes[5].upstream: invalid upstream URL "api.example.com": the scheme must be http or https, as in https://api.openai.com`,
				`t.yaml:8: routes[6].tls: set for an http upstream, where it has no effect: use https or remove tls`,
				`t.yaml:9: routes[7].upstream: invalid upstream URL "https://x.example.com/%zz": use a URL such as https://api.openai.com`,
			},
		},
		{
			name: "match and prefixes",
			src: "routes:\n  - name: r\n    match: {host: 'https://api.example.com', path_prefix: v1/}\n" +
				"    upstream: https://api.example.com\n    strip_prefix: openai\n",
			want: []string{
				`t.yaml:3: routes[0].match.host: invalid host "https://api.example.com": use a host name such as api.example.com or *.example.com, optionally with :port`,
				`t.yaml:3: routes[0].match.path_prefix: "v1/" does not start with /: write it as /v1/`,
				`t.yaml:5: routes[0].strip_prefix: "openai" does not start with /: write it as /openai`,
			},
		},
		{
			name: "prefixes not in normal form",
			src:  "routes:\n  - name: r\n    match: {path_prefix: /v1/../admin/}\n    upstream: https://api.example.com\n    strip_prefix: /v1%2F\n",
			want: []string{
				`t.yaml:3: routes[0].match.path_prefix: "/v1/../admin/" never matches: ` + gateway.NotNormal,
				`t.yaml:5: routes[0].strip_prefix: "/v1%2F" is never removed: ` + gateway.NotNormal,
			},
		},
		{
			name: "listener tls both or neither and missing files",
			src:  "tls:\n  cert_file: testdata/cert.pem\n" + route + "  - name: s\n    match: {path_prefix: /s/}\n    upstream: https://s.example.com\n    tls: {ca_file: testdata/nope.pem}\n",
			want: []string{
				`t.yaml:1: tls: set both cert_file and key_file, or neither`,
				`t.yaml:6: routes[1]: unreachable: routes[0] "r" matches every request first`,
				`t.yaml:9: routes[1].tls.ca_file: file "testdata/nope.pem" not found: give the path of PEM CA certificates (relative paths start at the working directory)`,
			},
		},
		{
			name: "listener tls files not found",
			src:  "tls: {cert_file: testdata/missing-cert.pem, key_file: testdata/missing-key.pem}\n",
			want: []string{
				`t.yaml:1: tls.cert_file: file "testdata/missing-cert.pem" not found: give the path of the PEM certificate chain (relative paths start at the working directory)`,
				`t.yaml:1: tls.key_file: file "testdata/missing-key.pem" not found: give the path of the PEM private key (relative paths start at the working directory)`,
			},
		},
		{
			name: "listener tls files unreadable",
			src:  "tls: {cert_file: testdata/cert.pem/x, key_file: testdata/key.pem, client_ca_file: testdata/nope.pem}\n",
			want: []string{
				`t.yaml:1: tls.cert_file: cannot read "testdata/cert.pem/x": stat testdata/cert.pem/x: not a directory`,
				`t.yaml:1: tls.client_ca_file: file "testdata/nope.pem" not found: give the path of PEM CA certificates for client certificates (relative paths start at the working directory)`,
			},
		},
		{
			name: "listen addresses",
			src:  "listen: localhost\nadmin: {listen: '127.0.0.1:70000'}\n",
			want: []string{
				`t.yaml:1: listen: invalid address "localhost": use host:port such as 127.0.0.1:8080`,
				`t.yaml:2: admin.listen: invalid port "70000" in "127.0.0.1:70000": use a number from 0 to 65535`,
			},
		},
		{
			name: "admin on the proxy address",
			src:  "listen: 127.0.0.1:9090\n",
			want: []string{`t.yaml:1: listen: same address as admin.listen: give the proxy its own port`},
		},
		{
			name: "admin on the proxy address, both set",
			src:  "listen: 127.0.0.1:9091\nadmin: {listen: 127.0.0.1:9091}\n",
			want: []string{`t.yaml:2: admin.listen: same address as listen: give the admin API its own port`},
		},
		{
			name: "empty admin listen and data dir",
			src:  "admin: {listen: ''}\ndata_dir: ''\n",
			want: []string{
				`t.yaml:1: admin.listen: empty: give a host:port such as 127.0.0.1:9090`,
				`t.yaml:2: data_dir: empty: give the directory for the spool, keys and local store`,
			},
		},
		{
			name: "durations",
			src: "read_timeout: 2\nidle_timeout: -1m\nshutdown_timeout: 0\n" + route +
				"    timeouts: {dial: 10x, response_header: -5s, idle: forever}\n    max_idle_conn_duration: 0s\n",
			want: []string{
				`t.yaml:1: read_timeout: invalid duration "2": use a Go duration such as 10s or 2m, or unlimited`,
				`t.yaml:2: idle_timeout: negative duration "-1m": use a positive duration such as 10s`,
				`t.yaml:3: shutdown_timeout: zero duration "0": use a positive duration such as 10s, or remove the key for the default`,
				`t.yaml:7: routes[0].timeouts.dial: invalid duration "10x": use a Go duration such as 10s or 2m`,
				`t.yaml:7: routes[0].timeouts.response_header: negative duration "-5s": use a positive duration such as 10s, or unlimited`,
				`t.yaml:7: routes[0].timeouts.idle: invalid duration "forever": use a Go duration such as 10s or 2m, or unlimited`,
				`t.yaml:8: routes[0].max_idle_conn_duration: zero duration "0s": use a positive duration such as 10s, or remove the key for the default`,
			},
		},
		{
			name: "sizes and counts",
			src: route + "    max_request_body: 64XB\n    max_capture: 0\n    max_conns: 0\n" +
				"  - name: s\n    upstream: https://api.example.com\n    max_request_body: 0\n    max_capture: unlimited\n" +
				"    max_conns: -3\n  - name: u\n    upstream: https://api.example.com\n    max_request_body: 99999999999GiB\n",
			want: []string{
				`t.yaml:4: routes[0].max_request_body: invalid size "64XB": use bytes or a whole number with B, KB, MB, GB, KiB, MiB or GiB, such as 64MiB, or unlimited`,
				`t.yaml:5: routes[0].max_capture: zero size: use none to keep no body, or remove the key for the default`,
				`t.yaml:6: routes[0].max_conns: 0 is too small: use 1 or more, or remove the key for the default`,
				`t.yaml:7: routes[1]: unreachable: routes[0] "r" matches every request first`,
				`t.yaml:9: routes[1].max_request_body: zero size: use a positive size, or unlimited, or remove the key for the default`,
				`t.yaml:10: routes[1].max_capture: invalid size "unlimited": use bytes or a whole number with B, KB, MB, GB, KiB, MiB or GiB, such as 64MiB, or none`,
				`t.yaml:11: routes[1].max_conns: -3 is too small: use 1 or more, or remove the key for the default`,
				`t.yaml:12: routes[2]: unreachable: routes[0] "r" matches every request first`,
				`t.yaml:14: routes[2].max_request_body: size "99999999999GiB" is too large: use at most 9223372036854775807 bytes`,
			},
		},
		{
			name: "enumerations",
			src:  "log: {level: verbose, format: text}\n" + route + "    protocol: gemini\n",
			want: []string{
				`t.yaml:1: log.level: unknown level "verbose": use debug, info, warn or error`,
				`t.yaml:1: log.format: unknown format "text": use json or console`,
				`t.yaml:5: routes[0].protocol: unknown protocol "gemini": use openai, anthropic, plain or auto`,
			},
		},
		{
			name: "unreachable routes",
			src: "routes:\n" +
				"  - {name: v1, match: {path_prefix: /v1}, upstream: 'https://a.example.com'}\n" +
				"  - {name: chat, match: {path_prefix: /v1/chat}, upstream: 'https://b.example.com'}\n" +
				"  - {name: beta, match: {path_prefix: /v1beta}, upstream: 'https://b.example.com'}\n" +
				"  - {name: wild, match: {host: '*.example.com'}, upstream: 'https://c.example.com'}\n" +
				"  - {name: sub, match: {host: a.example.com, path_prefix: /x/}, upstream: 'https://c.example.com'}\n" +
				"  - {name: all, upstream: 'https://d.example.com'}\n" +
				"  - {name: last, match: {host: other.org}, upstream: 'https://e.example.com'}\n",
			want: []string{
				`t.yaml:3: routes[1]: unreachable: routes[0] "v1" matches all of this route's requests first: put the narrower route first`,
				`t.yaml:6: routes[4]: unreachable: routes[3] "wild" matches all of this route's requests first: put the narrower route first`,
				`t.yaml:8: routes[6]: unreachable: routes[5] "all" matches every request first`,
			},
		},
		{
			name: "environment variables",
			src:  "listen: ${LISTEN}\ndata_dir: ${1BAD}\nlog: {level: '${LEVEL'}\n",
			want: []string{
				`t.yaml:1: listen: environment variable LISTEN is not set: set it or give a default as ${LISTEN:-default}`,
				`t.yaml:2: data_dir: invalid variable name "1BAD" in ${1BAD}: use letters, digits and _, not starting with a digit`,
				`t.yaml:3: log.level: unterminated ${ in "${LEVEL": close it with } or write $$ for a literal $`,
			},
		},
		{
			name: "merge of a scalar",
			src:  "admin:\n  <<: x\n",
			want: []string{`t.yaml:2: admin.<<: << merges a mapping or a list of mappings, got "x"`},
		},
		{
			name: "every problem at once",
			src: "listen: nope\nread_timeout: soon\nroutes:\n  - name: A\n    upstream: ftp://x\n" +
				"  - name: ok\n    upstream: https://api.example.com\n    colour: blue\n",
			want: []string{
				`t.yaml:1: listen: invalid address "nope": use host:port such as 127.0.0.1:8080`,
				`t.yaml:2: read_timeout: invalid duration "soon": use a Go duration such as 10s or 2m, or unlimited`,
				`t.yaml:4: routes[0].name: invalid name "A": use lower-case letters, digits, - and _`,
				`t.yaml:5: routes[0].upstream: invalid upstream URL "ftp://x": the scheme must be http or https, as in https://api.openai.com`,
				`t.yaml:6: routes[1]: unreachable: routes[0] "A" matches every request first`,
				`t.yaml:8: routes[1].colour: unknown key "colour": use one of name, match, upstream, strip_prefix, preserve_host, protocol, policy, profile, provider, model, extract, timeouts, max_request_body, max_capture, max_conns, max_idle_conn_duration, tls`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := problemLines(t, tt.src, tt.env)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// aliasExpansion returns a file of as many routes as routes, whose
// extract.attributes are one mapping of attrs keys, written in the first
// route and aliased by the others: a short file whose walk visits
// routes*(attrs+6)+1 keys.
func aliasExpansion(routes, attrs int) string {
	var b strings.Builder
	b.WriteString("routes:\n  - name: r0\n    match: {path_prefix: /0/}\n    upstream: https://x.example.com\n    extract:\n      attributes: &attrs\n")
	for i := range attrs {
		fmt.Fprintf(&b, "        a%d: request.a\n", i)
	}
	for i := 1; i < routes; i++ {
		fmt.Fprintf(&b, "  - {name: r%d, match: {path_prefix: /%d/}, upstream: 'https://x.example.com', extract: {attributes: *attrs}}\n", i, i)
	}
	return b.String()
}

func TestProblemString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "a.yaml", Line: 3, Key: "listen", Msg: "bad"}, "a.yaml:3: listen: bad"},
		{Problem{File: "a.yaml", Line: 3, Msg: "invalid YAML: x"}, "a.yaml:3: invalid YAML: x"},
		{Problem{Line: 3, Key: "listen", Msg: "bad"}, "line 3: listen: bad"},
		{Problem{File: "a.yaml", Key: "listen", Msg: "bad"}, "listen: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
