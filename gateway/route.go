package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// route is a Route made ready for the request path.
type route struct {
	Route

	host        []byte // lower-case, without port or IPv6 brackets; "" matches any host
	port        []byte // the port the request's Host must name; "" matches any
	hostSuffix  bool   // host was "*.example.com": match by suffix ".example.com"
	pathPrefix  []byte
	stripPrefix []byte
	protocol    Protocol

	up *upstream
	m  *routeMetrics
}

// compileRoutes checks and prepares the routes, reusing upstream clients
// from pool where their settings did not change.
func compileRoutes(rs []Route, pool *upstreamPool, m *metrics) ([]*route, error) {
	if len(rs) == 0 {
		return nil, errors.New("no routes: configure at least one route or --upstream")
	}
	var errs []error
	seen := make(map[string]bool, len(rs))
	out := make([]*route, 0, len(rs))
	for i, r := range rs {
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("routes[%d]: name is required", i))
			continue
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("routes[%d]: duplicate route name %q", i, r.Name))
			continue
		}
		seen[r.Name] = true
		cr := &route{
			Route:       r,
			pathPrefix:  []byte(r.PathPrefix),
			stripPrefix: []byte(r.StripPrefix),
			protocol:    r.Protocol,
		}
		host, port := splitHostPort([]byte(strings.ToLower(r.Host)))
		if rest, ok := bytes.CutPrefix(host, []byte("*.")); ok {
			cr.hostSuffix = true
			host = append([]byte("."), rest...)
		}
		cr.host, cr.port = host, port
		if p := r.PathPrefix; strings.HasPrefix(p, "/") && !normalPath([]byte(p)) {
			errs = append(errs, fmt.Errorf("routes[%d] %q: match.path_prefix %q never matches: %s", i, r.Name, p, notNormal))
			continue
		}
		if p := r.StripPrefix; strings.HasPrefix(p, "/") && !normalPath([]byte(p)) {
			errs = append(errs, fmt.Errorf("routes[%d] %q: strip_prefix %q is never removed: %s", i, r.Name, p, notNormal))
			continue
		}
		up, err := pool.get(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("routes[%d] %q: %w", i, r.Name, err))
			continue
		}
		cr.up = up
		cr.m = m.forRoute(r.Name)
		out = append(out, cr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// match picks the first route for a request's Host header value and raw
// path (see normalPath). A Host without a port names the scheme's default
// port, 443 on a TLS listener and 80 otherwise.
func match(routes []*route, host, path []byte, tls bool) *route {
	host, port := splitHostPort(host)
	if len(port) == 0 {
		port = port80
		if tls {
			port = port443
		}
	}
	for _, r := range routes {
		if r.matches(host, port, path) {
			return r
		}
	}
	return nil
}

var port80, port443 = []byte("80"), []byte("443")

func (r *route) matches(host, port, path []byte) bool {
	if len(r.host) > 0 {
		if r.hostSuffix {
			if len(host) <= len(r.host) || !asciiHasSuffixFold(host, r.host) {
				return false
			}
		} else if !bytes.EqualFold(host, r.host) {
			return false
		}
		if len(r.port) > 0 && !bytes.Equal(port, r.port) {
			return false
		}
	}
	return prefixMatches(r.pathPrefix, path)
}

// splitHostPort splits a Host header value, or a route's host, into the
// host without the brackets of an IPv6 literal and the port, empty when
// there is none: "[::1]:80" gives "::1" and "80". A bare IPv6 address
// ("::1", as a route may give it) has no port.
func splitHostPort(h []byte) (host, port []byte) {
	if len(h) > 0 && h[0] == '[' {
		i := bytes.IndexByte(h, ']')
		if i < 0 {
			return h, nil
		}
		if rest := h[i+1:]; len(rest) > 0 && rest[0] == ':' {
			port = rest[1:]
		}
		return h[1:i], port
	}
	i := bytes.LastIndexByte(h, ':')
	if i < 0 || bytes.IndexByte(h[:i], ':') >= 0 {
		return h, nil
	}
	return h[:i], h[i+1:]
}

// prefixMatches reports whether prefix selects path: a prefix ending in "/"
// matches below it; any other prefix matches itself and what follows a "/"
// after it, so "/v1" does not match "/v1beta".
func prefixMatches(prefix, path []byte) bool {
	if len(prefix) == 0 {
		return true
	}
	if !bytes.HasPrefix(path, prefix) {
		return false
	}
	if prefix[len(prefix)-1] == '/' || len(path) == len(prefix) {
		return true
	}
	return path[len(prefix)] == '/'
}

// upstreamURI appends to dst the request URI to send upstream: the
// upstream's base path, then the client's raw path (less StripPrefix) and
// raw query, byte for byte.
func (r *route) upstreamURI(dst, path, query []byte) []byte {
	if len(r.stripPrefix) > 0 && prefixMatches(r.stripPrefix, path) {
		path = path[len(r.stripPrefix):]
	}
	base := r.up.basePath
	switch {
	case len(path) == 0 && len(base) == 0:
		dst = append(dst, '/')
	case len(path) == 0:
		dst = append(dst, base...)
	default:
		dst = append(dst, bytes.TrimSuffix(base, []byte("/"))...)
		if path[0] != '/' {
			dst = append(dst, '/')
		}
		dst = append(dst, path...)
	}
	return append(dst, query...)
}

// splitTarget splits a raw request target into the path and the query
// ("?…", or empty) to route and forward. An absolute-form target
// ("http://h/p?q", RFC 9112 §3.2.2) gives its path, "/" when it has none;
// ok is false for the other forms (CONNECT's "host:port", OPTIONS' "*"),
// which the gateway does not forward.
func splitTarget(raw []byte) (path, query []byte, ok bool) {
	if len(raw) == 0 || raw[0] != '/' {
		i := bytes.Index(raw, []byte("://"))
		if i <= 0 || bytes.ContainsAny(raw[:i], "/?") {
			return nil, nil, false
		}
		rest := raw[i+3:]
		j := bytes.IndexAny(rest, "/?")
		if j < 0 {
			return rootPath, nil, true
		}
		if raw = rest[j:]; raw[0] == '?' {
			return rootPath, raw, true
		}
	}
	if i := bytes.IndexByte(raw, '?'); i >= 0 {
		return raw[:i], raw[i:], true
	}
	return raw, nil, true
}

var rootPath = []byte("/")

// notNormal says, to clients and in configuration errors, what normalPath
// refuses.
const notNormal = "the gateway refuses request paths with dot segments (/./, /../), empty segments (//), " +
	"backslashes, or percent-encoded slashes, backslashes or unreserved characters (%2F, %5C, %2E, %41, ...)"

// NormalPath reports whether path, as a route's path prefix or strip
// prefix, is one that requests can match (see normalPath); if not,
// NotNormal says why.
func NormalPath(path string) bool { return normalPath([]byte(path)) }

// NotNormal says which request paths the gateway refuses.
const NotNormal = notNormal

// normalPath reports whether a raw request path is one the gateway routes.
// Routes are chosen, and strip_prefix removed, on the raw path that is
// forwarded; so a path must not be one that the upstream could resolve to
// another route's: no dot segment ("." or ".."), no empty segment ("//",
// which some servers merge), no backslash, and no percent-encoded slash,
// backslash or unreserved character (RFC 3986 §2.3: "%2e" is ".", "%76"
// is "v", and servers such as uvicorn decode them before routing). Such
// paths are refused with 400 rather than rewritten (as Envoy's
// path_with_escaped_slashes_action: REJECT_REQUEST does): a rewritten path
// would no longer be the one the client sent.
func normalPath(path []byte) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	seg := 1 // where the current segment starts
	for i := 1; i <= len(path); i++ {
		if i < len(path) {
			switch path[i] {
			case '/':
			case '\\':
				return false
			case '%':
				if i+2 < len(path) {
					if c, ok := unhex2(path[i+1], path[i+2]); ok && (c == '/' || c == '\\' || unreserved(c)) {
						return false
					}
				}
				continue
			default:
				continue
			}
		}
		switch string(path[seg:i]) {
		case ".", "..":
			return false
		case "":
			if i < len(path) {
				return false
			}
		}
		seg = i + 1
	}
	return true
}

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex2(a, b byte) (byte, bool) {
	x, ok1 := unhex(a)
	y, ok2 := unhex(b)
	return x<<4 | y, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func asciiHasSuffixFold(s, suffix []byte) bool {
	return len(s) >= len(suffix) && bytes.EqualFold(s[len(s)-len(suffix):], suffix)
}

// parseUpstream checks an upstream base URL.
func parseUpstream(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse upstream %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("upstream %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("upstream %q: host is missing", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("upstream %q: a query or fragment is not allowed", raw)
	}
	return u, nil
}
