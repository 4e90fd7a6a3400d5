package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
		"X-Forwarded-For: 203.0.113.9\r\n" +
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
	for _, h := range []string{"x-client-private", "keep-alive", "te", "proxy-authorization", "proxy-connection", "upgrade"} {
		if strings.Contains(","+upNames+",", ","+h+",") {
			t.Errorf("upstream received hop-by-hop %s:\n%s", h, head)
		}
	}
	if strings.Contains(strings.ToLower(head), "connection: x-client") {
		t.Errorf("upstream received the client's Connection header:\n%s", head)
	}
	for _, want := range []string{"X-End-To-End: kept", "authorization: Bearer sk-test", "X-Forwarded-For: 203.0.113.9, 127.0.0.1",
		"X-Forwarded-Proto: http", "X-Forwarded-Host: gateway.test", "GET /v1/models?x=1 HTTP/1.1"} {
		if !strings.Contains(head, want) {
			t.Errorf("upstream request lacks %q:\n%s", want, head)
		}
	}
	if string(body) != "ok" {
		t.Errorf("body %q", body)
	}
	for _, h := range []string{"X-Up-Private", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
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
	if got := ex.ReqHeaders["X-Client-Private"]; len(got) != 1 {
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
