package config

import (
	"math"

	"go.yaml.in/yaml/v3"

	"github.com/auditgate/auditgate/gateway"
)

// The schema of the file, one function per mapping. Keys are listed in the
// order the example file documents them, which is also the order known
// keys are listed in when an unknown key has no close match.

func (d *decoder) top(n *yaml.Node, c *Config) {
	g := &c.Gateway
	if resolve(n).Kind != yaml.MappingNode && !isNull(resolve(n)) {
		d.invalid(resolve(n).Line, "", "expected a mapping of settings such as \"listen: 127.0.0.1:8080\" at the top level, got %s", describe(resolve(n)))
		return
	}
	d.mapping(n, "", []field{
		{"listen", func(n *yaml.Node, k string) { d.str(n, k, &g.Listen) }},
		{"tls", func(n *yaml.Node, k string) { d.listenerTLS(n, k, g) }},
		{"admin", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"listen", func(n *yaml.Node, k string) { d.str(n, k, &c.Admin.Listen) }},
				{"tokens", func(n *yaml.Node, k string) {
					d.sequence(n, k, func(i int, n *yaml.Node, k string) {
						c.Admin.Tokens = append(c.Admin.Tokens, d.adminToken(n, k))
					})
				}},
			})
		}},
		{"read_timeout", func(n *yaml.Node, k string) { d.limitDuration(n, k, &g.ReadTimeout) }},
		{"idle_timeout", func(n *yaml.Node, k string) { d.positiveDuration(n, k, &g.IdleTimeout) }},
		{"shutdown_timeout", func(n *yaml.Node, k string) { d.positiveDuration(n, k, &g.ShutdownTimeout) }},
		{"max_concurrency", func(n *yaml.Node, k string) { d.count(n, k, &g.MaxConcurrency) }},
		{"forwarded", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"for", func(n *yaml.Node, k string) { d.boolean(n, k, &g.Forwarded.For) }},
				{"proto", func(n *yaml.Node, k string) { d.boolean(n, k, &g.Forwarded.Proto) }},
				{"host", func(n *yaml.Node, k string) { d.boolean(n, k, &g.Forwarded.Host) }},
			})
		}},
		{"log", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"level", func(n *yaml.Node, k string) { d.str(n, k, &c.Log.Level) }},
				{"format", func(n *yaml.Node, k string) { d.str(n, k, &c.Log.Format) }},
			})
		}},
		{"data_dir", func(n *yaml.Node, k string) { d.str(n, k, &c.DataDir) }},
		{"stream", func(n *yaml.Node, k string) { d.str(n, k, &c.Stream) }},
		{"trail", func(n *yaml.Node, k string) { d.trail(n, k, &c.Trail) }},
		{"identity", func(n *yaml.Node, k string) { d.identity(n, k, &c.Identity) }},
		{"policies", func(n *yaml.Node, k string) { d.policies(n, k, c) }},
		{"routes", func(n *yaml.Node, k string) {
			d.sequence(n, k, func(i int, n *yaml.Node, k string) {
				g.Routes = append(g.Routes, d.route(n, k))
			})
		}},
	})
}

// listenerTLS sets g.TLS only when a file is named, so that an empty "tls:"
// leaves the listener on plain HTTP.
func (d *decoder) listenerTLS(n *yaml.Node, key string, g *gateway.Options) {
	var t gateway.ListenerTLS
	d.mapping(n, key, []field{
		{"cert_file", func(n *yaml.Node, k string) { d.str(n, k, &t.CertFile) }},
		{"key_file", func(n *yaml.Node, k string) { d.str(n, k, &t.KeyFile) }},
		{"client_ca_file", func(n *yaml.Node, k string) { d.str(n, k, &t.ClientCAFile) }},
		{"require_client_cert", func(n *yaml.Node, k string) { d.boolean(n, k, &t.RequireClientCert) }},
	})
	if t != (gateway.ListenerTLS{}) {
		g.TLS = &t
	}
}

