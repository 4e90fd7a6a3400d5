package gateway

import (
	"strings"
	"testing"
)

// compileForTest compiles rs with a fresh pool and unregistered metrics.
func compileForTest(t *testing.T, rs ...Route) []*route {
	t.Helper()
	routes, err := compileRoutes(rs, newUpstreamPool(nil), newMetrics(nil))
	if err != nil {
		t.Fatalf("compileRoutes: %v", err)
	}
	return routes
}

func TestRouteMatch(t *testing.T) {
	const up = "http://127.0.0.1:1"
	routes := compileForTest(t,
		Route{Name: "exact", Host: "API.Example.com", Upstream: up},
		Route{Name: "wild", Host: "*.example.com", Upstream: up},
		Route{Name: "v1", PathPrefix: "/v1", Upstream: up},
		Route{Name: "v1-again", PathPrefix: "/v1", Upstream: up},
		Route{Name: "dir", PathPrefix: "/models/", Upstream: up},
		Route{Name: "other-host-v2", Host: "other.test", PathPrefix: "/v2", Upstream: up},
		Route{Name: "port", Host: "Port.test:8443", Upstream: up},
		Route{Name: "port-80", Host: "port80.test:80", Upstream: up},
		Route{Name: "port-443", Host: "port443.test:443", Upstream: up},
		Route{Name: "wild-port", Host: "*.wild.test:9000", Upstream: up},
		Route{Name: "v6-port", Host: "[::1]:9000", Upstream: up},
		Route{Name: "v6-bracketed", Host: "[fe80::2]", Upstream: up},
		Route{Name: "v6-bare", Host: "fe80::3", Upstream: up},
		Route{Name: "catch-all", Upstream: up},
	)
	tests := []struct {
		name, host, path, want string
		tls                    bool
	}{
		{"exact host", "api.example.com", "/anything", "exact", false},
		{"exact host, other case", "API.EXAMPLE.COM", "/", "exact", false},
		{"exact host, port stripped", "Api.Example.Com:8443", "/x", "exact", false},
		{"wildcard subdomain", "sub.example.com", "/x", "wild", false},
		{"wildcard deeper subdomain", "a.b.example.com", "/x", "wild", false},
		{"wildcard subdomain, other case and port", "SUB.Example.COM:443", "/x", "wild", false},
		{"wildcard does not match the apex", "example.com", "/x", "catch-all", false},
		{"wildcard does not match a lookalike", "badexample.com", "/x", "catch-all", false},
		{"prefix itself", "h", "/v1", "v1", false},
		{"below prefix", "h", "/v1/chat/completions", "v1", false},
		{"prefix is not a word prefix", "h", "/v1beta/models", "catch-all", false},
		{"prefix with slash: directory", "h", "/models/x", "dir", false},
		{"prefix with slash: bare name does not match", "h", "/models", "catch-all", false},
		{"host and prefix both needed", "other.test", "/v2/x", "other-host-v2", false},
		{"host matches, prefix does not", "other.test", "/v3", "catch-all", false},
		{"prefix matches, host does not", "else.test", "/v2/x", "catch-all", false},
		{"empty host", "", "/z", "catch-all", false},
		{"ipv6 host", "[::1]:8080", "/v1/x", "v1", false},
		{"host with port", "port.test:8443", "/x", "port", false},
		{"host with port, other case", "PORT.TEST:8443", "/x", "port", false},
		{"host with port, port differs", "port.test:8444", "/x", "catch-all", false},
		{"host with port, none given", "port.test", "/x", "catch-all", false},
		{"host with port 80, none given", "port80.test", "/x", "port-80", false},
		{"host with port 80, none given over TLS", "port80.test", "/x", "catch-all", true},
		{"host with port 443, none given over TLS", "port443.test", "/x", "port-443", true},
		{"host with port 443, none given", "port443.test", "/x", "catch-all", false},
		{"wildcard with port", "a.wild.test:9000", "/x", "wild-port", false},
		{"wildcard with port, port differs", "a.wild.test:9001", "/x", "catch-all", false},
		{"ipv6 with port", "[::1]:9000", "/x", "v6-port", false},
		{"ipv6 with port, port differs", "[::1]:9001", "/x", "catch-all", false},
		{"ipv6 route in brackets", "[FE80::2]:1234", "/x", "v6-bracketed", false},
		{"ipv6 route without brackets", "[fe80::3]", "/x", "v6-bare", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := match(routes, []byte(tt.host), []byte(tt.path), tt.tls)
			if r == nil {
				t.Fatalf("match(%q, %q) = nil, want %q", tt.host, tt.path, tt.want)
			}
			if r.Name != tt.want {
				t.Errorf("match(%q, %q) = %q, want %q", tt.host, tt.path, r.Name, tt.want)
			}
		})
	}
}

