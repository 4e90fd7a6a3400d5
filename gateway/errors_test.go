package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// closedPortURL is the URL of a loopback port nobody listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// scriptedUpstream accepts connections on a loopback port and hands each to
// serve on its own goroutine. When the test ends it closes the listener and
// every connection, and waits for the goroutines.
func scriptedUpstream(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// readRequestHead reads one request's head (through the blank line).
func readRequestHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

// internalText is what a client must never read in the gateway's answers.
var internalText = []string{"dial tcp", "connection refused", "fasthttp", "127.0.0.1", "i/o timeout", "reset by peer", "EOF", "closed connection"}

// checkGatewayAnswer checks what every answer the gateway writes itself has:
// a JSON content type, the exchange's audit id, and no internal error text.
func checkGatewayAnswer(t *testing.T, resp *http.Response, body []byte, ex recorded) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if id := resp.Header.Get("X-Audit-Id"); id == "" || id != ex.AuditID.String() {
		t.Errorf("X-Audit-Id %q, recorded audit id %s", id, ex.AuditID)
	}
	if !json.Valid(body) {
		t.Errorf("body is not JSON: %q", body)
	}
	for _, s := range internalText {
		if bytes.Contains(body, []byte(s)) {
			t.Errorf("body leaks %q: %s", s, body)
		}
	}
	if ex.Status != resp.StatusCode {
		t.Errorf("recorded status %d, client got %d", ex.Status, resp.StatusCode)
	}
	if rb := ex.RespBody; rb.Size != int64(len(body)) || rb.SHA256 != sha256.Sum256(body) || !rb.Complete {
		t.Errorf("recorded response body: size %d complete %v; client got %d bytes", rb.Size, rb.Complete, len(body))
	}
}

func getBody(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", url, err)
	}
	return resp, body
}

func TestErrorsUpstreamFailures(t *testing.T) {
	tests := []struct {
		name    string
		route   func(t *testing.T) Route
		status  int
		outcome Outcome
	}{
		{
			name:    "refused",
			route:   func(t *testing.T) Route { return Route{Upstream: closedPortURL(t)} },
			status:  http.StatusBadGateway,
			outcome: OutcomeUpstreamUnavailable,
		},
		{
			name: "closed at once",
			route: func(t *testing.T) Route {
				return Route{Upstream: scriptedUpstream(t, func(c net.Conn) { c.Close() })}
			},
			status:  http.StatusBadGateway,
			outcome: OutcomeUpstreamUnavailable,
		},
		{
			name: "closed after reading the request",
			route: func(t *testing.T) Route {
				return Route{Upstream: scriptedUpstream(t, func(c net.Conn) {
					readRequestHead(bufio.NewReader(c))
					c.Close()
				})}
			},
			status:  http.StatusBadGateway,
			outcome: OutcomeUpstreamUnavailable,
		},
		{
			name: "reset after reading the request",
			route: func(t *testing.T) Route {
				return Route{Upstream: scriptedUpstream(t, func(c net.Conn) {
					readRequestHead(bufio.NewReader(c))
					c.(*net.TCPConn).SetLinger(0)
					c.Close()
				})}
			},
			status:  http.StatusBadGateway,
			outcome: OutcomeUpstreamUnavailable,
		},
		{
			name: "not HTTP",
			route: func(t *testing.T) Route {
				return Route{Upstream: scriptedUpstream(t, func(c net.Conn) {
					readRequestHead(bufio.NewReader(c))
					io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")
					c.Close()
				})}
			},
			status:  http.StatusBadGateway,
			outcome: OutcomeUpstreamUnavailable,
		},
		{
			name: "never answers",
			route: func(t *testing.T) Route {
				return Route{
					Upstream: scriptedUpstream(t, func(c net.Conn) {
						io.Copy(io.Discard, c) // until the gateway gives up
					}),
					ResponseHeaderTimeout: 300 * time.Millisecond,
				}
			},
			status:  http.StatusGatewayTimeout,
			outcome: OutcomeUpstreamTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.route(t)
			r.Name = "test"
			gw := startGateway(t, Options{Routes: []Route{r}})
			resp, body := getBody(t, rawClient(t), gw.URL+"/v2/models/m/infer")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			ex := gw.rec.wait(t, 1)[0]
			if ex.Outcome != tt.outcome {
				t.Errorf("outcome %v, want %v", ex.Outcome, tt.outcome)
			}
			if ex.Route != "test" || ex.ClientGone {
				t.Errorf("route %q, client gone %v", ex.Route, ex.ClientGone)
			}
			if ex.UpstreamStart.IsZero() || ex.End.Before(ex.Start) {
				t.Errorf("times: start %v upstream %v end %v", ex.Start, ex.UpstreamStart, ex.End)
			}
			checkGatewayAnswer(t, resp, body, ex)
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				t.Errorf("Retry-After %q on a %d", ra, resp.StatusCode)
			}
		})
	}
}

