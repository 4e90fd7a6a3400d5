// Package config reads auditgate's YAML file into the options of the packages
// it configures, reporting every mistake at once with its file, line and key.
package config

import (
	"fmt"
	"os"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/gateway"
	"github.com/auditgate/auditgate/policy"
)

// Config is auditgate's whole configuration: the file after defaults and
// environment overrides, before command-line flags (which the caller assigns
// to the fields directly, then calls Validate).
type Config struct {
	// File is the path the configuration was read from; "" for Default.
	File string
	// Gateway configures the proxy listener, timeouts, forwarded headers and
	// routes. Its zero fields mean the gateway's own defaults.
	Gateway gateway.Options
	// Admin configures the admin HTTP listener.
	Admin Admin
	// Log configures logging.
	Log Log
	// DataDir holds the spool, the generated signing key, the generated
	// HMAC secret and the local store. Default "./auditgate-data".
	DataDir string
	// Stream names this instance's trail stream; if empty, StreamID makes
	// one from the host name and keeps it in DataDir.
	Stream string
	// Trail says where and how the trail is written.
	Trail Trail
	// Identity says how callers are identified.
	Identity IdentityConfig
	// Policies are the capture policies by name, each an ordered list of
	// rules; routes name theirs (Route.Policy), and routes that name none
	// use the one named "default". Without a policy, every exchange is
	// recorded whole (policy.Default).
	Policies map[string][]policy.Rule

	// src remembers where each value came from, so problems found later by
	// Validate still point at the file's line.
	src *source
}

// IdentityConfig says how callers are identified. Secret is set from
// hmac_secret; when it is empty, LoadSecret reads or creates the secret
// at SecretPath.
type IdentityConfig struct {
	capture.IdentityOptions
	// SecretFile holds the HMAC secret when none is configured; one is
	// generated there on first start. If empty, DataDir/hmac.key.
	SecretFile string
}

// Admin configures the admin HTTP API listener.
type Admin struct {
	// Listen is the admin address as host:port. Default "127.0.0.1:9090".
	Listen string
	// Tokens are the bearer tokens of the authenticated admin endpoints.
	Tokens []gateway.AdminToken
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default (and if empty) info.
	Level string
	// Format is json or console. Default (and if empty) json.
	Format string
}

// Default returns the zero-config form: no routes, gateway defaults for the
// proxy, the admin API on 127.0.0.1:9090, info logs as JSON, data in
// ./auditgate-data. It does not read the environment; see ApplyEnv.
func Default() *Config {
	return &Config{
		Gateway: gateway.Options{Forwarded: gateway.DefaultForwarded},
		Admin:   Admin{Listen: "127.0.0.1:9090"},
		Log:     Log{Level: "info", Format: "json"},
		DataDir: "./auditgate-data",
		src:     newSource(),
	}
}

// Load reads and parses the configuration file at path. Problems in the
// file are returned together as *Problems.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses the configuration in data; name is the file name used in
// problems. Environment variables are expanded in values and the AUDITGATE_*
// overrides applied. It returns *Problems listing everything wrong, or the
// Config. A file without routes parses: the routes may come from
// ApplyUpstream; Validate then requires at least one.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, os.LookupEnv)
}

func parse(name string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	c := Default()
	c.File = name
	d := &decoder{file: name, lookup: lookup, src: c.src}
	d.document(data, c)
	c.applyEnv(lookup)
	probs := append(d.probs, c.check(false)...)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// ApplyUpstream is the zero-config form of routing: one route named
// "default", matching every request, to url. It refuses when routes are
// already configured, since silently replacing or adding to them would
// leave the operator unsure which one serves traffic.
func (c *Config) ApplyUpstream(url string) error {
	if len(c.Gateway.Routes) > 0 {
		if c.File == "" {
			return fmt.Errorf("--upstream conflicts with the configured routes: remove one")
		}
		return fmt.Errorf("--upstream conflicts with routes in %s: remove one", c.File)
	}
	c.Gateway.Routes = []gateway.Route{{Name: "default", Upstream: url}}
	c.source().set("routes[0].upstream", pos{val: url, note: "set by --upstream"})
	return nil
}

// Validate checks that the configuration is ready to run: everything Parse
// checks that does not need the file's text, plus at least one route. It
// works on a Config built in code too; problems then carry no line.
func (c *Config) Validate() error {
	return c.check(true).err()
}

func (c *Config) source() *source {
	if c.src == nil {
		c.src = newSource()
	}
	return c.src
}
