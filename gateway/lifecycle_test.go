package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

// closeSignalListener closes closed once Close was called.
type closeSignalListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeSignalListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

// servedGateway is a gateway the test serves and shuts down itself.
type servedGateway struct {
	*Gateway
	addr   string
	ln     *closeSignalListener
	served chan error
}

func serveByHand(t *testing.T, opts Options, rec Recorder) *servedGateway {
	t.Helper()
	g, err := New(opts, rec, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &closeSignalListener{Listener: inner, closed: make(chan struct{})}
	sg := &servedGateway{Gateway: g, addr: inner.Addr().String(), ln: ln, served: make(chan error, 1)}
	go func() { sg.served <- g.Serve(ln) }()
	return sg
}

// heldStream is an upstream that sends one SSE event, then waits for
// release (or for its client to go away) before sending the rest.
type heldStream struct {
	*httptest.Server
	sent    chan struct{}
	release chan struct{}
}

const (
	heldFirst = "data: first\n\n"
	heldRest  = "data: second\n\ndata: [DONE]\n\n"
)

func newHeldStream(t *testing.T) *heldStream {
	h := &heldStream{sent: make(chan struct{}, 16), release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, heldFirst)
		w.(http.Flusher).Flush()
		h.sent <- struct{}{}
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, heldRest)
	}))
	t.Cleanup(h.Close)
	return h
}

// openStream starts a streamed request and reads its first event.
func openStream(t *testing.T, c *http.Client, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	first := make([]byte, len(heldFirst))
	if _, err := io.ReadFull(br, first); err != nil || string(first) != heldFirst {
		resp.Body.Close()
		t.Fatalf("first event %q, %v", first, err)
	}
	return resp, br
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestLifecycleShutdownDrainsStream(t *testing.T) {
	up := newHeldStream(t)
	rec := newTestRecorder()
	gw := serveByHand(t, oneRoute(up.URL), rec)

	resp, br := openStream(t, rawClient(t), "http://"+gw.addr+"/v1/chat/completions")
	defer resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- gw.Shutdown(ctx) }()
	waitFor(t, gw.ln.closed, "the listener to close")

	if gw.Ready() {
		t.Error("Ready() is true while shutting down")
	}
	if c, err := net.DialTimeout("tcp", gw.addr, 5*time.Second); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("a new connection was served during shutdown (read %d bytes)", n)
		}
		c.Close()
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a response was still streaming", err)
	default:
	}

	close(up.release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != heldRest {
		t.Errorf("rest of the stream %q, %v; want %q", rest, err, heldRest)
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the stream ended")
	}
	if err := <-gw.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	ex := rec.wait(t, 1)[0]
	if ex.Outcome != OutcomeOK || !ex.RespBody.Complete || string(ex.RespBody.Data) != heldFirst+heldRest {
		t.Errorf("outcome %v, response body %q complete %v", ex.Outcome, ex.RespBody.Data, ex.RespBody.Complete)
	}
	// A second Shutdown is harmless.
	if err := gw.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestLifecycleReadyFalseAfterShutdown(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	gw := startGateway(t, oneRoute(up.URL))
	// A served request shows Serve is running, so Shutdown has something to
	// stop (see TestLifecycleShutdownBeforeServe).
	getString(t, rawClient(t), gw.URL+"/x")
	if !gw.Ready() {
		t.Fatal("Ready() false before Shutdown")
	}
	if err := gw.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if gw.Ready() {
		t.Error("Ready() true after Shutdown")
	}
}

// A Shutdown that comes before Serve got going (a signal during start-up)
// must still stop the gateway: Serve after Shutdown serves nothing and
// returns.
func TestLifecycleShutdownBeforeServe(t *testing.T) {
	up := namedUpstream(t, "A")
	g, err := New(oneRoute(up.URL), nil, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	defer ln.Close()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	}

	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Get("http://" + ln.Addr().String() + "/x"); err == nil {
		resp.Body.Close()
		t.Errorf("a gateway that was shut down served a request: status %d", resp.StatusCode)
		stop() // Serve is running now; stop what the first Shutdown missed
	}
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Error("Serve after Shutdown did not return")
		stop()
		<-served
	}
}

