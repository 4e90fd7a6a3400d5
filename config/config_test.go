package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/gateway"
	"github.com/auditgate/auditgate/policy"
	"github.com/auditgate/auditgate/worm"
)

func TestExampleFile(t *testing.T) {
	t.Parallel()
	c, err := Load("../auditgate.example.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	g := c.Gateway
	checks := []struct {
		key       string
		got, want any
	}{
		{"listen", g.Listen, "127.0.0.1:8080"},
		{"admin.listen", c.Admin.Listen, "127.0.0.1:9090"},
		{"read_timeout", g.ReadTimeout, 2 * time.Minute},
		{"max_concurrency", g.MaxConcurrency, 262144},
		{"forwarded", g.Forwarded, gateway.DefaultForwarded},
		{"log", c.Log, Log{Level: "info", Format: "json"}},
		{"data_dir", c.DataDir, "./auditgate-data"},
		{"len(routes)", len(g.Routes), 2},
		{"routes[0]", g.Routes[0], gateway.Route{
			Name: "openai", PathPrefix: "/openai/", Upstream: "https://api.openai.com",
			StripPrefix: "/openai", Protocol: gateway.ProtocolOpenAI, Policy: "default",
			Capture:     capture.RouteOptions{Profile: capture.ProfileOpenAI},
			DialTimeout: 10 * time.Second, ResponseHeaderTimeout: 10 * time.Minute,
			IdleTimeout: 5 * time.Minute, MaxRequestBody: 64 << 20, MaxCapture: 1 << 20,
			MaxConns: 1024, MaxIdleConnDuration: 4 * time.Second,
		}},
		{"routes[1]", g.Routes[1], gateway.Route{
			Name: "anthropic", PathPrefix: "/anthropic/", Upstream: "https://api.anthropic.com",
			StripPrefix: "/anthropic", Protocol: gateway.ProtocolAnthropic, ResponseHeaderTimeout: -1,
		}},
		{"identity", c.Identity, IdentityConfig{IdentityOptions: capture.IdentityOptions{
			APIKeyHeaders: []string{"Authorization", "x-api-key", "api-key"}, CacheSize: 10000}}},
		{"policies", c.Policies, map[string][]policy.Rule{"default": {
			{Name: "health", Match: policy.Match{Methods: []string{"GET"}, Paths: []string{"/health*", "/v1/models"}}, Level: policy.LevelNone},
			{Name: "everything", Level: policy.LevelFull, MaxBody: 1 << 20, Redact: policy.Redact{
				Detectors: []string{"email", "phone", "card", "ssn", "iban", "ip", "secret"}, Paths: []string{"metadata.user_id"}},
				Durability: policy.DurabilityAsync, OnTrailFailure: policy.FailClosed},
		}}},
	}
	for _, ch := range checks {
		t.Run(ch.key, func(t *testing.T) {
			if !reflect.DeepEqual(ch.got, ch.want) {
				t.Errorf("%s = %+v, want %+v", ch.key, ch.got, ch.want)
			}
		})
	}
	set, err := c.Policy()
	if err != nil {
		t.Fatalf("Policy: %v", err)
	}
	if d := set.Decide("default", policy.Query{Method: "GET", Path: "/healthz"}); d.Rule != "health" || d.Level != policy.LevelNone {
		t.Errorf("GET /healthz decided %+v, want rule health at level none", d)
	}
}

// uncommentExample uncomments the example's commented-out settings at the
// second level (routes, tokens, identity keys, policies), so the examples
// offered to operators stay valid too, and points the files they name at
// files that exist.
func uncommentExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../auditgate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`^[a-z_]+:( |\n)`)
	var b strings.Builder
	inTrail := false // the commented top-level trail section
	for line := range strings.Lines(string(data)) {
		switch {
		case line == "# trail:\n":
			line, inTrail = "trail:\n", true
		case inTrail && strings.HasPrefix(line, "#   "):
			line = line[2:]
		default:
			inTrail = false
			if rest, ok := strings.CutPrefix(line, "  # "); ok && (strings.HasPrefix(rest, "- ") || strings.HasPrefix(rest, "  ") || key.MatchString(rest)) {
				line = "  " + rest
			}
		}
		b.WriteString(line)
	}
	return strings.NewReplacer("/etc/auditgate/jwt.pem", "testdata/cert.pem", "/etc/auditgate/jwks.json", "testdata/ca.pem").Replace(b.String())
}