func TestRouteMatchNone(t *testing.T) {
	routes := compileForTest(t,
		Route{Name: "a", Host: "api.example.com", Upstream: "http://127.0.0.1:1"},
		Route{Name: "b", PathPrefix: "/v1", Upstream: "http://127.0.0.1:1"},
	)
	for _, c := range []struct{ host, path string }{
		{"127.0.0.1:8080", "/"},
		{"api.example.com.evil.test", "/v2"},
		{"x.api.example.com", "/v1beta"},
	} {
		if r := match(routes, []byte(c.host), []byte(c.path), false); r != nil {
			t.Errorf("match(%q, %q) = %q, want no route", c.host, c.path, r.Name)
		}
	}
}

func TestRouteUpstreamURI(t *testing.T) {
	tests := []struct {
		name, upstream, strip, raw, want string
	}{
		{"no base path", "http://u", "", "/v1/x?a=1", "/v1/x?a=1"},
		{"base path slash", "http://u/", "", "/v1/x?a=1", "/v1/x?a=1"},
		{"base path", "http://u/openai", "", "/v1/x", "/openai/v1/x"},
		{"base path with slash", "http://u/openai/", "", "/v1/x", "/openai/v1/x"},
		{"base path, root request", "http://u/openai", "", "/", "/openai/"},
		{"base path keeps its encoding", "http://u/a%2Fb", "", "/c", "/a%2Fb/c"},
		{"strip prefix", "http://u", "/a", "/a/b?x=1", "/b?x=1"},
		{"strip prefix, whole path", "http://u", "/a", "/a", "/"},
		{"strip prefix, whole path with query", "http://u", "/a", "/a?q=1", "/?q=1"},
		{"strip prefix, whole path onto base", "http://u/openai", "/a", "/a", "/openai"},
		{"strip prefix onto base", "http://u/openai/", "/a", "/a/v1/x?k=v", "/openai/v1/x?k=v"},
		{"strip prefix is not a word prefix", "http://u", "/a", "/ab", "/ab"},
		{"strip prefix with slash", "http://u", "/a/", "/a/b", "/b"},
		{"strip prefix does not match", "http://u", "/a", "/b/a", "/b/a"},
		{"percent-encoding kept", "http://u", "", "/m/a%2Fb/c%20d?q=%2F%3D&r=a+b", "/m/a%2Fb/c%20d?q=%2F%3D&r=a+b"},
		{"encoded slash after strip prefix kept", "http://u", "/a", "/a/x%2Fy?z=%2F", "/x%2Fy?z=%2F"},
		{"encoded slash is not a boundary", "http://u", "/a", "/a%2Fb", "/a%2Fb"},
		{"odd query kept byte for byte", "http://u", "", "/p?a=1&&b&c=%zz#", "/p?a=1&&b&c=%zz#"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := compileForTest(t, Route{Name: "r", Upstream: tt.upstream, StripPrefix: tt.strip})[0]
			path, query, ok := splitTarget([]byte(tt.raw))
			if !ok {
				t.Fatalf("splitTarget(%q) failed", tt.raw)
			}
			got := string(r.upstreamURI(nil, path, query))
			if got != tt.want {
				t.Errorf("upstreamURI(%q) with upstream %q, strip %q = %q, want %q", tt.raw, tt.upstream, tt.strip, got, tt.want)
			}
			// Appending keeps what dst already holds.
			if got := string(r.upstreamURI([]byte("X"), path, query)); got != "X"+tt.want {
				t.Errorf("upstreamURI appended to %q: %q", "X", got)
			}
		})
	}
}

func TestRouteSplitHostPort(t *testing.T) {
	tests := []struct{ in, host, port string }{
		{"h", "h", ""},
		{"h:80", "h", "80"},
		{"h:", "h", ""},
		{"api.example.com:8443", "api.example.com", "8443"},
		{"[::1]:80", "::1", "80"},
		{"[::1]", "::1", ""},
		{"::1", "::1", ""},
		{"[fe80::1%25eth0]:443", "fe80::1%25eth0", "443"},
		{"[::1", "[::1", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		host, port := splitHostPort([]byte(tt.in))
		if string(host) != tt.host || string(port) != tt.port {
			t.Errorf("splitHostPort(%q) = %q, %q; want %q, %q", tt.in, host, port, tt.host, tt.port)
		}
	}
}

func TestRouteSplitTarget(t *testing.T) {
	tests := []struct {
		raw, path, query string
		ok               bool
	}{
		{"/", "/", "", true},
		{"/v1/x?a=1&b=/c?d", "/v1/x", "?a=1&b=/c?d", true},
		{"/v1/x?", "/v1/x", "?", true},
		{"http://h/v1/x?k=1", "/v1/x", "?k=1", true},
		{"https://user:pw@h:8443/v1/x", "/v1/x", "", true},
		{"http://h", "/", "", true},
		{"http://h?k=1", "/", "?k=1", true},
		{"*", "", "", false},
		{"h:443", "", "", false},
		{"a/b://h/x", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		path, query, ok := splitTarget([]byte(tt.raw))
		if string(path) != tt.path || string(query) != tt.query || ok != tt.ok {
			t.Errorf("splitTarget(%q) = %q, %q, %v; want %q, %q, %v", tt.raw, path, query, ok, tt.path, tt.query, tt.ok)
		}
	}
}

func TestRouteNormalPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"/", true},
		{"/v1/chat/completions", true},
		{"/v1/models/", true},
		{"/a..b/.c/d./...", true},
		{"/a%20b/%C3%A9/c%3Ad/%25/%zz/%2", true},
		{"/models/gemini-pro:generateContent", true},
		{"", false},
		{"v1/x", false},
		{"/.", false},
		{"/..", false},
		{"/./x", false},
		{"/x/../y", false},
		{"/x/..", false},
		{"/x/./", false},
		{"//", false},
		{"//x", false},
		{"/x//y", false},
		{"/x/", true},
		{`/x\y`, false},
		{"/x%2Fy", false},
		{"/x%2fy", false},
		{"/x%5Cy", false},
		{"/x%5cy", false},
		{"/%2e", false},
		{"/%2E%2e/x", false},
		{"/.%2e/x", false},
		{"/%76%31/x", false},
		{"/x%7E", false},
		{"/x%2D", false},
		{"/x%5F", false},
	}
	for _, tt := range tests {
		if got := normalPath([]byte(tt.path)); got != tt.ok {
			t.Errorf("normalPath(%q) = %v, want %v", tt.path, got, tt.ok)
		}
	}
}

