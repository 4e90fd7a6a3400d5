package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/auditgate/auditgate/gateway"
	"github.com/auditgate/auditgate/worm"
)

// checker checks the meaning of a Config's values. It works from the Config
// alone, so it serves both Parse and Validate; lines come from the source
// when the value is still the one read from the file.
type checker struct {
	c     *Config
	src   *source
	probs Problems
}

// report adds a problem for key, whose current value is val (nil for keys
// without a scalar value).
func (k *checker) report(key string, val any, format string, args ...any) {
	k.reportAt(key, key, val, format, args...)
}

// reportAt adds a problem for key located at the line of anchor, whose
// value is anchorVal, for keys that are absent from the file and so have no
// line of their own.
func (k *checker) reportAt(key, anchor string, anchorVal any, format string, args ...any) {
	if k.src.isBad(key) {
		return
	}
	line, note := k.src.at(anchor, anchorVal)
	msg := fmt.Sprintf(format, args...)
	if note != "" {
		msg += " (" + note + ")"
	}
	p := Problem{Line: line, Key: key, Msg: msg}
	if line > 0 {
		p.File = k.c.File
	}
	k.probs = append(k.probs, p)
}

// check returns every problem in c's values. needRoutes requires at least
// one route, which a file may leave to ApplyUpstream.
func (c *Config) check(needRoutes bool) Problems {
	k := &checker{c: c, src: c.source()}
	g := &c.Gateway
	if g.Listen != "" {
		k.address("listen", g.Listen)
	}
	if g.TLS != nil {
		k.listenerTLS(g.TLS)
	}
	if c.Admin.Listen == "" {
		k.report("admin.listen", c.Admin.Listen, "empty: give a host:port such as 127.0.0.1:9090")
	} else if k.address("admin.listen", c.Admin.Listen) && c.Admin.Listen == g.Listen && !strings.HasSuffix(g.Listen, ":0") {
		// Port 0 asks for any free port, so two of them never collide.
		k.sameAddress()
	}
	k.adminTokens()
	k.notNegative("idle_timeout", g.IdleTimeout)
	k.notNegative("shutdown_timeout", g.ShutdownTimeout)
	if g.MaxConcurrency < 0 {
		k.report("max_concurrency", g.MaxConcurrency, "negative: use 1 or more, or 0 for the default")
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		k.report("log.level", c.Log.Level, "unknown level %q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "json", "console":
	default:
		k.report("log.format", c.Log.Format, "unknown format %q: use json or console", c.Log.Format)
	}
	if c.Stream != "" && !validStream(c.Stream) {
		k.report("stream", c.Stream, "invalid stream id %q: use 1 to 64 of a-z, 0-9, '.', '_' and '-'", c.Stream)
	}
	if c.DataDir == "" {
		k.report("data_dir", c.DataDir, "empty: give the directory for the spool, keys and local store")
	}
	if strings.HasPrefix(c.Trail.Store, "s3://") {
		if _, err := worm.ParseS3URL(c.Trail.Store); err != nil {
			k.report("trail.store", c.Trail.Store, "%v", err)
		}
	}
	if c.Trail.Prefix != "" {
		if err := worm.ValidatePrefix(c.Trail.Prefix); err != nil {
			k.report("trail.prefix", c.Trail.Prefix, "%v", err)
		}
	}
	k.identity()
	k.policies()
	k.routes(needRoutes)
	return k.probs
}

// address checks a listen address and reports whether it is valid.
func (k *checker) address(key, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		k.report(key, addr, "invalid address %q: use host:port such as 127.0.0.1:8080", addr)
		return false
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		k.report(key, addr, "invalid port %q in %q: use a number from 0 to 65535", port, addr)
		return false
	}
	return true
}

// sameAddress reports the proxy and admin API sharing an address, on
// whichever of the two keys the file sets, since an admin address left at its
// default has no line to point at.
func (k *checker) sameAddress() {
	addr := k.c.Admin.Listen
	if line, _ := k.src.at("admin.listen", addr); line > 0 {
		k.report("admin.listen", addr, "same address as listen: give the admin API its own port")
		return
	}
	k.report("listen", addr, "same address as admin.listen: give the proxy its own port")
}