// closingRecorder notes exchanges recorded after Close.
type closingRecorder struct {
	*testRecorder
	closed atomic.Bool
	late   atomic.Int32
}

func (r *closingRecorder) Record(ex *Exchange) {
	if r.closed.Load() {
		r.late.Add(1)
	}
	r.testRecorder.Record(ex)
}

func (r *closingRecorder) Close(context.Context) error {
	r.closed.Store(true)
	return nil
}

// When the drain is cut short, Shutdown reports it, the exchange still
// streaming is recorded once its connection ends, and the recorder is
// closed only after that (Closer's contract): otherwise the trail loses
// the record of every exchange the drain deadline cut off.
func TestLifecycleShutdownCutShort(t *testing.T) {
	up := newHeldStream(t)
	rec := &closingRecorder{testRecorder: newTestRecorder()}
	gw := serveByHand(t, oneRoute(up.URL), rec)

	resp, br := openStream(t, rawClient(t), "http://"+gw.addr+"/v1/chat/completions")
	defer resp.Body.Close()

	ctx, cancel := context.WithCancel(context.Background())
	shutdown := make(chan error, 1)
	go func() { shutdown <- gw.Shutdown(ctx) }()
	waitFor(t, gw.ln.closed, "the listener to close")
	cancel()
	var err error
	select {
	case err = <-shutdown:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want an error wrapping context.Canceled", err)
	}

	close(up.release)
	io.ReadAll(br)
	resp.Body.Close()
	ex := rec.wait(t, 1)[0]
	if ex.Route != "test" {
		t.Errorf("recorded route %q", ex.Route)
	}
	if n := rec.late.Load(); n > 0 {
		t.Errorf("%d exchange(s) recorded after the recorder was closed", n)
	}
	if err := <-gw.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// gathered returns the value of the counter or gauge name with labels, or
// -1 when the series does not exist.
func gathered(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func namedUpstream(t *testing.T, name string) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(up.Close)
	return up
}

func getString(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, body := getBody(t, c, url)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d body %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// Reload is all or nothing: a bad configuration is refused whole and the
// running one keeps serving. (The reload counter,
// auditgate_config_reloads_total, belongs to the serve command, which also
// counts configuration files that do not parse.)
func TestLifecycleReload(t *testing.T) {
	a, b := namedUpstream(t, "A"), namedUpstream(t, "B")
	gw := startGateway(t, oneRoute(a.URL))
	c := rawClient(t)
	if got := getString(t, c, gw.URL+"/x"); got != "A" {
		t.Fatalf("before reload: %q", got)
	}

	bad := []struct {
		name string
		opts Options
		want string
	}{
		{"ftp upstream", Options{Routes: []Route{{Name: "test", Upstream: "ftp://x"}}}, "scheme"},
		{"duplicate names", Options{Routes: []Route{{Name: "test", Upstream: b.URL}, {Name: "test", Upstream: b.URL}}}, "duplicate"},
		{"no routes", Options{}, "no routes"},
		{"empty name", Options{Routes: []Route{{Upstream: b.URL}}}, "name is required"},
		{"one good route, one bad", Options{Routes: []Route{{Name: "test", Upstream: b.URL}, {Name: "x", Upstream: "http://"}}}, "host is missing"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := gw.cur.Load()
			err := gw.Reload(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload = %v, want an error about %q", err, tt.want)
			}
			if gw.cur.Load() != before {
				t.Error("a failed reload replaced the routing table")
			}
			if got := getString(t, c, gw.URL+"/x"); got != "A" {
				t.Errorf("after a failed reload traffic went to %q, want the old upstream A", got)
			}
		})
	}

	if err := gw.Reload(oneRoute(b.URL)); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := getString(t, c, gw.URL+"/x"); got != "B" {
		t.Errorf("after reload traffic went to %q, want B", got)
	}
	// The upstream client of A went with its route.
	gw.pool.mu.Lock()
	n := len(gw.pool.clients)
	gw.pool.mu.Unlock()
	if n != 1 {
		t.Errorf("upstream pool holds %d clients after the reload, want 1", n)
	}
}

func TestLifecycleReloadKeepsUpstreamPool(t *testing.T) {
	var mu sync.Mutex
	peers := map[string][]string{}
	peerUpstream := func(name string) *httptest.Server {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			peers[name] = append(peers[name], r.RemoteAddr)
			mu.Unlock()
			io.WriteString(w, name)
		}))
		t.Cleanup(up.Close)
		return up
	}
	a, b := peerUpstream("A"), peerUpstream("B")
	idle := time.Minute
	gw := startGateway(t, Options{Routes: []Route{
		{Name: "a", PathPrefix: "/a", Upstream: a.URL, MaxIdleConnDuration: idle},
		{Name: "b", PathPrefix: "/b", Upstream: b.URL, MaxIdleConnDuration: idle},
	}})
	c := rawClient(t)
	getString(t, c, gw.URL+"/a")
	getString(t, c, gw.URL+"/b")
	gw.rec.wait(t, 2)
	old := gw.cur.Load().routes
	upA, upB := old[0].up, old[1].up

	// Route b keeps its upstream settings (under another name and place);
	// route a changes one.
	err := gw.Reload(Options{Routes: []Route{
		{Name: "b2", PathPrefix: "/b", Upstream: b.URL, MaxIdleConnDuration: idle, Policy: "full"},
		{Name: "a", PathPrefix: "/a", Upstream: a.URL, MaxIdleConnDuration: idle, ResponseHeaderTimeout: time.Minute},
	}})
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	cur := gw.cur.Load().routes
	if cur[0].up != upB {
		t.Error("a route whose upstream settings did not change got a new upstream client")
	}
	if cur[1].up == upA {
		t.Error("a route whose upstream settings changed kept the old upstream client")
	}
	gw.pool.mu.Lock()
	_, kept := gw.pool.clients[upA.key]
	n := len(gw.pool.clients)
	gw.pool.mu.Unlock()
	if kept || n != 2 {
		t.Errorf("pool holds %d clients (unused old one kept: %v), want the 2 in use", n, kept)
	}

	if got := getString(t, c, gw.URL+"/b"); got != "B" {
		t.Errorf("after reload /b went to %q", got)
	}
	ex := gw.rec.wait(t, 1)[0]
	if ex.Route != "b2" || ex.Policy != "full" {
		t.Errorf("recorded route %q policy %q, want b2 and full", ex.Route, ex.Policy)
	}
	mu.Lock()
	defer mu.Unlock()
	if p := peers["B"]; len(p) != 2 || p[0] != p[1] {
		t.Errorf("upstream B saw connections %v; want the pooled connection reused across the reload", p)
	}
}

// slowRecorder takes its time over each record and notes whether Close
// came before a record.
type slowRecorder struct {
	mu      sync.Mutex
	records int
	closed  bool
	late    bool
}

func (r *slowRecorder) Record(*Exchange) {
	time.Sleep(200 * time.Millisecond)
	r.mu.Lock()
	r.records++
	r.late = r.late || r.closed
	r.mu.Unlock()
}

func (r *slowRecorder) Close(context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

// TestShutdownWaitsForRecords: records are built off the connection, so
// Shutdown waits for them, not only for the connections, before it closes
// the recorder.
func TestShutdownWaitsForRecords(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	rec := &slowRecorder{}
	g, err := New(oneRoute(up.URL), rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.records != 1 || rec.late || !rec.closed {
		t.Errorf("records %d, a record after Close %v, closed %v", rec.records, rec.late, rec.closed)
	}
}