func TestRouteCompileErrors(t *testing.T) {
	ok := func(name string) Route { return Route{Name: name, Upstream: "http://127.0.0.1:1"} }
	tests := []struct {
		name   string
		routes []Route
		want   []string // substrings of the error
	}{
		{"no routes", nil, []string{"no routes"}},
		{"empty name", []Route{ok("a"), {Upstream: "http://u"}}, []string{"routes[1]", "name is required"}},
		{"duplicate name", []Route{ok("a"), ok("b"), ok("a")}, []string{"routes[2]", `duplicate route name "a"`}},
		{"scheme not http", []Route{{Name: "f", Upstream: "ftp://x"}}, []string{`routes[0] "f"`, "scheme must be http or https"}},
		{"no host", []Route{{Name: "n", Upstream: "http://"}}, []string{`routes[0] "n"`, "host is missing"}},
		{"query in upstream", []Route{{Name: "q", Upstream: "http://u/p?x=1"}}, []string{`routes[0] "q"`, "query or fragment"}},
		{"unparsable upstream", []Route{{Name: "p", Upstream: "http://[::1"}}, []string{`routes[0] "p"`, "parse upstream"}},
		{"missing upstream CA file", []Route{{Name: "c", Upstream: "https://u", UpstreamTLS: UpstreamTLS{CAFile: "/nonexistent/ca.pem"}}}, []string{`routes[0] "c"`, "upstream CA file"}},
		{"path prefix that never matches", []Route{{Name: "d", PathPrefix: "/v1/../x", Upstream: "http://u"}},
			[]string{`routes[0] "d"`, `match.path_prefix "/v1/../x" never matches`}},
		{"strip prefix that is never removed", []Route{{Name: "s", StripPrefix: "/a%2Fb", Upstream: "http://u"}},
			[]string{`routes[0] "s"`, `strip_prefix "/a%2Fb" is never removed`}},
		{"every problem reported", []Route{{Upstream: "http://u"}, {Name: "x", Upstream: "ftp://x"}, ok("y"), ok("y")},
			[]string{"routes[0]: name is required", `routes[1] "x"`, `routes[3]: duplicate route name "y"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes, err := compileRoutes(tt.routes, newUpstreamPool(nil), newMetrics(nil))
			if err == nil {
				t.Fatalf("compileRoutes succeeded with %d routes, want an error", len(routes))
			}
			if routes != nil {
				t.Errorf("compileRoutes returned routes along with error %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRouteCompileSharesUpstreams(t *testing.T) {
	pool := newUpstreamPool(nil)
	routes, err := compileRoutes([]Route{
		{Name: "a", PathPrefix: "/a", Upstream: "http://127.0.0.1:1/base"},
		{Name: "b", PathPrefix: "/b", Upstream: "http://127.0.0.1:1/base"},
		{Name: "c", PathPrefix: "/c", Upstream: "http://127.0.0.1:1/base", MaxConns: 7},
	}, pool, newMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	if routes[0].up != routes[1].up {
		t.Error("routes with the same upstream settings got different clients")
	}
	if routes[0].up == routes[2].up {
		t.Error("routes with different MaxConns share a client")
	}
	if routes[2].up.hc.MaxConns != 7 {
		t.Errorf("MaxConns = %d, want 7", routes[2].up.hc.MaxConns)
	}
	if string(routes[0].up.host) != "127.0.0.1:1" || string(routes[0].up.basePath) != "/base" {
		t.Errorf("upstream host %q base %q", routes[0].up.host, routes[0].up.basePath)
	}
}