func (k *checker) listenerTLS(t *gateway.ListenerTLS) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		if !k.src.isBad("tls.cert_file") && !k.src.isBad("tls.key_file") {
			k.report("tls", nil, "set both cert_file and key_file, or neither")
		}
	}
	k.file("tls.cert_file", t.CertFile, "the PEM certificate chain")
	k.file("tls.key_file", t.KeyFile, "the PEM private key")
	k.file("tls.client_ca_file", t.ClientCAFile, "PEM CA certificates for client certificates")
	if t.RequireClientCert && t.ClientCAFile == "" {
		k.report("tls.require_client_cert", true, "requires tls.client_ca_file: name the CA that signs client certificates")
	}
}

// minTokenLen keeps guessable admin tokens out: 16 characters of a random
// string is about 95 bits.
const minTokenLen = 16

func (k *checker) adminTokens() {
	names := map[string]int{}
	for i, t := range k.c.Admin.Tokens {
		key := fmt.Sprintf("admin.tokens[%d]", i)
		if k.src.isBad(key) {
			continue
		}
		switch {
		case t.Name == "":
			k.reportAt(key+".name", key, t.Name, "name is required: it identifies the token in logs")
		default:
			if first, dup := names[t.Name]; dup {
				k.report(key+".name", t.Name, "duplicate token name %q (also admin.tokens[%d])", t.Name, first)
			}
			names[t.Name] = i
		}
		switch {
		case t.Token == "":
			k.reportAt(key+".token", key, t.Name, "token is required: set it from the environment, such as token: ${AUDITGATE_ADMIN_TOKEN}")
		case len(t.Token) < minTokenLen:
			k.report(key+".token", "[secret]", "too short (%d characters): use at least %d random characters, such as the output of: openssl rand -hex 32", len(t.Token), minTokenLen)
		}
		if len(t.Roles) == 0 {
			k.reportAt(key+".roles", key, t.Name, "roles are required: list one or more of operator, auditor, admin")
		}
		for j, r := range t.Roles {
			switch r {
			case gateway.RoleOperator, gateway.RoleAuditor, gateway.RoleAdmin:
			default:
				k.report(fmt.Sprintf("%s.roles[%d]", key, j), r, "unknown role %q: use operator, auditor or admin", r)
			}
		}
	}
}

// file checks that a named file can be found now, rather than at the first
// TLS handshake.
func (k *checker) file(key, path, what string) {
	if path == "" {
		return
	}
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k.report(key, path, "file %q not found: give the path of %s (relative paths start at the working directory)", path, what)
	case err != nil:
		k.report(key, path, "cannot read %q: %v", path, err)
	}
}

func (k *checker) notNegative(key string, d time.Duration) {
	if d < 0 {
		k.report(key, d, "negative duration %s: use a positive duration, or 0 for the default", d)
	}
}

// validName reports whether s can serve as a metrics label value and a
// policy reference: lower-case letters, digits, '-' and '_'.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (k *checker) routes(needRoutes bool) {
	rs := k.c.Gateway.Routes
	if len(rs) == 0 && needRoutes {
		k.report("routes", nil, "no routes: add routes to the configuration file or pass --upstream URL")
	}
	names := map[string]int{}
	for i := range rs {
		key := fmt.Sprintf("routes[%d]", i)
		if k.src.isBad(key) {
			continue
		}
		k.route(key, &rs[i])
		if first, dup := names[rs[i].Name]; dup && rs[i].Name != "" {
			k.report(key+".name", rs[i].Name, "duplicate route name %q (also routes[%d]): give each route its own name", rs[i].Name, first)
		} else {
			names[rs[i].Name] = i
		}
	}
	k.unreachable(rs)
}

