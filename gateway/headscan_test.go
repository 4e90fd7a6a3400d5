package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func TestHeadScan(t *testing.T) {
	const (
		head    = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
		plain   = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
		cont    = "HTTP/1.1 100 Continue\r\n\r\n"
		chunk   = "b\r\ndata: one\n\n\r\n"
		lfOnly  = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n" + chunk
		crInVal = "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nTransfer-Encoding: chunked\r\n\r\n"
	)
	for _, tt := range []struct {
		name    string
		in      string
		chunked bool
		want    bool
	}{
		{"head alone", head, true, false},
		{"head and a chunk", head + chunk, true, true},
		{"head and a chunk-size line only", head + "d\r\n", true, false},
		{"head and part of a chunk-size line", head + "d\r", true, false},
		{"head and one byte of a chunk", head + "b\r\nd", true, true},
		{"head and a chunk without its CRLF", head + "b\r\ndata: one\n\n", true, false},
		{"head and a chunk with half its CRLF", head + "b\r\ndata: one\n\n\r", true, false},
		{"a chunk-size line with an extension", head + "b;x=y\r\ndata: one\n\n\r\n", true, true},
		{"a chunk-size line that is not one", head + "zz\r\ndata", true, false},
		{"an empty body: the last chunk whole", head + "0\r\n\r\n", true, false},
		{"an empty body: the last chunk and part of a trailer", head + "0\r\nX-T: 1\r\n", true, false},
		{"a bare line feed in the head", "HTTP/1.1 200 OK\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n" + chunk, true, false},
		{"unknown length, one byte", plain + "d", false, true},
		{"unknown length, head alone", plain, false, false},
		{"100 Continue alone", cont, true, false},
		{"100 Continue then head", cont + head, true, false},
		{"100 Continue then head and a chunk", cont + head + chunk, true, true},
		{"line feeds only: unknown", lfOnly, true, false},
		{"a carriage return inside a value", crInVal + chunk, true, true},
		{"part of a head", head[:40], true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, and cut into reads at every position.
			for cut := 0; cut <= len(tt.in); cut++ {
				s := headScan{on: true}
				s.read([]byte(tt.in[:cut]))
				s.read([]byte(tt.in[cut:]))
				if got := s.bodyArrived(tt.chunked); got != tt.want {
					t.Fatalf("read as %q + %q: bodyArrived %v, want %v", tt.in[:cut], tt.in[cut:], got, tt.want)
				}
			}
			s := headScan{on: true}
			for i := range len(tt.in) {
				s.read([]byte{tt.in[i]})
			}
			if got := s.bodyArrived(tt.chunked); got != tt.want {
				t.Errorf("read a byte at a time: bodyArrived %v, want %v", got, tt.want)
			}
		})
	}
	s := headScan{}
	s.read([]byte(head + chunk))
	if s.bodyArrived(true) {
		t.Error("a scan that is off (TLS) said the body arrived")
	}
	s = headScan{on: true}
	s.read([]byte(head + chunk))
	s.reset()
	if !s.on || s.bodyArrived(true) {
		t.Error("reset kept the last response, or turned the scan off")
	}
}

// writeLog keeps every write made on the connections a listener accepts.
type writeLog struct {
	mu     sync.Mutex
	writes []string
}

func (l *writeLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.writes...)
}

type loggingListener struct {
	net.Listener
	log *writeLog
}

func (l loggingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return loggingConn{c, l.log}, nil
}

type loggingConn struct {
	net.Conn
	log *writeLog
}

func (c loggingConn) Write(p []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writes = append(c.log.writes, string(p))
	c.log.mu.Unlock()
	return c.Conn.Write(p)
}

// TestStreamHeadWithFirstEvent: a streamed answer whose first event came
// with its head reaches the client in one write, head and event, as nginx
// sends it; a head that came alone still reaches the client before any
// event is sent.
func TestStreamHeadWithFirstEvent(t *testing.T) {
	const (
		head  = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
		first = "b\r\ndata: one\n\n\r\n"
		rest  = "b\r\ndata: two\n\n\r\n0\r\n\r\n"
	)
	for _, together := range []bool{true, false} {
		name := "head alone"
		if together {
			name = "head with the first event"
		}
		t.Run(name, func(t *testing.T) {
			gotHead := make(chan struct{})
			up := scriptedUpstream(t, func(c net.Conn) {
				if readRequestHead(bufio.NewReader(c)) != nil {
					return
				}
				if together {
					io.WriteString(c, head+first)
				} else {
					io.WriteString(c, head)
				}
				select {
				case <-gotHead:
				case <-time.After(5 * time.Second):
				}
				if !together {
					io.WriteString(c, first)
				}
				io.WriteString(c, rest)
				io.Copy(io.Discard, c)
			})
			g, err := New(Options{Routes: []Route{{Name: "test", Upstream: up}}}, newTestRecorder(), zaptest.NewLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := listenLoopback()
			if err != nil {
				t.Fatal(err)
			}
			log := &writeLog{}
			go g.Serve(loggingListener{ln, log})
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				g.Shutdown(ctx)
			})

			start := time.Now()
			resp, err := rawClient(t).Get("http://" + ln.Addr().String() + "/v1/chat/completions")
			if err != nil {
				t.Fatal(err)
			}
			if waited := time.Since(start); waited > 4*time.Second {
				t.Errorf("the head reached the client after %s: it waited for the first event", waited)
			}
			close(gotHead)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "data: one\n\ndata: two\n\n" {
				t.Fatalf("body %q (%v)", body, err)
			}
			writes := log.all()
			if len(writes) == 0 || !strings.HasPrefix(writes[0], "HTTP/1.1 200") {
				t.Fatalf("writes to the client: %q", writes)
			}
			if got := strings.Contains(writes[0], "data: one"); got != together {
				t.Errorf("first write to the client %q: holds the first event %v, want %v", writes[0], got, together)
			}
		})
	}
}