// adminToken decodes one item of admin.tokens. The token itself is
// usually "${VAR}", so that the secret stays out of the file.
func (d *decoder) adminToken(n *yaml.Node, key string) gateway.AdminToken {
	var t gateway.AdminToken
	item := resolve(n)
	if !isNull(item) && item.Kind != yaml.MappingNode {
		d.invalid(item.Line, key, "expected a token mapping with name, token and roles, got %s", describe(item))
		return t
	}
	d.mapping(item, key, []field{
		{"name", func(n *yaml.Node, k string) { d.str(n, k, &t.Name) }},
		{"token", func(n *yaml.Node, k string) {
			// Kept out of the source record: problems must never echo a secret.
			if v, ok := d.scalar(n, k, "a string"); ok {
				t.Token = v
				d.src.set(k, pos{line: resolve(n).Line, val: "[secret]"})
			}
		}},
		{"roles", func(n *yaml.Node, k string) {
			d.sequence(n, k, func(i int, n *yaml.Node, k string) {
				var role string
				d.str(n, k, &role)
				t.Roles = append(t.Roles, role)
			})
		}},
	})
	d.src.set(key, pos{line: item.Line, val: t.Name})
	return t
}

// route decodes one item of routes. A malformed item still yields a
// (zero) route so that later routes keep their index in problems.
func (d *decoder) route(n *yaml.Node, key string) gateway.Route {
	var r gateway.Route
	item := resolve(n)
	if !isNull(item) && item.Kind != yaml.MappingNode {
		d.invalid(item.Line, key, "expected a route mapping with name and upstream, got %s", describe(item))
		return r
	}
	fields := []field{
		{"name", func(n *yaml.Node, k string) { d.str(n, k, &r.Name) }},
		{"match", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"host", func(n *yaml.Node, k string) { d.str(n, k, &r.Host) }},
				{"path_prefix", func(n *yaml.Node, k string) { d.str(n, k, &r.PathPrefix) }},
			})
		}},
		{"upstream", func(n *yaml.Node, k string) { d.str(n, k, &r.Upstream) }},
		{"strip_prefix", func(n *yaml.Node, k string) { d.str(n, k, &r.StripPrefix) }},
		{"preserve_host", func(n *yaml.Node, k string) { d.boolean(n, k, &r.PreserveHost) }},
		{"protocol", func(n *yaml.Node, k string) { d.protocol(n, k, &r.Protocol) }},
		{"policy", func(n *yaml.Node, k string) { d.str(n, k, &r.Policy) }},
	}
	fields = append(fields, d.captureFields(&r.Capture)...)
	fields = append(fields, []field{
		{"timeouts", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"dial", func(n *yaml.Node, k string) { d.positiveDuration(n, k, &r.DialTimeout) }},
				{"response_header", func(n *yaml.Node, k string) { d.limitDuration(n, k, &r.ResponseHeaderTimeout) }},
				{"idle", func(n *yaml.Node, k string) { d.limitDuration(n, k, &r.IdleTimeout) }},
			})
		}},
		{"max_request_body", func(n *yaml.Node, k string) {
			d.size(n, k, "unlimited", `use a positive size, or unlimited, or remove the key for the default`,
				math.MaxInt64, func(b int64) { r.MaxRequestBody = b })
		}},
		{"max_capture", func(n *yaml.Node, k string) {
			d.size(n, k, "none", `use none to keep no body, or remove the key for the default`,
				math.MaxInt, func(b int64) { r.MaxCapture = int(b) })
		}},
		{"max_conns", func(n *yaml.Node, k string) { d.count(n, k, &r.MaxConns) }},
		{"max_idle_conn_duration", func(n *yaml.Node, k string) { d.positiveDuration(n, k, &r.MaxIdleConnDuration) }},
		{"tls", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"ca_file", func(n *yaml.Node, k string) { d.str(n, k, &r.UpstreamTLS.CAFile) }},
				{"server_name", func(n *yaml.Node, k string) { d.str(n, k, &r.UpstreamTLS.ServerName) }},
				{"insecure_skip_verify", func(n *yaml.Node, k string) { d.boolean(n, k, &r.UpstreamTLS.InsecureSkipVerify) }},
			})
		}},
	}...)
	d.mapping(item, key, fields)
	// The item's line anchors problems of keys it lacks, such as a missing
	// upstream; the name identifies it while the route keeps its place.
	d.src.set(key, pos{line: item.Line, val: r.Name})
	return r
}

// protocol decodes a protocol name; "auto" is the gateway's zero value.
// Unknown names are kept for Validate to report, so that the check also
// covers configurations built in code.
func (d *decoder) protocol(n *yaml.Node, key string, dst *gateway.Protocol) {
	v, ok := d.scalar(n, key, "a protocol name")
	if !ok {
		return
	}
	if v == "auto" {
		v = string(gateway.ProtocolAuto)
	}
	*dst = gateway.Protocol(v)
	d.set(n, key, *dst)
}
