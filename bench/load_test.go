package bench

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestSSEScanner(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		events int
	}{
		{"openai", "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n", 3},
		{"crlf", "data: x\r\n\r\ndata: y\r\n\r\n", 2},
		{"cr", "data: x\r\rdata: y\r\r", 2},
		{"multi-line event", "data: a\ndata: b\n\n", 1},
		{"named events", "event: ping\ndata: {}\n\nevent: message_stop\ndata: {}\n\n", 2},
		{"no data", "event: ping\n\n: comment\n\nid: 7\n\n", 0},
		{"bare data field", "data\n\n", 1},
		{"not a data field", "datum: x\n\ndata2: y\n\n", 0},
		{"unterminated", "data: x\n", 0},
		{"leading blank lines", "\n\n\ndata: x\n\n", 1},
		{"long line", "data: " + strings.Repeat("x", 10000) + "\n\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var whole sseScanner
			if got := whole.feed([]byte(tt.in)); got != tt.events {
				t.Errorf("whole: %d events, want %d", got, tt.events)
			}
			var bytewise sseScanner
			got := 0
			for i := range len(tt.in) {
				got += bytewise.feed([]byte{tt.in[i]})
			}
			if got != tt.events {
				t.Errorf("byte by byte: %d events, want %d", got, tt.events)
			}
		})
	}
}

// FuzzSSEScanner checks that how a stream is cut into reads does not change
// what the scanner counts.
func FuzzSSEScanner(f *testing.F) {
	f.Add("data: x\r\n\r\ndata: y\n\n", 5)
	f.Add("event: a\rdata\r\r\n\n", 1)
	f.Fuzz(func(t *testing.T, in string, cut int) {
		var whole, split sseScanner
		want := whole.feed([]byte(in))
		if want < 0 || want > strings.Count(in, "\n")+strings.Count(in, "\r") {
			t.Fatalf("%d events in %q", want, in)
		}
		if len(in) > 0 {
			cut = min(max(cut, 0), len(in))
		} else {
			cut = 0
		}
		if got := split.feed([]byte(in[:cut])) + split.feed([]byte(in[cut:])); got != want {
			t.Errorf("cut at %d: %d events, whole: %d", cut, got, want)
		}
	})
}

// newLoader returns a loader for the mix against base, closed when the test
// ends.
func newLoader(t *testing.T, base string, mix []Request) *loader {
	t.Helper()
	addr, tlsConf, err := parseBase(base)
	if err != nil {
		t.Fatal(err)
	}
	l := &loader{pool: newPool(addr, tlsConf), timeout: 5 * time.Second}
	for _, q := range mix {
		l.reqs = append(l.reqs, prepare(q, base))
	}
	t.Cleanup(l.pool.close)
	return l
}

func TestConnectionReuse(t *testing.T) {
	srv := startMock(t, MockOptions{StreamChunks: 4, ChunkDelay: 20 * time.Millisecond})
	l := newLoader(t, srv.URL(), DefaultMix())
	plain, stream := &l.reqs[0], &l.reqs[1]
	tl := newTally()
	for _, p := range []*prepared{stream, plain, stream, plain} {
		l.exchange(t.Context(), p, time.Now(), tl)
	}
	if tl.ok.Load() != 4 || tl.errs.Load() != 0 {
		t.Fatalf("%d ok, %d errors (%s), want 4 ok", tl.ok.Load(), tl.errs.Load(), tl.firstErr)
	}
	if n := l.pool.dialed.Load(); n != 1 {
		t.Errorf("%d connections dialed, want 1: a streamed answer read to its end leaves the connection reusable", n)
	}
	// Chat streams have a role event, 4 content events, a final event and
	// [DONE]: 6 gaps each, 3 of them the chunk delay.
	if tl.gaps != 12 {
		t.Errorf("%d gaps, want 12", tl.gaps)
	}
	if mean := tl.gapSum / time.Duration(tl.gaps); mean < 20*time.Millisecond*3/6*3/4 || mean > 20*time.Millisecond {
		t.Errorf("mean gap %v, want about 10ms", mean)
	}
	if p := percentiles(tl.ttfb); p.P50 <= 0 || p.P50 > 20*time.Millisecond {
		t.Errorf("TTFB p50 %v, want less than the first chunk delay", p.P50)
	}
}

