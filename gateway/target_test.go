package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// sendRaw writes req on a new connection to addr and reads one response.
func sendRaw(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	return rawExchange(t, addr, func(w io.Writer) { io.WriteString(w, req) })
}

// uriLog is an upstream that answers 200 and keeps the request URIs it got.
type uriLog struct {
	mu   sync.Mutex
	uris []string
}

func (l *uriLog) start(t *testing.T) string {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.uris = append(l.uris, r.RequestURI)
		l.mu.Unlock()
	}))
	t.Cleanup(up.Close)
	return up.URL
}

func (l *uriLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.uris
	l.uris = nil
	return out
}

// errorShape tells the gateway's three error shapes apart.
func errorShape(body []byte) string {
	var m struct {
		Type  string
		Error struct {
			Type, Message string
			Code          *string
			AuditID       string `json:"audit_id"`
		}
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(body, &m) != nil || m.Error.Message == "" {
		return "not an error body"
	}
	switch {
	case m.Type == "error" && m.RequestID != "":
		return "anthropic"
	case m.Error.Code != nil:
		return "openai"
	case m.Error.AuditID != "":
		return "plain"
	}
	return "unknown"
}

// TestRequestTargetRoutingAgreesWithForwarding checks that the route is
// chosen on the path that is forwarded, and that paths an upstream could
// resolve to another route's (dot segments, encoded slashes, encoded
// unreserved characters, empty segments) are refused before routing.
func TestRequestTargetRoutingAgreesWithForwarding(t *testing.T) {
	var pub, v1, other uriLog
	gw := startGateway(t, Options{Routes: []Route{
		{Name: "public", PathPrefix: "/public", StripPrefix: "/public", Upstream: pub.start(t), Protocol: ProtocolOpenAI},
		{Name: "v1", PathPrefix: "/v1", StripPrefix: "/v1", Upstream: v1.start(t), Protocol: ProtocolAnthropic},
		{Name: "other", Upstream: other.start(t)},
	}})
	addr := strings.TrimPrefix(gw.URL, "http://")

	refused := []struct {
		name, target, shape string
	}{
		{"dot-dot out of a route into another", "/public/../v1/x", "openai"},
		{"dot-dot out of a route into the catch-all", "/v1/../admin", "anthropic"},
		{"encoded slash", "/v1%2Fx", "plain"},
		{"encoded slash, lower case", "/v1/a%2fb", "anthropic"},
		{"encoded backslash", "/v1/a%5Cb", "anthropic"},
		{"backslash", `/v1/a\b`, "anthropic"},
		{"dot segment", "/v1/./x", "anthropic"},
		{"trailing dot-dot", "/v1/x/..", "anthropic"},
		{"encoded dot-dot", "/v1/%2e%2E/admin", "anthropic"},
		{"half-encoded dot-dot", "/v1/.%2e/admin", "anthropic"},
		{"encoded unreserved characters", "/%76%31/x", "plain"},
		{"empty segment", "//v1/x", "plain"},
		{"empty segment inside", "/v1//x", "anthropic"},
		{"absolute form with dot-dot", "http://gw.test/public/../v1/x", "openai"},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			resp, body := sendRaw(t, addr, "GET "+tt.target+" HTTP/1.1\r\nHost: gw.test\r\n\r\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400; body %s", resp.StatusCode, body)
			}
			if got := errorShape(body); got != tt.shape {
				t.Errorf("error shape %s, want %s: %s", got, tt.shape, body)
			}
			id := resp.Header.Get("X-Audit-Id")
			if id == "" {
				t.Fatal("no X-Audit-Id")
			}
			ex := gw.rec.waitID(t, id)
			if ex.Status != http.StatusBadRequest || ex.Route != "" || ex.URI != tt.target {
				t.Errorf("recorded status %d route %q URI %q", ex.Status, ex.Route, ex.URI)
			}
			for name, l := range map[string]*uriLog{"public": &pub, "v1": &v1, "other": &other} {
				if got := l.take(); len(got) > 0 {
					t.Errorf("upstream of %s got %q", name, got)
				}
			}
		})
	}

	forwarded := []struct {
		name, target string
		up           *uriLog
		want         string
	}{
		{"prefix stripped", "/v1/messages?x=%2F", &v1, "/messages?x=%2F"},
		{"prefix itself", "/v1", &v1, "/"},
		{"trailing slash kept", "/v1/x/", &v1, "/x/"},
		{"reserved characters stay encoded", "/public/a%20b/c%3Ad", &pub, "/a%20b/c%3Ad"},
		{"dots inside a segment", "/v1/a..b/.c/d.", &v1, "/a..b/.c/d."},
		{"not a word prefix", "/v1beta/x", &other, "/v1beta/x"},
		{"absolute form", "http://gw.test/v1/x?k=1", &v1, "/x?k=1"},
		{"absolute form without a path", "http://gw.test?k=1", &other, "/?k=1"},
	}
	for _, tt := range forwarded {
		t.Run("forwarded/"+tt.name, func(t *testing.T) {
			resp, body := sendRaw(t, addr, "GET "+tt.target+" HTTP/1.1\r\nHost: gw.test\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
			}
			gw.rec.waitID(t, resp.Header.Get("X-Audit-Id"))
			if got := tt.up.take(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("upstream got %q, want [%q]", got, tt.want)
			}
		})
	}
}

// TestRouteHostWithPort checks match.host with and without a port, end to
// end.
func TestRouteHostWithPort(t *testing.T) {
	var withPort, bare, v6, other uriLog
	gw := startGateway(t, Options{Routes: []Route{
		{Name: "with-port", Host: "LocalHost:8443", Upstream: withPort.start(t)},
		{Name: "bare", Host: "localhost", Upstream: bare.start(t)},
		{Name: "v6", Host: "[::1]:9000", Upstream: v6.start(t)},
		{Name: "other", Upstream: other.start(t)},
	}})
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, tt := range []struct {
		host string
		up   *uriLog
	}{
		{"localhost:8443", &withPort},
		{"LOCALHOST:8443", &withPort},
		{"localhost:8080", &bare},
		{"localhost", &bare},
		{"[::1]:9000", &v6},
		{"[::1]:9001", &other},
		{"[::1]", &other},
		{"example.test:8443", &other},
	} {
		resp, body := sendRaw(t, addr, "GET /x HTTP/1.1\r\nHost: "+tt.host+"\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Host %s: status %d: %s", tt.host, resp.StatusCode, body)
		}
		gw.rec.waitID(t, resp.Header.Get("X-Audit-Id"))
		if got := tt.up.take(); len(got) != 1 {
			t.Errorf("Host %s: not sent to the expected route (it got %q)", tt.host, got)
			for _, l := range []*uriLog{&withPort, &bare, &v6, &other} {
				l.take()
			}
		}
	}
}
