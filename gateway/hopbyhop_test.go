package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// rawUpstream accepts one connection at a time, hands the raw request head
// to the test and answers with resp verbatim.
func rawUpstream(t *testing.T, resp string) (addr string, heads <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					head, err := readHead(br)
					if err != nil {
						return
					}
					ch <- head
					if _, err := io.WriteString(c, resp); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	return ln.Addr().String(), ch
}

func readHead(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		b.WriteString(line)
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// headerNames lists the field names of a raw message head, as spelled.
func headerNames(head string) []string {
	var names []string
	for _, line := range strings.Split(head, "\r\n")[1:] {
		if name, _, ok := strings.Cut(line, ":"); ok {
			names = append(names, name)
		}
	}
	return names
}

func TestHopByHopHeadersRemoved(t *testing.T) {
	upResp := "HTTP/1.1 200 OK\r\n" +
		"Content-Length: 2\r\n" +
		"connection: X-Up-Private, keep-alive\r\n" +
		"X-Up-Private: secret\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Proxy-Authenticate: Basic\r\n" +
		"Upgrade: h2c\r\n" +
		"KEEP-ALIVE: timeout=6\r\n" +
		"proxy-authenticate: Basic\r\n" +
		"upgrade: h2c\r\n" +
		"Trailer: X-Checksum\r\n" +
		"x-up-PRIVATE: secret\r\n" +
		"x-lower-case-name: kept\r\n" +
		"X-End-To-End: kept\r\n" +
		"\r\nok"
	addr, heads := rawUpstream(t, upResp)
	gw := startGateway(t, oneRoute("http://"+addr))

	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /v1/models?x=1 HTTP/1.1\r\n" +
		"Host: gateway.test\r\n" +
		"Connection: X-Client-Private, keep-alive\r\n" +
		"X-Client-Private: secret\r\n" +
		"keep-alive: timeout=5\r\n" +
		"TE: trailers\r\n" +
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"Upgrade: websocket\r\n" +
		"te: trailers\r\n" +
		"PROXY-AUTHORIZATION: Basic Zm9vOmJhcg==\r\n" +
		"proxy-connection: keep-alive\r\n" +
		"UpGrade: websocket\r\n" +
		"trailer: X-Checksum\r\n" +
		"x-client-PRIVATE: secret\r\n" +
		"expect: 100-continue-not\r\n" +
		"X-Forwarded-For: 203.0.113.9\r\n" +
		"x-forwarded-for: 198.51.100.1\r\n" +
		"authorization: Bearer sk-test\r\n" +
		"X-End-To-End: kept\r\n" +
		"\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var head string
	select {
	case head = <-heads:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream got no request")
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)

	upNames := strings.ToLower(strings.Join(headerNames(head), ","))
	for _, h := range []string{"x-client-private", "keep-alive", "te", "proxy-authorization", "proxy-connection", "upgrade", "trailer", "expect"} {
		if strings.Contains(","+upNames+",", ","+h+",") {
			t.Errorf("upstream received hop-by-hop %s:\n%s", h, head)
		}
	}
	if strings.Contains(strings.ToLower(head), "connection: x-client") {
		t.Errorf("upstream received the client's Connection header:\n%s", head)
	}
	for _, want := range []string{"X-End-To-End: kept", "authorization: Bearer sk-test", "X-Forwarded-For: 203.0.113.9, 198.51.100.1, 127.0.0.1",
		"X-Forwarded-Proto: http", "X-Forwarded-Host: gateway.test", "GET /v1/models?x=1 HTTP/1.1"} {
		if !strings.Contains(head, want) {
			t.Errorf("upstream request lacks %q:\n%s", want, head)
		}
	}
	if string(body) != "ok" {
		t.Errorf("body %q", body)
	}
	if n := strings.Count(strings.ToLower(head), "\r\nx-forwarded-for:"); n != 1 {
		t.Errorf("upstream received %d X-Forwarded-For fields, want 1:\n%s", n, head)
	}
	for _, h := range []string{"X-Up-Private", "Keep-Alive", "Proxy-Authenticate", "Upgrade", "Trailer"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("client received hop-by-hop %s: %s", h, v)
		}
	}
	if v := resp.Header.Get("Connection"); strings.Contains(strings.ToLower(v), "x-up-private") {
		t.Errorf("client received the upstream's Connection: %s", v)
	}
	if resp.Header.Get("X-End-To-End") != "kept" || resp.Header.Get("X-Lower-Case-Name") != "kept" {
		t.Errorf("end-to-end headers lost: %v", resp.Header)
	}
	if resp.Header.Get("X-Audit-Id") == "" {
		t.Error("no X-Audit-Id")
	}
	// Header name case is kept as the upstream sent it.
	var raw bytes.Buffer
	resp.Header.Write(&raw)
	ex := gw.rec.wait(t, 1)[0]
	if ex.RespHeaders["X-Lower-Case-Name"] == nil {
		t.Errorf("recorded response headers lack x-lower-case-name: %v", ex.RespHeaders)
	}
	if got := ex.ReqHeaders["X-Client-Private"]; len(got) != 2 {
		t.Errorf("the record keeps what the client sent, hop-by-hop included; got %v", got)
	}
}

