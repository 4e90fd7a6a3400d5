package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/gateway"
	"github.com/auditgate/auditgate/policy"
	"github.com/auditgate/auditgate/worm"
)

// TestSectionProblems pins the messages of identity, policies and the
// routes' capture settings.
func TestSectionProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "identity",
			src: "identity:\n  hmac_secret: short\n  api_key_headers: [\"Bad Header\", x-api-key]\n  headers: [X-User-Id, \"\"]\n" +
				"  trusted_proxies: [10.0.0.1/8, 10.0.0.0/33, not-an-ip, \"fe80::1%eth0\", \"\", \"::1\"]\n" +
				"  jwt:\n    keys: [testdata/nope.pem]\n    issuers: [\"\"]\n  cache_size: 0\n  colour: x\n",
			want: []string{
				`t.yaml:2: identity.hmac_secret: too short (5 characters): use at least 32 random characters, such as the output of: openssl rand -hex 32`,
				`t.yaml:3: identity.api_key_headers[0]: invalid header name "Bad Header": use letters, digits and -, such as X-User-Id`,
				`t.yaml:4: identity.headers[1]: empty: give a header name such as X-User-Id, or remove the entry`,
				`t.yaml:5: identity.trusted_proxies[0]: "10.0.0.1/8" has bits set past the /8: write the network as 10.0.0.0/8, or a single address without /`,
				`t.yaml:5: identity.trusted_proxies[1]: invalid network "10.0.0.0/33": use a CIDR such as 10.0.0.0/8 or an address such as 192.168.1.7`,
				`t.yaml:5: identity.trusted_proxies[2]: invalid address "not-an-ip": use a CIDR such as 10.0.0.0/8 or an address such as 192.168.1.7`,
				`t.yaml:5: identity.trusted_proxies[3]: invalid address "fe80::1%eth0": use a CIDR such as 10.0.0.0/8 or an address such as 192.168.1.7`,
				`t.yaml:5: identity.trusted_proxies[4]: empty: give a CIDR such as 10.0.0.0/8 or an address, or remove the entry`,
				`t.yaml:7: identity.jwt.keys[0]: file "testdata/nope.pem" not found: give the path of a PEM public key or a JWKS file (relative paths start at the working directory)`,
				`t.yaml:8: identity.jwt.issuers[0]: empty: give an issuer such as https://auth.example.com/, or remove the entry`,
				`t.yaml:9: identity.cache_size: 0 is too small: use 1 or more, or remove the key for the default`,
				`t.yaml:10: identity.colour: unknown key "colour": use one of hmac_secret, hmac_secret_file, api_key_headers, headers, trusted_proxies, jwt, cache_size`,
			},
		},
		{
			name: "trail",
			src:  "trail:\n  seal: {max_records: 0, max_age: 1x}\n  heartbeat: -1s\n  queue: {bytes: lots}\n  spoool: x\n",
			want: []string{
				`t.yaml:2: trail.seal.max_records: 0 is too small: use 1 or more, or remove the key for the default`,
				`t.yaml:2: trail.seal.max_age: invalid duration "1x": use a Go duration such as 10s or 2m`,
				`t.yaml:3: trail.heartbeat: negative duration "-1s": use a positive duration such as 10s`,
				`t.yaml:4: trail.queue.bytes: invalid size "lots": use bytes or a whole number with B, KB, MB, GB, KiB, MiB or GiB, such as 64MiB`,
				`t.yaml:5: trail.spoool: unknown key "spoool"; did you mean "spool"?`,
			},
		},
		{
			name: "empty jwt entries",
			src:  "identity:\n  jwt:\n    keys: ['', testdata/cert.pem]\n    audiences: [loan-api, '']\n    claims: ['']\n",
			want: []string{
				`t.yaml:3: identity.jwt.keys[0]: empty: give the path of a PEM public key or a JWKS file, or remove the entry`,
				`t.yaml:4: identity.jwt.audiences[1]: empty: give an audience such as loan-api, or remove the entry`,
				`t.yaml:5: identity.jwt.claims[0]: empty: give a claim name such as tenant, or remove the entry`,
			},
		},
		{
			name: "trail sizes of zero",
			src:  "trail:\n  seal: {max_bytes: 0}\n  queue: {bytes: 0}\n  max_spool: 0\n  max_record: 0\n",
			want: []string{
				`t.yaml:2: trail.seal.max_bytes: zero size: use a positive size such as 32MiB`,
				`t.yaml:3: trail.queue.bytes: zero size: use a positive size such as 64MiB`,
				`t.yaml:4: trail.max_spool: zero size: use a positive size such as 10GiB`,
				`t.yaml:5: trail.max_record: zero size: use a positive size such as 16MiB`,
			},
		},
		{
			name: "jwt checks without keys",
			src:  "identity: {jwt: {issuers: [a], audiences: [b], claim: [c]}}\n",
			want: []string{
				`t.yaml:1: identity.jwt.claim: unknown key "claim"; did you mean "claims"?`,
				`t.yaml:1: identity.jwt.issuers: no effect without identity.jwt.keys: only verified tokens are checked; add the keys that sign them`,
				`t.yaml:1: identity.jwt.audiences: no effect without identity.jwt.keys: only verified tokens are checked; add the keys that sign them`,
			},
		},
		{
			name: "secret from an unset variable",
			src:  "identity: {hmac_secret: '${AUDITGATE_HMAC_SECRET}'}\n",
			want: []string{`t.yaml:1: identity.hmac_secret: environment variable AUDITGATE_HMAC_SECRET is not set: set it or give a default as ${AUDITGATE_HMAC_SECRET:-default}`},
		},
		{
			name: "policies",
			src: "policies:\n  Loans: []\n  p:\n    - name: a\n      match: {paths: [v1], methods: [GET], callers: [\"k_**\"], models: [\"\"], routes: [nope], hosts: [x]}\n" +
				"      level: everything\n      max_body: 0\n      redact: {detectors: [passport], paths: [\".x\"]}\n      durability: sync\n      on_trail_failure: ignore\n" +
				"    - name: a\n      level: full\n    - name: b\n      level: full\n    - notamapping\n    - {name: c}\n  q: {a: b}\n  p: []\n" +
				"routes:\n  - {name: r, match: {path_prefix: /r/}, upstream: 'https://x.example.com', policy: missing}\n" +
				"  - {name: s, match: {path_prefix: /s/}, upstream: 'https://x.example.com', policy: p}\n",
			want: []string{
				`t.yaml:2: policies.Loans: invalid policy name "Loans": use lower-case letters, digits, - and _`,
				`t.yaml:5: policies.p[0].match.hosts: unknown key "hosts": use one of routes, paths, methods, callers, models`,
				`t.yaml:5: policies.p[0].match.paths[0]: invalid glob "v1": a path glob starts with / or **, such as /v1/**`,
				`t.yaml:5: policies.p[0].match.callers[0]: invalid glob "k_**": ** is only for paths: use *, which matches any characters here`,
				`t.yaml:5: policies.p[0].match.models[0]: empty glob: remove it, or use * for any value`,
				`t.yaml:5: policies.p[0].match.routes[0]: unknown route "nope": name one of the routes (r, s)`,
				`t.yaml:6: policies.p[0].level: unknown level "everything": use none, metadata, request or full`,
				`t.yaml:7: policies.p[0].max_body: zero size: use a positive size, or remove the key for the default of 1MiB`,
				`t.yaml:8: policies.p[0].redact.paths[0]: invalid JSON path ".x": unexpected '.' at offset 0; write paths such as messages[*].content or metadata.user_id`,
				`t.yaml:8: policies.p[0].redact.detectors[0]: unknown detector "passport": use email, phone, card, ssn, iban, ip or secret`,
				`t.yaml:9: policies.p[0].durability: unknown durability "sync": use async or strict`,
				`t.yaml:10: policies.p[0].on_trail_failure: unknown failure mode "ignore": use closed or open`,
				`t.yaml:11: policies.p[1].name: duplicate rule name "a" (also rule 0): give each rule its own name`,
				`t.yaml:13: policies.p[2]: unreachable: rule 1 "a" matches every exchange first: put the narrower rule first`,
				`t.yaml:15: policies.p[3]: expected a rule mapping with name, match and level, got "notamapping"`,
				`t.yaml:16: policies.p[4].level: missing: give the level: none, metadata, request or full`,
				`t.yaml:16: policies.p[4]: unreachable: rule 1 "a" matches every exchange first: put the narrower rule first`,
				`t.yaml:17: policies.q: expected a list, got a mapping`,
				`t.yaml:18: policies.p: duplicate key (first at line 3): remove one`,
				`t.yaml:20: routes[0].policy: unknown policy "missing": define it under policies, or use default`,
			},
		},
		{
			name: "rule level not a scalar",
			src:  "policies:\n  p:\n    - name: a\n      level: [full]\n",
			want: []string{
				`t.yaml:3: policies.p[0].level: missing: give the level: none, metadata, request or full`,
				`t.yaml:4: policies.p[0].level: expected a level, got a list`,
			},
		},
		{
			name: "policies not a mapping",
			src:  "policies: [default]\n",
			want: []string{`t.yaml:1: policies: expected a mapping of policy names to lists of rules, got a list`},
		},
		{
			name: "gjson paths with spaces or an open quote",
			src: "routes:\n  - name: r\n    upstream: https://x.example.com\n" +
				"    extract:\n      version: ' response.v'\n      decision: 'response.#(name==\"x)'\n",
			want: []string{
				`t.yaml:5: routes[0].extract.version: invalid gjson path " response.v": leading or trailing space; write paths such as response.predictions.0.label`,
				`t.yaml:6: routes[0].extract.decision: invalid gjson path "response.#(name==\"x)": an unterminated quote; write paths such as response.predictions.0.label`,
			},
		},
		{
			name: "route capture settings",
			src: "routes:\n  - name: r\n    match: {path_prefix: /r/}\n    upstream: https://x.example.com\n    profile: gemini\n" +
				"    model: {version_headers: [\"X Version\"], digest: sha256:abc}\n" +
				"    extract: {model: .model, input: \"request.a..b\", output: \"response.x.\", decision: \"response.x(\", rationale: \"\", attributes: {\"bad name\": a, ok: \"\", q: 'a.#(b==\"x.\")'}}\n" +
				"  - name: g\n    match: {path_prefix: /g/}\n    upstream: https://x.example.com\n    profile: generic\n    extract: {decision: response.label, versoin: x}\n",
			want: []string{
				`t.yaml:5: routes[0].profile: unknown profile "gemini": use auto, openai, anthropic, kserve, triton, sagemaker, mlflow or generic`,
				`t.yaml:6: routes[0].model.version_headers[0]: invalid header name "X Version": use letters, digits and -, such as X-User-Id`,
				`t.yaml:7: routes[0].extract.rationale: empty path: give a gjson path such as response.predictions, or remove the key`,
				`t.yaml:7: routes[0].extract.attributes.ok: empty path: give a gjson path such as response.predictions, or remove the key`,
				`t.yaml:7: routes[0].extract.model: invalid gjson path ".model": it starts with a dot; write paths such as response.predictions.0.label`,
				`t.yaml:7: routes[0].extract.input: invalid gjson path "request.a..b": an empty key between dots; write paths such as response.predictions.0.label`,
				`t.yaml:7: routes[0].extract.output: invalid gjson path "response.x.": it ends with a dot; write paths such as response.predictions.0.label`,
				`t.yaml:7: routes[0].extract.decision: invalid gjson path "response.x(": unbalanced '('; write paths such as response.predictions.0.label`,
				`t.yaml:7: routes[0].extract.attributes.bad name: invalid attribute name "bad name": use letters, digits, - and _`,
				`t.yaml:11: routes[1].extract.output: missing: the generic profile reads bodies only through extract paths: give extract.output (or extract.input), such as response.predictions`,
				`t.yaml:12: routes[1].extract.versoin: unknown key "versoin"; did you mean "version"?`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := problemLines(t, tt.src, nil)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSectionValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		got  func(*Config) any
		want any
	}{
		{"empty lists mean none, absent ones the default",
			"identity: {api_key_headers: [], headers: }\npolicies:\n  default:\n    - {level: full, redact: {detectors: []}}\n",
			func(c *Config) any {
				return []any{c.Identity.APIKeyHeaders, c.Identity.Headers == nil, c.Policies["default"][0].Redact.Detectors, c.Policies["default"][0].Redact.Paths == nil}
			},
			[]any{[]string{}, true, []string{}, true}},
		{"trusted proxies", "identity: {trusted_proxies: ['::1', 10.1.0.0/16, 192.168.1.7]}\n",
			func(c *Config) any { return c.Identity.TrustedProxies },
			[]netip.Prefix{netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.168.1.7/32")}},
		{"secret and secret file", "identity: {hmac_secret: '${S}', hmac_secret_file: /run/secrets/hmac}\n",
			func(c *Config) any { return []string{string(c.Identity.Secret), c.Identity.SecretFile, c.SecretPath()} },
			[]string{strings.Repeat("x", 32), "/run/secrets/hmac", "/run/secrets/hmac"}},
		{"a policy without rules", "policies: {p: , q: []}\n",
			func(c *Config) any { return c.Policies },
			map[string][]policy.Rule{"p": {}, "q": {}}},
		{"rule settings",
			"policies:\n  p:\n    - name: r\n      match: {routes: [a], paths: ['/v1/**'], methods: [post], callers: ['svc-*'], models: ['gpt-4o*']}\n" +
				"      level: request\n      max_body: 64 KiB\n      redact: {paths: ['messages[*].content']}\n      durability: strict\n      on_trail_failure: open\n",
			func(c *Config) any { return c.Policies["p"][0] },
			policy.Rule{Name: "r", Match: policy.Match{Routes: []string{"a"}, Paths: []string{"/v1/**"}, Methods: []string{"post"},
				Callers: []string{"svc-*"}, Models: []string{"gpt-4o*"}}, Level: policy.LevelRequest, MaxBody: 64 << 10,
				Redact: policy.Redact{Paths: []string{"messages[*].content"}}, Durability: policy.DurabilityStrict, OnTrailFailure: policy.FailOpen}},
		{"merged rules", "policies:\n  a: [&r {name: x, level: metadata, match: {methods: [GET]}}]\n  b: [{<<: *r, name: y}]\n",
			func(c *Config) any { return c.Policies["b"][0] },
			policy.Rule{Name: "y", Level: policy.LevelMetadata, Match: policy.Match{Methods: []string{"GET"}}}},
		{"route capture", "routes:\n  - name: r\n    upstream: http://x\n    profile: auto\n    provider: azure\n" +
			"    model: {version_headers: [X-Model-Version], version: '3', digest: 'sha256:ab'}\n" +
			"    extract: {attributes: {group: request.group}}\n",
			func(c *Config) any { return c.Gateway.Routes[0].Capture },
			capture.RouteOptions{Provider: "azure", VersionHeaders: []string{"X-Model-Version"}, Labels: capture.Labels{Version: "3", Digest: "sha256:ab"},
				Extract: capture.Extract{Attributes: map[string]string{"group": "request.group"}}}},
		{"trail", "trail:\n  store: file:///var/lib/auditgate/trail\n  prefix: eu\n  spool: /var/spool/auditgate\n  key: /etc/auditgate/signing.key\n" +
			"  seal: {max_records: 5000, max_bytes: 8MiB, max_age: 30s}\n  heartbeat: 15s\n  commit_interval: 2ms\n  queue: {records: 100, bytes: 1MiB}\n  max_record: 4MiB\n",
			func(c *Config) any { return c.Trail },
			Trail{Store: "file:///var/lib/auditgate/trail", Prefix: "eu", Spool: "/var/spool/auditgate", Key: "/etc/auditgate/signing.key",
				Appender: worm.AppenderOptions{MaxRecords: 5000, MaxBytes: 8 << 20, MaxAge: 30 * time.Second, Heartbeat: 15 * time.Second,
					CommitInterval: 2 * time.Millisecond, QueueRecords: 100, QueueBytes: 1 << 20, MaxRecord: 4 << 20}}},
		{"trail defaults", "data_dir: /d\n",
			func(c *Config) any { k, gen := c.TrailKey(); return []any{c.TrailStore(), c.TrailSpool(), k, gen} },
			[]any{"/d/trail", "/d/spool", "/d/signing.key", true}},
		{"route naming the default policy without defining it", "routes:\n  - {name: r, upstream: 'http://x', policy: default}\n",
			func(c *Config) any { return c.Gateway.Routes[0].Policy }, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, tt.src, map[string]string{"S": strings.Repeat("x", 32)})
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestValidateSections covers the new sections in configurations built in
// code, whose problems have no line.
func TestValidateSections(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Identity.Secret = []byte("0123456789")
	c.Identity.TrustedProxies = []netip.Prefix{{}}
	c.Identity.CacheSize = -1
	c.Policies = map[string][]policy.Rule{
		"p":     {{Name: "a", Level: policy.Level(9), Durability: "later", MaxBody: -5}},
		"Upper": nil,
	}
	c.Gateway.Routes = []gateway.Route{{Name: "r", Upstream: "https://x.example.com", Policy: "q",
		Capture: capture.RouteOptions{Profile: "x", Extract: capture.Extract{Output: "a..b", Attributes: map[string]string{"g": ""}}}}}
	want := strings.Join([]string{
		`identity.hmac_secret: too short (10 characters): use at least 32 random characters, such as the output of: openssl rand -hex 32`,
		`identity.trusted_proxies[0]: empty: give a CIDR such as 10.0.0.0/8 or an address, or remove the entry`,
		`identity.cache_size: negative: use 1 or more, or 0 for the default`,
		`policies.Upper: invalid policy name "Upper": use lower-case letters, digits, - and _`,
		`policies.p[0].level: unknown level 9: use none, metadata, request or full`,
		`policies.p[0].max_body: negative size -5: use a positive size, or 0 for the default of 1MiB`,
		`policies.p[0].durability: unknown durability "later": use async or strict`,
		`routes[0].policy: unknown policy "q": define it under policies, or use default`,
		`routes[0].profile: unknown profile "x": use auto, openai, anthropic, kserve, triton, sagemaker, mlflow or generic`,
		`routes[0].extract.output: invalid gjson path "a..b": an empty key between dots; write paths such as response.predictions.0.label`,
		`routes[0].extract.attributes.g: empty path: give a gjson path such as request.instances.0.group`,
	}, "\n")
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant:\n%s", err, want)
	}

	_, err := c.Policy()
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Policy() = %v, want *Problems", err)
	}
	want = strings.Join([]string{
		`policies.p[0].level: unknown level 9: use none, metadata, request or full`,
		`policies.p[0].max_body: negative size -5: use a positive size, or 0 for the default of 1MiB`,
		`policies.p[0].durability: unknown durability "later": use async or strict`,
	}, "\n")
	if err.Error() != want {
		t.Errorf("Policy:\n%v\nwant:\n%s", err, want)
	}
}

// TestPolicyLines checks that Policy maps problems of a file's policies,
// changed after parsing, to the file's lines where the file still holds
// the value: a changed value is not blamed on the file.
func TestPolicyLines(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "policies:\n  p:\n    - name: a\n      level: full\n      durability: async\n", nil)
	c.Policies["p"][0].Durability = "sometimes"
	c.Policies["p"] = append(c.Policies["p"], policy.Rule{Name: "b", OnTrailFailure: "maybe"})
	_, err := c.Policy()
	want := strings.Join([]string{
		`t.yaml:2: policies.p[1]: unreachable: rule 0 "a" matches every exchange first: put the narrower rule first`,
		`t.yaml:2: policies.p[1].on_trail_failure: unknown failure mode "maybe": use closed or open`,
		`policies.p[0].durability: unknown durability "sometimes": use async or strict`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("Policy:\n%v\nwant:\n%s", err, want)
	}
	c = mustParse(t, "", nil)
	set, err := c.Policy()
	if err != nil {
		t.Fatalf("Policy of no policies: %v", err)
	}
	if d := set.Decide("", policy.Query{Path: "/v1/chat/completions"}); d.Level != policy.LevelFull || d.Rule != "" {
		t.Errorf("no policies decided %+v, want the built-in default", d)
	}
}

// TestAgreesWithCapture pins the facts policy keeps in its own words (it
// imports nothing of the project) to capture's, which acts on them.
func TestAgreesWithCapture(t *testing.T) {
	t.Parallel()
	if got, want := policy.Detectors(), capture.AllDetectors; !reflect.DeepEqual(got, want) {
		t.Errorf("policy.Detectors() = %v, capture.AllDetectors = %v", got, want)
	}
	if policy.DefaultMaxBody != capture.DefaultMaxBody {
		t.Errorf("policy.DefaultMaxBody = %d, capture.DefaultMaxBody = %d", policy.DefaultMaxBody, capture.DefaultMaxBody)
	}
}

// TestValidateTrailStore: an S3 store URL and a prefix are checked when
// the file is, not when serve first writes.
func TestValidateTrailStore(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte("routes:\n  - {name: r, upstream: 'http://x'}\ntrail:\n  store: 's3://trail/p?endpoint=h:9000&colour=red'\n  prefix: '../up'\n"))
	if err == nil {
		err = c.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "t.yaml:4: trail.store:") || !strings.Contains(err.Error(), "colour") || !strings.Contains(err.Error(), "trail.prefix") {
		t.Errorf("Validate: %v", err)
	}
	c = mustParse(t, "routes:\n  - {name: r, upstream: 'http://x'}\ntrail:\n  store: 's3://trail/p?endpoint=h:9000&secure=false'\n", nil)
	if err := c.Validate(); err != nil {
		t.Errorf("a good S3 store: %v", err)
	}
}