func TestExampleCommented(t *testing.T) {
	t.Parallel()
	src := uncommentExample(t)
	c, err := parse("example", []byte(src), env(map[string]string{
		"AUDITGATE_OPS_TOKEN": "0123456789abcdef01", "AUDITGATE_AUDITOR_TOKEN": "fedcba9876543210fe",
		"AUDITGATE_HMAC_SECRET": strings.Repeat("0123456789abcdef", 4)}))
	if err != nil {
		t.Fatalf("parse uncommented example: %v\n%s", err, src)
	}
	var names []string
	for _, r := range c.Gateway.Routes {
		names = append(names, r.Name)
	}
	if want := []string{"openai", "anthropic", "local-llm", "loans", "scorer", "eu", "us"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("routes %v, want %v", names, want)
	}
	us := c.Gateway.Routes[6]
	if us.DialTimeout != 5*time.Second || us.MaxConns != 256 || us.Upstream != "https://us.internal.example.com" {
		t.Errorf("merged route us = %+v, want eu's timeouts and max_conns with its own upstream", us)
	}
	if ts := c.Admin.Tokens; len(ts) != 2 || ts[0].Name != "ops-team" || ts[0].Token != "0123456789abcdef01" || !reflect.DeepEqual(ts[1].Roles, []string{"auditor"}) {
		t.Errorf("admin tokens = %+v", ts)
	}
	if got := c.Gateway.Routes[2].Upstream; got != "http://127.0.0.1:8000" {
		t.Errorf("local-llm upstream = %q, want the ${LOCAL_LLM_URL:-...} default", got)
	}
	wantLoans := capture.RouteOptions{
		Profile: capture.ProfileKServe, Provider: "tf-serving", VersionHeaders: []string{"X-Model-Version"},
		Labels:  capture.Labels{Model: "loan-approval", Version: "2026-11-01", Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		Extract: capture.Extract{Attributes: map[string]string{"applicant_group": "request.instances.0.group"}},
	}
	if got := c.Gateway.Routes[3].Capture; !reflect.DeepEqual(got, wantLoans) {
		t.Errorf("loans capture = %+v, want %+v", got, wantLoans)
	}
	wantScorer := capture.Extract{
		Model: "request.model", Version: "response.model_version", Input: "request.instances", Output: "response.predictions",
		Decision: "response.predictions.0.label", Rationale: "response.explanations",
		Attributes: map[string]string{"applicant_group": "request.instances.0.group"},
	}
	if got := c.Gateway.Routes[4].Capture; got.Profile != capture.ProfileGeneric || !reflect.DeepEqual(got.Extract, wantScorer) {
		t.Errorf("scorer capture = %+v, want generic with %+v", got, wantScorer)
	}
	wantID := IdentityConfig{
		IdentityOptions: capture.IdentityOptions{
			Secret:         []byte(strings.Repeat("0123456789abcdef", 4)),
			APIKeyHeaders:  []string{"Authorization", "x-api-key", "api-key"},
			Headers:        []string{"X-User-Id", "OpenAI-Organization"},
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")},
			JWT: capture.JWTOptions{KeyFiles: []string{"testdata/cert.pem", "testdata/ca.pem"}, Issuers: []string{"https://auth.example.com/"},
				Audiences: []string{"loan-api"}, Claims: []string{"tenant", "groups"}},
			CacheSize: 10000,
		},
		SecretFile: "/etc/auditgate/hmac.key",
	}
	wantTrail := Trail{Store: "file:///var/lib/auditgate/trail", Prefix: "prod", Spool: "/var/lib/auditgate/spool", Key: "/etc/auditgate/signing.key",
		Appender: worm.AppenderOptions{MaxRecords: 100000, MaxBytes: 32 << 20, MaxAge: time.Minute, Heartbeat: time.Minute,
			CommitInterval: 50 * time.Millisecond, QueueRecords: 16384, QueueBytes: 64 << 20, MaxRecord: 16 << 20, MaxSpool: 10 << 30}}
	if !reflect.DeepEqual(c.Trail, wantTrail) {
		t.Errorf("trail = %+v, want %+v", c.Trail, wantTrail)
	}
	if !reflect.DeepEqual(c.Identity, wantID) {
		t.Errorf("identity = %+v, want %+v", c.Identity, wantID)
	}
	set, err := c.Policy()
	if err != nil {
		t.Fatalf("Policy: %v", err)
	}
	tests := []struct {
		q    policy.Query
		rule string
	}{
		{policy.Query{Route: "loans", Method: "post", Path: "/v1/models/loans:predict", KeyID: "k_3f9a0011"}, "partners"},
		{policy.Query{Route: "loans", Method: "POST", Path: "/v1/models/loans/versions/3:predict", Subject: "svc-partner-x"}, "partners"},
		{policy.Query{Route: "loans", Method: "POST", Path: "/v1/models/loans:predict", Model: "loans-shadow-2"}, "shadow"},
		{policy.Query{Route: "loans", Method: "POST", Path: "/v1/models/loans:predict", Subject: "svc-other"}, "rest"},
	}
	for _, tt := range tests {
		if d := set.Decide("loans", tt.q); d.Rule != tt.rule {
			t.Errorf("loans policy decided %q for %+v, want %q", d.Rule, tt.q, tt.rule)
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "# only a comment\n", "routes:\n"} {
		t.Run(src, func(t *testing.T) {
			t.Parallel()
			c, err := parse("t.yaml", []byte(src), env(nil))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			want := Default()
			want.File = "t.yaml"
			c.src, want.src = nil, nil
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got %+v, want %+v", c, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v, want an fs.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "read config: ") {
		t.Errorf("error %q does not start with read config:", err)
	}
}

func TestApplyUpstream(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := c.ApplyUpstream("http://127.0.0.1:8000/v1"); err != nil {
		t.Fatalf("ApplyUpstream: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := []gateway.Route{{Name: "default", Upstream: "http://127.0.0.1:8000/v1"}}
	if !reflect.DeepEqual(c.Gateway.Routes, want) {
		t.Errorf("routes %+v, want %+v", c.Gateway.Routes, want)
	}

	f, err := parse("t.yaml", []byte("routes:\n  - {name: a, upstream: 'https://a.example.com'}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = f.ApplyUpstream("https://b.example.com")
	if want := "--upstream conflicts with routes in t.yaml: remove one"; err == nil || err.Error() != want {
		t.Errorf("ApplyUpstream over file routes = %v, want %q", err, want)
	}

	c = Default()
	c.Gateway.Routes = []gateway.Route{{Name: "a", Upstream: "https://a.example.com"}}
	err = c.ApplyUpstream("https://b.example.com")
	if want := "--upstream conflicts with the configured routes: remove one"; err == nil || err.Error() != want {
		t.Errorf("ApplyUpstream over routes set in code = %v, want %q", err, want)
	}
}

// TestValidate covers configurations assembled in code and files changed
// after parsing, where problems have no line (or keep it only while the
// value is still the file's).
func TestValidate(t *testing.T) {
	t.Parallel()
	const file = "listen: 127.0.0.1:8080\nroutes:\n  - {name: a, upstream: 'https://a.example.com'}\n"
	tests := []struct {
		name  string
		build func(t *testing.T) *Config
		want  string
	}{
		{
			name:  "no routes",
			build: func(*testing.T) *Config { return Default() },
			want:  "routes: no routes: add routes to the configuration file or pass --upstream URL",
		},
		{
			name: "bad --upstream",
			build: func(t *testing.T) *Config {
				c := Default()
				if err := c.ApplyUpstream("localhost:8000"); err != nil {
					t.Fatal(err)
				}
				return c
			},
			want: `routes[0].upstream: invalid upstream URL "localhost:8000": the scheme must be http or https, as in https://api.openai.com (set by --upstream)`,
		},
		{
			name: "flag replaces a file value",
			build: func(t *testing.T) *Config {
				c := mustParse(t, file, nil)
				c.Gateway.Listen = "8080"
				return c
			},
			want: `listen: invalid address "8080": use host:port such as 127.0.0.1:8080`,
		},
		{
			name: "file value keeps its line",
			build: func(t *testing.T) *Config {
				c := mustParse(t, file, nil)
				c.Admin.Listen = "127.0.0.1:8080"
				return c
			},
			want: `t.yaml:1: listen: same address as admin.listen: give the proxy its own port`,
		},
		{
			name: "two port-0 addresses do not collide",
			build: func(t *testing.T) *Config {
				c := mustParse(t, file, nil)
				c.Gateway.Listen, c.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
				return c
			},
			want: ``,
		},
		{
			name: "zero values and code-only values",
			build: func(*testing.T) *Config {
				return &Config{
					Admin: Admin{Listen: ":9090"},
					Gateway: gateway.Options{
						IdleTimeout: -time.Second,
						Routes: []gateway.Route{
							{Name: "a", Upstream: "https://a.example.com", Protocol: "auto", MaxConns: -1, DialTimeout: -time.Second},
							{Upstream: "https://b.example.com"},
						},
					},
				}
			},
			want: strings.Join([]string{
				`idle_timeout: negative duration -1s: use a positive duration, or 0 for the default`,
				`data_dir: empty: give the directory for the spool, keys and local store`,
				`routes[0].protocol: unknown protocol "auto": use openai, anthropic, plain or auto`,
				`routes[0].timeouts.dial: negative duration -1s: use a positive duration, or 0 for the default`,
				`routes[0].max_conns: negative: use 1 or more, or 0 for the default`,
				`routes[1].name: missing: name the route with lower-case letters, digits, - and _, such as openai`,
				`routes[1]: unreachable: routes[0] "a" matches every request first`,
			}, "\n"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.build(t).Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want no problem", err)
				}
				return
			}
			var ps *Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Validate = %v, want *Problems", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Validate:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func mustParse(t *testing.T, src string, vars map[string]string) *Config {
	t.Helper()
	c, err := parse("t.yaml", []byte(src), env(vars))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

func TestValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		got  func(*Config) any
		want any
	}{
		{"forwarded key alone", "forwarded: {host: false}\n",
			func(c *Config) any { return c.Gateway.Forwarded },
			gateway.Forwarded{For: true, Proto: true}},
		{"read_timeout 0 is unlimited", "read_timeout: 0\n",
			func(c *Config) any { return c.Gateway.ReadTimeout }, time.Duration(-1)},
		{"read_timeout unlimited", "read_timeout: unlimited\n",
			func(c *Config) any { return c.Gateway.ReadTimeout }, time.Duration(-1)},
		{"listener tls", "tls: {cert_file: testdata/cert.pem, key_file: testdata/key.pem}\n",
			func(c *Config) any { return *c.Gateway.TLS },
			gateway.ListenerTLS{CertFile: "testdata/cert.pem", KeyFile: "testdata/key.pem"}},
		{"empty tls is plain http", "tls:\n",
			func(c *Config) any { return c.Gateway.TLS == nil }, true},
		{"route settings",
			"routes:\n  - name: r\n    match: {host: '*.example.com', path_prefix: /v1}\n    upstream: https://x.example.com/base\n" +
				"    preserve_host: TRUE\n    protocol: auto\n    max_request_body: unlimited\n    max_capture: none\n" +
				"    timeouts: {idle: 0}\n    tls: {ca_file: testdata/ca.pem, server_name: x, insecure_skip_verify: true}\n",
			func(c *Config) any { return c.Gateway.Routes[0] },
			gateway.Route{Name: "r", Host: "*.example.com", PathPrefix: "/v1", Upstream: "https://x.example.com/base",
				PreserveHost: true, MaxRequestBody: -1, MaxCapture: -1, IdleTimeout: -1,
				UpstreamTLS: gateway.UpstreamTLS{CAFile: "testdata/ca.pem", ServerName: "x", InsecureSkipVerify: true}}},
		{"sizes", "routes:\n  - {name: r, upstream: 'http://x', max_request_body: 10 MB, max_capture: 2KiB}\n",
			func(c *Config) any {
				return []int64{c.Gateway.Routes[0].MaxRequestBody, int64(c.Gateway.Routes[0].MaxCapture)}
			},
			[]int64{10_000_000, 2048}},
		{"nested merge keys: own keys win, then the first merged",
			"policies: {pa: []}\nroutes:\n  - &a {name: a, match: {path_prefix: /a/}, upstream: 'http://a', max_conns: 1, policy: pa}\n" +
				"  - &b {<<: *a, name: b, match: {path_prefix: /b/}, max_conns: 2}\n" +
				"  - {<<: [*b, *a], name: c, match: {path_prefix: /c/}}\n",
			func(c *Config) any { return c.Gateway.Routes[2] },
			gateway.Route{Name: "c", PathPrefix: "/c/", Upstream: "http://a", MaxConns: 2, Policy: "pa"}},
		{"merge keys", "routes:\n  - &a {name: a, match: {path_prefix: /a/}, upstream: 'http://x', max_conns: 7}\n  - {<<: *a, name: b, match: {path_prefix: /b/}}\n",
			func(c *Config) any { return c.Gateway.Routes[1] },
			gateway.Route{Name: "b", PathPrefix: "/b/", Upstream: "http://x", MaxConns: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, tt.src, nil)
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
