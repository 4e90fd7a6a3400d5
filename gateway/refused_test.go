package gateway

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestParseErrorsCarryAnAuditIDAndAreRecorded sends requests fasthttp
// cannot parse over a raw socket: the answer carries X-Audit-Id like every
// other, and the exchange reaches the recorder.
func TestParseErrorsCarryAnAuditIDAndAreRecorded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("upstream got %s %s", r.Method, r.URL)
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(up.URL))
	addr := strings.TrimPrefix(gw.URL, "http://")

	tests := []struct {
		name, req string
		status    int
		errType   string
	}{
		{"malformed request line", "GARBAGE\r\n\r\n", http.StatusBadRequest, "bad_request"},
		{"malformed header", "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", http.StatusBadRequest, "bad_request"},
		{"20 KiB of headers", "GET /v1/x HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge, "headers_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := sendRaw(t, addr, tt.req)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			id := resp.Header.Get("X-Audit-Id")
			if id == "" {
				t.Fatalf("no X-Audit-Id; body %s", body)
			}
			if !strings.Contains(string(body), `"type":"`+tt.errType+`"`) || !strings.Contains(string(body), id) {
				t.Errorf("body %s, want type %s and the audit id", body, tt.errType)
			}
			ex := gw.rec.waitID(t, id)
			if ex.Status != tt.status || ex.Outcome != outcomeRefused || ex.Route != "" {
				t.Errorf("recorded status %d outcome %s route %q", ex.Status, ex.Outcome, ex.Route)
			}
			if ex.End.IsZero() || ex.Start.IsZero() || ex.RespBody.Size != int64(len(body)) {
				t.Errorf("recorded start %v end %v response body %d bytes, want %d", ex.Start, ex.End, ex.RespBody.Size, len(body))
			}
		})
	}
	if n := testutil.ToFloat64(gw.m.requests.WithLabelValues(noRoute, "431")); n != 1 {
		t.Errorf("requests answered 431: %v, want 1", n)
	}
}

// TestRequestTimeoutAnswered408: a request whose head does not arrive
// within the read timeout is answered 408, with an audit id, and recorded.
func TestRequestTimeoutAnswered408(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("upstream got %s %s", r.Method, r.URL)
	}))
	defer up.Close()
	opts := oneRoute(up.URL)
	opts.ReadTimeout = 300 * time.Millisecond
	gw := startGateway(t, opts)
	resp, body := sendRaw(t, strings.TrimPrefix(gw.URL, "http://"), "GET /v1/x HTTP/1.1\r\nHost: x\r\n")
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"type":"request_timeout"`) {
		t.Fatalf("status %d body %s, want 408 request_timeout", resp.StatusCode, body)
	}
	ex := gw.rec.waitID(t, resp.Header.Get("X-Audit-Id"))
	if ex.Status != http.StatusRequestTimeout || ex.Outcome != outcomeRefused {
		t.Errorf("recorded status %d outcome %s", ex.Status, ex.Outcome)
	}
}

// TestDebugLogHasNoQuery checks that the per-exchange debug line names the
// path only: query strings carry API keys (?key=) and personal data that
// the record redacts.
func TestDebugLogHasNoQuery(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	g, err := New(oneRoute(up.URL), nil, zap.New(core), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	defer func() {
		ctx, cancel := contextWithTimeout(10 * time.Second)
		defer cancel()
		g.Shutdown(ctx)
		<-done
	}()

	const secret = "AIzaSyA-secret-key-0123456789"
	for i, target := range []string{
		"/v1beta/models/m:generateContent?key=" + secret + "&email=jane.doe@example.com",
		"http://gw.test/v1beta/models/m:generateContent?key=" + secret,
	} {
		resp, _ := sendRaw(t, ln.Addr().String(), "GET "+target+" HTTP/1.1\r\nHost: gw.test\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", target, resp.StatusCode)
		}
		deadline := time.Now().Add(10 * time.Second)
		for logs.FilterMessage("exchange").Len() <= i && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		// Read at once: the observer keeps the logged byte slices, which
		// the next exchange reuses.
		entries := logs.FilterMessage("exchange").All()
		if len(entries) != i+1 {
			t.Fatalf("%d exchange log lines, want %d", len(entries), i+1)
		}
		fields := entries[i].ContextMap()
		for k, v := range fields {
			if s, ok := v.(string); ok && (strings.Contains(s, secret) || strings.Contains(s, "jane.doe") || strings.Contains(s, "?")) {
				t.Errorf("log field %s = %q leaks the query", k, s)
			}
		}
		if fields["path"] != "/v1beta/models/m:generateContent" {
			t.Errorf("log fields %v, want path /v1beta/models/m:generateContent", fields)
		}
	}
}