// TestHeaderNameCaseKept checks, on the raw bytes, that the gateway does
// not rewrite field names in either direction.
func TestHeaderNameCaseKept(t *testing.T) {
	addr, heads := rawUpstream(t, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-mixed-CASE: 1\r\n\r\n")
	gw := startGateway(t, Options{Routes: []Route{{Name: "t", Upstream: "http://" + addr}}})
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nx-request-CASE: 1\r\n\r\n")
	head := <-heads
	if !strings.Contains(head, "\r\nx-request-CASE: 1\r\n") {
		t.Errorf("upstream head:\n%s", head)
	}
	if strings.Contains(head, "X-Forwarded") {
		t.Errorf("forwarded headers added though disabled:\n%s", head)
	}
	br := bufio.NewReader(c)
	resp, err := readHead(br)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp, "\r\nx-mixed-CASE: 1\r\n") {
		t.Errorf("client head:\n%s", resp)
	}
}

// TestGatewaySetFieldsReplacedWhateverTheirCase checks that no spelling of
// a field the gateway sets itself gets past it beside the gateway's own:
// header names keep their case, and lower-case names are what httpx, h11
// and uvicorn send.
func TestGatewaySetFieldsReplacedWhateverTheirCase(t *testing.T) {
	upResp := "HTTP/1.1 200 OK\r\n" +
		"Content-Length: 2\r\n" +
		"x-audit-id: from-the-upstream\r\n" +
		"X-AUDIT-ID: from-the-upstream-too\r\n" +
		"\r\nok"
	req := "GET /v1/x HTTP/1.1\r\n" +
		"Host: gateway.test\r\n" +
		"x-forwarded-for: 198.51.100.7\r\n" +
		"X-Forwarded-For: 198.51.100.8\r\n" +
		"X-FORWARDED-FOR: 198.51.100.9\r\n" +
		"x-forwarded-host: evil.test\r\n" +
		"x-forwarded-proto: https\r\n" +
		"X-Forwarded-PROTO: https\r\n" +
		"x-audit-id: from-the-client\r\n" +
		"X-Audit-ID: from-the-client-too\r\n" +
		"\r\n"
	tests := []struct {
		name string
		fwd  Forwarded
		// want is every field of these names the upstream must get, in
		// lower case; the audit id is checked apart.
		want []string
	}{
		{"all forwarded fields on", DefaultForwarded, []string{
			"x-forwarded-for: 198.51.100.7, 198.51.100.8, 198.51.100.9, 127.0.0.1",
			"x-forwarded-host: gateway.test",
			"x-forwarded-proto: http",
		}},
		{"forwarded fields off: the client's pass untouched", Forwarded{}, []string{
			"x-forwarded-for: 198.51.100.7",
			"x-forwarded-for: 198.51.100.8",
			"x-forwarded-for: 198.51.100.9",
			"x-forwarded-host: evil.test",
			"x-forwarded-proto: https",
			"x-forwarded-proto: https",
		}},
		{"only host on", Forwarded{Host: true}, []string{
			"x-forwarded-for: 198.51.100.7",
			"x-forwarded-for: 198.51.100.8",
			"x-forwarded-for: 198.51.100.9",
			"x-forwarded-host: gateway.test",
			"x-forwarded-proto: https",
			"x-forwarded-proto: https",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, heads := rawUpstream(t, upResp)
			gw := startGateway(t, Options{Forwarded: tt.fwd, Routes: []Route{{Name: "t", Upstream: "http://" + addr}}})
			c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			var head string
			select {
			case head = <-heads:
			case <-time.After(10 * time.Second):
				t.Fatal("upstream got no request")
			}
			br := bufio.NewReader(c)
			respHead, err := readHead(br)
			if err != nil {
				t.Fatal(err)
			}
			ex := gw.rec.wait(t, 1)[0]
			id := ex.AuditID.String()

			var got []string
			var ids []string
			for _, line := range strings.Split(head, "\r\n") {
				l := strings.ToLower(line)
				switch {
				case strings.HasPrefix(l, "x-forwarded-"):
					got = append(got, l)
				case strings.HasPrefix(l, "x-audit-id:"):
					ids = append(ids, line)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("upstream got forwarded fields\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(ids) != 1 || ids[0] != "X-Audit-Id: "+id {
				t.Errorf("upstream got audit ids %q, want only %s", ids, id)
			}

			ids = ids[:0]
			for _, line := range strings.Split(respHead, "\r\n") {
				if strings.HasPrefix(strings.ToLower(line), "x-audit-id:") {
					ids = append(ids, line)
				}
			}
			if len(ids) != 1 || ids[0] != "X-Audit-Id: "+id {
				t.Errorf("client got audit ids %q, want only %s", ids, id)
			}
			// The record keeps what each side sent.
			if got := ex.ReqHeaders["X-Audit-Id"]; len(got) != 2 {
				t.Errorf("recorded request audit ids %q, want the client's two", got)
			}
		})
	}
}

// TestDroppingFieldsKeepsTheOrderOfTheRest checks that removing fields
// does not reorder the others: fasthttp deletes by moving the last field
// into the gap, and a proxy must not change the order of field lines of
// one name (RFC 9110 §5.3).
func TestDroppingFieldsKeepsTheOrderOfTheRest(t *testing.T) {
	upResp := "HTTP/1.1 200 OK\r\n" +
		"x-audit-id: from-the-upstream\r\n" +
		"Connection: keep-alive\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
		"Server: up\r\n" +
		"Set-Cookie: a=1\r\n" +
		"X-Repeat: 1\r\n" +
		"Set-Cookie: b=2\r\n" +
		"X-Other: o\r\n" +
		"x-repeat: 2\r\n" +
		"X-Repeat: 3\r\n" +
		"Content-Length: 2\r\n" +
		"\r\nok"
	addr, heads := rawUpstream(t, upResp)
	gw := startGateway(t, Options{Forwarded: DefaultForwarded, Routes: []Route{{Name: "t", Upstream: "http://" + addr}}})
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /v1/x HTTP/1.1\r\n"+
		"X-Forwarded-For: 198.51.100.7\r\n"+
		"Host: gateway.test\r\n"+
		"Connection: keep-alive\r\n"+
		"Content-Type: application/json\r\n"+
		"X-Repeat: 1\r\n"+
		"User-Agent: ua\r\n"+
		"X-Other: o\r\n"+
		"x-repeat: 2\r\n"+
		"Cookie: a=1\r\n"+
		"X-Repeat: 3\r\n"+
		"Content-Length: 2\r\n"+
		"\r\n{}")
	var head string
	select {
	case head = <-heads:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream got no request")
	}
	respHead, err := readHead(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		name, head string
		want       []string
	}{
		{"upstream", head, []string{"Host: 127.0.0.1", "Content-Type: application/json", "User-Agent: ua", "Cookie: a=1",
			"X-Forwarded-For: 198.51.100.7, 127.0.0.1", "X-Other: o", "Content-Length: 2"}},
		{"client", respHead, []string{"Server: up", "Set-Cookie: a=1", "Set-Cookie: b=2", "X-Other: o", "Content-Length: 2"}},
	} {
		var repeats []string
		for _, line := range strings.Split(side.head, "\r\n") {
			if strings.HasPrefix(strings.ToLower(line), "x-repeat:") {
				repeats = append(repeats, line)
			}
		}
		if want := []string{"X-Repeat: 1", "x-repeat: 2", "X-Repeat: 3"}; !slices.Equal(repeats, want) {
			t.Errorf("%s got X-Repeat fields %q, want %q:\n%s", side.name, repeats, want, side.head)
		}
		for _, w := range side.want {
			if !strings.Contains(side.head, "\r\n"+w) {
				t.Errorf("%s lacks %q:\n%s", side.name, w, side.head)
			}
		}
		if strings.Contains(strings.ToLower(side.head), "keep-alive") {
			t.Errorf("%s got the hop-by-hop Connection:\n%s", side.name, side.head)
		}
	}
	// The upstream sent no Content-Type: the client gets none either.
	if strings.Contains(strings.ToLower(respHead), "content-type") {
		t.Errorf("client got a Content-Type the upstream did not send:\n%s", respHead)
	}
}

// TestScrubDoesNotAllocate runs scrub where it has to drop fields, and
// so rebuild the header, as it does for most clients behind a proxy.
func TestScrubDoesNotAllocate(t *testing.T) {
	var src, dst fasthttp.RequestHeader
	src.DisableNormalizing()
	src.SetMethod("POST")
	src.SetRequestURI("/v1/x")
	src.SetHost("h")
	for _, kv := range [][2]string{
		{"x-forwarded-for", "203.0.113.9"}, {"X-Repeat", "1"}, {"Connection", "keep-alive, X-Private"},
		{"X-Private", "p"}, {"x-audit-id", "spoofed"}, {"x-repeat", "2"}, {"X-Forwarded-For", "198.51.100.1"},
	} {
		src.Add(kv[0], kv[1])
	}
	var s scrubber
	var xff []byte
	drop := dropExpect | dropAuditID | dropForwardedFor | dropForwardedProto | dropForwardedHost
	if n := testing.AllocsPerRun(100, func() {
		src.CopyTo(&dst)
		xff = s.scrub(&dst, &src, drop, xff[:0])
	}); n != 0 {
		t.Errorf("scrub allocates %v times per header", n)
	}
	if string(xff) != "203.0.113.9, 198.51.100.1" {
		t.Errorf("collected X-Forwarded-For %q", xff)
	}
	var got []string
	dst.VisitAll(func(k, v []byte) { got = append(got, string(k)+": "+string(v)) })
	if want := []string{"Host: h", "X-Repeat: 1", "x-repeat: 2"}; !slices.Equal(got, want) {
		t.Errorf("scrubbed header %q, want %q", got, want)
	}
}