// TestErrorsUpstreamBodyStalls: an upstream that sends its status and
// part of its body, then goes silent. A small body of declared length is
// read whole before anything is sent, so the client gets a clean 502; a
// streamed one (large, or chunked) has already reached the client, which
// sees the upstream's status and a truncated body.
func TestErrorsUpstreamBodyStalls(t *testing.T) {
	const partial = "0123456789"
	tests := []struct {
		name, head, body string
		streamed         bool
	}{
		{"small content length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n", partial, false},
		{"large content length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n", partial, true},
		{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n", "a\r\n" + partial + "\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := scriptedUpstream(t, func(c net.Conn) {
				if readRequestHead(bufio.NewReader(c)) != nil {
					return
				}
				io.WriteString(c, tt.head+tt.body)
				io.Copy(io.Discard, c) // stall until the gateway gives up
			})
			gw := startGateway(t, Options{Routes: []Route{{Name: "test", Upstream: up, IdleTimeout: 300 * time.Millisecond}}})
			resp, err := rawClient(t).Get(gw.URL + "/v1/chat/completions")
			if err != nil {
				t.Fatalf("client got no response at all: %v", err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			ex := gw.rec.wait(t, 1)[0]
			if ex.Outcome != OutcomeUpstreamBroken || ex.ClientGone {
				t.Errorf("outcome %v (client gone %v), want %v", ex.Outcome, ex.ClientGone, OutcomeUpstreamBroken)
			}
			// The trail records the status the client received.
			if resp.StatusCode != ex.Status {
				t.Errorf("client got status %d, exchange records %d", resp.StatusCode, ex.Status)
			}
			if !tt.streamed {
				if err != nil || resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(got), `"code":"upstream_broken"`) {
					t.Errorf("client got %d %q (%v), want a clean 502 upstream_broken", resp.StatusCode, got, err)
				}
				if string(ex.RespBody.Data) != string(got) || !ex.RespBody.Complete {
					t.Errorf("recorded response body %q, client got %q", ex.RespBody.Data, got)
				}
				return
			}
			if err == nil {
				t.Errorf("body %q read to a clean end; want a truncated body", got)
			}
			if resp.StatusCode != 200 || string(got) != partial {
				t.Errorf("client got %d %q, want 200 and the partial body %q", resp.StatusCode, got, partial)
			}
			if ex.RespBody.Complete || ex.RespBody.Size != int64(len(partial)) || string(ex.RespBody.Data) != partial {
				t.Errorf("recorded response body %+v", ex.RespBody)
			}
		})
	}
}

// The gateway's own answers are recorded like any response body: captured,
// not marked truncated.
func TestErrorsAnswerBodyCaptured(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"upstream unavailable", Options{Routes: []Route{{Name: "test", Upstream: closedPortURL(t)}}}},
		{"no route", Options{Routes: []Route{{Name: "test", Host: "api.example.com", Upstream: closedPortURL(t)}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw := startGateway(t, tt.opts)
			_, body := getBody(t, rawClient(t), gw.URL+"/v1/chat/completions")
			ex := gw.rec.wait(t, 1)[0]
			if string(ex.RespBody.Data) != string(body) || ex.RespBody.Truncated {
				t.Errorf("recorded response body %q (truncated %v, size %d), client got %q",
					ex.RespBody.Data, ex.RespBody.Truncated, ex.RespBody.Size, body)
			}
		})
	}
}