func (k *checker) route(key string, r *gateway.Route) {
	at := func(name string) string { return key + "." + name }
	switch {
	case r.Name == "":
		k.reportAt(at("name"), key, r.Name, "missing: name the route with lower-case letters, digits, - and _, such as openai")
	case !validName(r.Name):
		k.report(at("name"), r.Name, "invalid name %q: use lower-case letters, digits, - and _", r.Name)
	}
	if r.Host != "" && !validHost(r.Host) {
		k.report(at("match.host"), r.Host, "invalid host %q: use a host name such as api.example.com or *.example.com, optionally with :port", r.Host)
	}
	if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
		k.report(at("match.path_prefix"), r.PathPrefix, "%q does not start with /: write it as /%s", r.PathPrefix, r.PathPrefix)
	} else if r.PathPrefix != "" && !gateway.NormalPath(r.PathPrefix) {
		k.report(at("match.path_prefix"), r.PathPrefix, "%q never matches: %s", r.PathPrefix, gateway.NotNormal)
	}
	if r.Upstream == "" {
		k.reportAt(at("upstream"), key, r.Name, "missing: give the base URL of the model API, such as https://api.openai.com")
	} else {
		k.upstream(key, r)
	}
	if r.StripPrefix != "" && !strings.HasPrefix(r.StripPrefix, "/") {
		k.report(at("strip_prefix"), r.StripPrefix, "%q does not start with /: write it as /%s", r.StripPrefix, r.StripPrefix)
	} else if r.StripPrefix != "" && !gateway.NormalPath(r.StripPrefix) {
		k.report(at("strip_prefix"), r.StripPrefix, "%q is never removed: %s", r.StripPrefix, gateway.NotNormal)
	}
	switch r.Protocol {
	case gateway.ProtocolAuto, gateway.ProtocolOpenAI, gateway.ProtocolAnthropic, gateway.ProtocolPlain:
	default:
		k.report(at("protocol"), r.Protocol, "unknown protocol %q: use openai, anthropic, plain or auto", r.Protocol)
	}
	k.routePolicy(at("policy"), r.Policy)
	k.routeCapture(key, &r.Capture)
	k.notNegative(at("timeouts.dial"), r.DialTimeout)
	k.notNegative(at("max_idle_conn_duration"), r.MaxIdleConnDuration)
	if r.MaxConns < 0 {
		k.report(at("max_conns"), r.MaxConns, "negative: use 1 or more, or 0 for the default")
	}
	k.file(at("tls.ca_file"), r.UpstreamTLS.CAFile, "PEM CA certificates")
}

// upstream checks the upstream URL of the route at key.
func (k *checker) upstream(key string, r *gateway.Route) {
	u, err := url.Parse(r.Upstream)
	bad := func(format string, args ...any) {
		k.report(key+".upstream", r.Upstream, "invalid upstream URL %q: "+format, append([]any{r.Upstream}, args...)...)
	}
	switch {
	case err != nil:
		bad("use a URL such as https://api.openai.com")
	case u.Scheme != "http" && u.Scheme != "https":
		bad("the scheme must be http or https, as in https://api.openai.com")
	case u.Host == "" || u.Hostname() == "":
		bad("missing host: write it as %s://HOST[:PORT][/base/path]", u.Scheme)
	case u.RawQuery != "" || u.ForceQuery:
		bad("remove the query ?%s: a base URL carries only scheme, host, port and path", u.RawQuery)
	case u.Fragment != "" || strings.Contains(r.Upstream, "#"):
		bad("remove the fragment #%s: a base URL carries only scheme, host, port and path", u.Fragment)
	case u.Port() != "" && !validPort(u.Port()):
		bad("invalid port %q: use a number from 1 to 65535", u.Port())
	case u.Scheme == "http" && (r.UpstreamTLS.CAFile != "" || r.UpstreamTLS.ServerName != "" || r.UpstreamTLS.InsecureSkipVerify):
		k.report(key+".tls", nil, "set for an http upstream, where it has no effect: use https or remove tls")
	}
}

func validPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 1 && p <= 65535
}

// validHost accepts a host name or IP, optionally with a port, optionally
// with a leading "*." wildcard; it rejects the usual slips of pasting a URL.
func validHost(h string) bool {
	name := strings.TrimPrefix(h, "*.")
	if host, port, err := net.SplitHostPort(name); err == nil {
		if !validPort(port) {
			return false
		}
		name = host
	}
	return name != "" && (!strings.ContainsAny(name, "*/:?#@ \t") || net.ParseIP(strings.Trim(name, "[]")) != nil)
}
