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

	host        []byte // lower-case; "" matches any host
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
		host := strings.ToLower(r.Host)
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			cr.hostSuffix = true
			host = "." + rest
		}
		cr.host = []byte(host)
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

// match picks the first route for host (without port, any case) and the
// normalized request path.
func match(routes []*route, host, path []byte) *route {
	for _, r := range routes {
		if r.matches(host, path) {
			return r
		}
	}
	return nil
}

func (r *route) matches(host, path []byte) bool {
	if len(r.host) > 0 {
		if r.hostSuffix {
			if len(host) <= len(r.host) || !asciiHasSuffixFold(host, r.host) {
				return false
			}
		} else if !bytes.EqualFold(host, r.host) {
			return false
		}
	}
	return prefixMatches(r.pathPrefix, path)
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
func (r *route) upstreamURI(dst, rawURI []byte) []byte {
	path, query := rawURI, []byte(nil)
	if i := bytes.IndexByte(rawURI, '?'); i >= 0 {
		path, query = rawURI[:i], rawURI[i:]
	}
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