func TestErrorsUpstreamBusy(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "first")
	}))
	defer up.Close()
	gw := startGateway(t, Options{Routes: []Route{{Name: "test", Upstream: up.URL, MaxConns: 1}}})
	c := rawClient(t)

	type result struct {
		status   int
		body, id string
		err      error
	}
	first := make(chan result, 1)
	go func() {
		resp, err := c.Get(gw.URL + "/v1/messages")
		if err != nil {
			first <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- result{resp.StatusCode, string(b), resp.Header.Get("X-Audit-Id"), err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("first request never reached the upstream")
	}

	resp, body := getBody(t, c, gw.URL+"/v1/messages")
	close(release)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second request: status %d, want 503; body %s", resp.StatusCode, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Error("503 without Retry-After")
	} else if n, err := strconv.Atoi(ra); err != nil || n < 1 {
		t.Errorf("Retry-After %q is not a positive number of seconds", ra)
	}
	busy := gw.rec.waitID(t, resp.Header.Get("X-Audit-Id"))
	if busy.Outcome != OutcomeUpstreamBusy {
		t.Errorf("outcome %v, want %v", busy.Outcome, OutcomeUpstreamBusy)
	}
	checkGatewayAnswer(t, resp, body, busy)

	r := <-first
	if r.err != nil || r.status != 200 || r.body != "first" {
		t.Errorf("first request: %+v", r)
	}
	if ex := gw.rec.waitID(t, r.id); ex.Outcome != OutcomeOK {
		t.Errorf("first request outcome %v", ex.Outcome)
	}
}