// TestStaleConnection checks that a keep-alive connection the server closed
// while idle costs a new connection, not an error.
func TestStaleConnection(t *testing.T) {
	m := NewMock(MockOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: m.Handler, IdleTimeout: 50 * time.Millisecond}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shut down: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	l := newLoader(t, "http://"+ln.Addr().String(), DefaultMix())
	tl := newTally()
	l.exchange(t.Context(), &l.reqs[0], time.Now(), tl)
	time.Sleep(200 * time.Millisecond)
	l.exchange(t.Context(), &l.reqs[0], time.Now(), tl)
	if tl.ok.Load() != 2 {
		t.Fatalf("%d ok, %d errors (%s), want 2 ok", tl.ok.Load(), tl.errs.Load(), tl.firstErr)
	}
	if n := l.pool.dialed.Load(); n != 2 {
		t.Errorf("%d connections dialed, want 2", n)
	}
}

// TestNoCoordinatedOmission stalls the upstream for 1 s on one request in
// 200 while the harness may keep only one request in flight. The requests
// scheduled during the stall wait behind it; counted from their scheduled
// times they put a quarter of the distribution between 0 and 1 s. Counted
// from when they were actually sent, as a closed loop does, the stall
// would be a single sample, hidden below the 99th percentile.
func TestNoCoordinatedOmission(t *testing.T) {
	srv := startMock(t, MockOptions{})
	stall := Request{Name: "stall", Path: "/v1/chat/completions", Body: ChatBody(256),
		Header: map[string]string{"X-Mock-Delay": "1s"}, Weight: 1}
	chat := Request{Name: "chat", Path: "/v1/chat/completions", Body: ChatBody(256), Weight: 199}
	rep, err := Run(t.Context(), Options{
		Targets:     []Target{{Name: "direct", URL: srv.URL()}},
		Mix:         []Request{chat, stall},
		Rates:       []int{50},
		Duration:    4 * time.Second,
		Slice:       4 * time.Second,
		Warmup:      -1,
		Connections: 1,
		Saturation:  200 * time.Millisecond,
		Concurrency: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Steps[0].Results[0]
	t.Logf("open loop: %d ok, %d late, p50 %v p90 %v p99 %v max %v", res.OK, res.Late, res.Latency.P50, res.Latency.P90, res.Latency.P99, res.Latency.Max)
	if res.OK != 200 || res.Errors != 0 {
		t.Fatalf("%d ok, %d errors (%s), want 200 ok", res.OK, res.Errors, res.Error)
	}
	if res.Latency.P99 < 800*time.Millisecond || res.Latency.P99 > 1500*time.Millisecond {
		t.Errorf("p99 %v, want about 1s", res.Latency.P99)
	}
	if res.Latency.P90 < 300*time.Millisecond {
		t.Errorf("p90 %v, want the requests queued behind the stall in it", res.Latency.P90)
	}
	if res.Latency.P50 > 100*time.Millisecond {
		t.Errorf("p50 %v, want the requests outside the stall fast", res.Latency.P50)
	}
	if res.Late < 20 {
		t.Errorf("%d late sends, want the ones queued behind the stall", res.Late)
	}
	sat := rep.Saturation[0]
	t.Logf("closed loop: %d ok, p99 %v max %v", sat.OK, sat.Latency.P99, sat.Latency.Max)
	if sat.Latency.P99 > 100*time.Millisecond {
		t.Errorf("closed-loop p99 %v: the contrast this test shows is gone", sat.Latency.P99)
	}
}

func TestCancel(t *testing.T) {
	srv := startMock(t, MockOptions{})
	slow := Request{Name: "slow", Path: "/v1/chat/completions", Body: ChatBody(256),
		Header: map[string]string{"X-Mock-Delay": "10s"}, Weight: 1}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, Options{
		Targets: []Target{{Name: "direct", URL: srv.URL()}}, Mix: []Request{slow},
		Rates: []int{100}, Duration: 5 * time.Second, Warmup: -1,
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run: %v, want the context's error", err)
	}
	if rep == nil {
		t.Error("no partial report")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v after its context ended", d)
	}
}