func TestErrorsBodyShape(t *testing.T) {
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	inner := func(t *testing.T, m map[string]any) map[string]any {
		t.Helper()
		e, ok := m["error"].(map[string]any)
		if !ok {
			t.Fatalf("no error object in %v", m)
		}
		return e
	}
	str := func(v any) string { s, _ := v.(string); return s }
	checkOpenAI := func(t *testing.T, m map[string]any, _ string) {
		if got := keys(m); !slices.Equal(got, []string{"error"}) {
			t.Errorf("top-level keys %v, want [error]", got)
		}
		e := inner(t, m)
		if got := keys(e); !slices.Equal(got, []string{"code", "message", "param", "type"}) {
			t.Errorf("error keys %v, want code, message, param, type", got)
		}
		if str(e["message"]) == "" || e["type"] != "server_error" || e["param"] != nil || e["code"] != "upstream_unavailable" {
			t.Errorf("error %v", e)
		}
	}
	checkAnthropic := func(t *testing.T, m map[string]any, id string) {
		if m["type"] != "error" {
			t.Errorf("type %v, want error", m["type"])
		}
		for _, k := range keys(m) {
			if k != "type" && k != "error" && k != "request_id" {
				t.Errorf("unexpected top-level key %q", k)
			}
		}
		if rid, ok := m["request_id"]; ok && rid != id {
			t.Errorf("request_id %v, audit id %s", rid, id)
		}
		e := inner(t, m)
		if got := keys(e); !slices.Equal(got, []string{"message", "type"}) {
			t.Errorf("error keys %v, want message, type", got)
		}
		if e["type"] != "api_error" || str(e["message"]) == "" {
			t.Errorf("error %v", e)
		}
	}
	checkPlain := func(t *testing.T, m map[string]any, id string) {
		if got := keys(m); !slices.Equal(got, []string{"error"}) {
			t.Errorf("top-level keys %v, want [error]", got)
		}
		e := inner(t, m)
		if e["type"] != "upstream_unavailable" || str(e["message"]) == "" {
			t.Errorf("error %v", e)
		}
		if v, ok := e["audit_id"]; ok && v != id {
			t.Errorf("audit_id %v, audit id %s", v, id)
		}
		for _, k := range keys(e) {
			if k != "type" && k != "message" && k != "audit_id" {
				t.Errorf("unexpected error key %q", k)
			}
		}
	}
	tests := []struct {
		name  string
		proto Protocol
		path  string
		check func(*testing.T, map[string]any, string)
	}{
		{"openai", ProtocolOpenAI, "/anything", checkOpenAI},
		{"anthropic", ProtocolAnthropic, "/v1/chat/completions", checkAnthropic},
		{"plain", ProtocolPlain, "/v1/messages", checkPlain},
		{"auto messages", ProtocolAuto, "/v1/messages", checkAnthropic},
		{"auto chat completions", ProtocolAuto, "/v1/chat/completions", checkOpenAI},
		{"auto completions", ProtocolAuto, "/v1/completions", checkOpenAI},
		{"auto embeddings", ProtocolAuto, "/v1/embeddings", checkOpenAI},
		{"auto kserve v2", ProtocolAuto, "/v2/models/x/infer", checkPlain},
		{"auto root", ProtocolAuto, "/", checkPlain},
	}
	up := closedPortURL(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := startGateway(t, Options{Routes: []Route{{Name: "test", Upstream: up, Protocol: tt.proto}}})
			resp, err := rawClient(t).Post(gw.URL+tt.path, "application/json", strings.NewReader(`{"model":"m"}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("status %d, want 502", resp.StatusCode)
			}
			ex := gw.rec.wait(t, 1)[0]
			checkGatewayAnswer(t, resp, body, ex)
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			tt.check(t, m, ex.AuditID.String())
		})
	}
}

func TestErrorsNoRoute(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("upstream got %s %s", r.Method, r.URL)
	}))
	defer up.Close()
	gw := startGateway(t, Options{Routes: []Route{{Name: "api", Host: "api.example.com", Upstream: up.URL}}})
	resp, body := getBody(t, rawClient(t), gw.URL+"/v1/chat/completions")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
	ex := gw.rec.wait(t, 1)[0]
	if ex.Outcome != OutcomeNoRoute || ex.Route != "" || !ex.UpstreamStart.IsZero() {
		t.Errorf("outcome %v route %q upstream start %v", ex.Outcome, ex.Route, ex.UpstreamStart)
	}
	checkGatewayAnswer(t, resp, body, ex)
	var m struct {
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(body, &m); err != nil || m.Error.Type != "invalid_request_error" || m.Error.Message == "" {
		t.Errorf("body %s (%v)", body, err)
	}
}

// rawExchange writes req on a fresh connection to the gateway at addr while
// reading the response, so a gateway that answers before reading the whole
// request is seen. The writer's errors are ignored.
func rawExchange(t *testing.T, addr string, write func(w io.Writer)) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		write(c)
	}()
	defer func() {
		c.Close()
		<-wrote
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, body
}

func TestErrorsRequestTooLarge(t *testing.T) {
	// The bodies are far over the limit and over what fasthttp drains of an
	// unread body (256 KiB), so the connection cannot be kept.
	const limit, size = 64 << 10, 1 << 20
	type upstreamSaw struct {
		n   int
		err error
	}
	tests := []struct {
		name     string
		declared bool
		write    func(w io.Writer)
	}{
		{"declared length", true, func(w io.Writer) {
			fmt.Fprintf(w, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
			w.Write(bytes.Repeat([]byte("a"), size))
		}},
		{"chunked", false, func(w io.Writer) {
			io.WriteString(w, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
			chunk := fmt.Sprintf("1000\r\n%s\r\n", bytes.Repeat([]byte("b"), 0x1000))
			for i := 0; i < size/0x1000; i++ {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
			io.WriteString(w, "0\r\n\r\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var saw []upstreamSaw
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, err := io.Copy(io.Discard, r.Body)
				mu.Lock()
				saw = append(saw, upstreamSaw{int(n), err})
				mu.Unlock()
			}))
			gw := startGateway(t, Options{Routes: []Route{{Name: "test", Upstream: up.URL, MaxRequestBody: limit}}})
			resp, body := rawExchange(t, strings.TrimPrefix(gw.URL, "http://"), tt.write)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413; body %s", resp.StatusCode, body)
			}
			ex := gw.rec.wait(t, 1)[0]
			if ex.Outcome != OutcomeRequestTooLarge {
				t.Errorf("outcome %v, want %v", ex.Outcome, OutcomeRequestTooLarge)
			}
			if ex.ReqBody.Complete || ex.ReqBody.Size > limit {
				t.Errorf("recorded request body: size %d complete %v", ex.ReqBody.Size, ex.ReqBody.Complete)
			}
			checkGatewayAnswer(t, resp, body, ex)

			up.Close() // waits for the upstream's handlers
			mu.Lock()
			defer mu.Unlock()
			for _, s := range saw {
				if s.err == nil {
					t.Errorf("upstream read a whole body of %d bytes; want the request aborted", s.n)
				}
				if s.n > limit {
					t.Errorf("upstream read %d bytes, over the %d limit", s.n, limit)
				}
			}
			if tt.declared && len(saw) > 0 {
				t.Errorf("upstream saw %d requests; an over-limit declared length must not be forwarded", len(saw))
			}
		})
	}
}

// A 413 sent before the body was read ends the connection (the rest of the
// body cannot be told from a next request), and says so, so that a
// keep-alive client does not send its next request on a connection the
// gateway is closing.
func TestErrorsRequestTooLargeClosesConnection(t *testing.T) {
	const limit, size = 64 << 10, 1 << 20
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer up.Close()
	gw := startGateway(t, Options{Routes: []Route{{Name: "test", Upstream: up.URL, MaxRequestBody: limit}}})
	addr := strings.TrimPrefix(gw.URL, "http://")

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		c.Write(bytes.Repeat([]byte("a"), size))
	}()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	gw.rec.wait(t, 1)
	// The gateway ends the connection after the 413...
	if n, err := br.Read(make([]byte, 1)); err == nil {
		t.Errorf("connection still open after the 413 (read %d bytes)", n)
	}
	c.Close()
	<-wrote
	// ...so the 413 must announce it.
	if !resp.Close {
		t.Errorf("413 without Connection: close (header %q), yet the gateway closes the connection", resp.Header.Get("Connection"))
	}
}

func TestErrorsClientGoneMidStream(t *testing.T) {
	upDone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(upDone)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			fl.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(up.URL))
	resp, err := rawClient(t).Get(gw.URL + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: 0\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	resp.Body.Close() // not read to its end: closes the connection

	select {
	case <-upDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request is still running 10 s after the client went away")
	}
	ex := gw.rec.wait(t, 1)[0]
	if ex.Outcome != OutcomeClientGone || !ex.ClientGone {
		t.Errorf("outcome %v client gone %v, want %v and true", ex.Outcome, ex.ClientGone, OutcomeClientGone)
	}
	if ex.Status != 200 || ex.RespBody.Complete || !bytes.HasPrefix(ex.RespBody.Data, []byte("data: 0\n\n")) {
		t.Errorf("status %d, response body %q complete %v", ex.Status, ex.RespBody.Data, ex.RespBody.Complete)
	}
}

func TestErrorsClientGoneBeforeHeaders(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			started := make(chan struct{})
			release := make(chan struct{})
			body := bytes.Repeat([]byte("x"), 1<<20)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(started)
				<-release
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.Write(body)
			}))
			defer up.Close()
			gw := startGateway(t, oneRoute(up.URL))

			c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				c.Close()
				close(release)
				t.Fatal("request never reached the upstream")
			}
			if reset {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
			close(release)

			ex := gw.rec.wait(t, 1)[0]
			if !ex.ClientGone || ex.Outcome != OutcomeClientGone {
				t.Errorf("outcome %v client gone %v, want %v and true", ex.Outcome, ex.ClientGone, OutcomeClientGone)
			}
			if ex.Status != 200 {
				t.Errorf("status %d, want the upstream's 200", ex.Status)
			}
		})
	}
}

func TestErrorsMalformedRequest(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			t.Errorf("upstream got %s %s", r.Method, r.URL)
		}
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(up.URL))
	for _, req := range []string{
		"GARBAGE\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
	} {
		resp, body := rawExchange(t, strings.TrimPrefix(gw.URL, "http://"), func(w io.Writer) { io.WriteString(w, req) })
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", req, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%q: Content-Type %q", req, ct)
		}
		var m struct {
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Error.Type == "" || m.Error.Message == "" {
			t.Errorf("%q: body %q (%v)", req, body, err)
		}
	}
	// The gateway is still serving.
	resp, err := rawClient(t).Get(gw.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after malformed requests: status %d", resp.StatusCode)
	}
}
