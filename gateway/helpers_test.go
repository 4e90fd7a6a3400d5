package gateway

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// recorded is a deep copy of an Exchange, safe to keep.
type recorded struct {
	AuditID                          ID
	Route, Policy, Method, Host, URI string
	ReqHeaders, RespHeaders          map[string][]string
	ReqBody, RespBody                Body
	Status                           int
	Start, UpstreamStart, FirstByte  time.Time
	End                              time.Time
	Outcome                          Outcome
	ClientGone, TLS                  bool
	PeerSubject                      string
}

// testRecorder keeps copies of every exchange it is handed.
type testRecorder struct {
	mu   sync.Mutex
	exs  []recorded
	more chan struct{}
}

func newTestRecorder() *testRecorder { return &testRecorder{more: make(chan struct{}, 1<<16)} }

func (r *testRecorder) Record(ex *Exchange) {
	c := recorded{
		AuditID: ex.AuditID, Route: ex.Route, Policy: ex.Policy,
		Method: string(ex.Method), Host: string(ex.Host), URI: string(ex.URI),
		ReqHeaders: headerMap(&ex.RequestHeaders), RespHeaders: headerMap(&ex.ResponseHeaders),
		ReqBody: copyBody(ex.RequestBody), RespBody: copyBody(ex.ResponseBody),
		Status: ex.Status, Start: ex.Start, UpstreamStart: ex.UpstreamStart, FirstByte: ex.FirstByte, End: ex.End,
		Outcome: ex.Outcome, ClientGone: ex.ClientGone, TLS: ex.TLS,
	}
	if ex.PeerCertificate != nil {
		c.PeerSubject = ex.PeerCertificate.Subject.CommonName
	}
	r.mu.Lock()
	r.exs = append(r.exs, c)
	r.mu.Unlock()
	r.more <- struct{}{}
}

func copyBody(b Body) Body {
	b.Data = append([]byte(nil), b.Data...)
	return b
}

func headerMap(h *Headers) map[string][]string {
	m := make(map[string][]string)
	for _, f := range h.Fields {
		k := http.CanonicalHeaderKey(string(f.Name))
		m[k] = append(m[k], string(f.Value))
	}
	return m
}

// wait returns the next n exchanges recorded, failing the test after 10 s.
func (r *testRecorder) wait(t testing.TB, n int) []recorded {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("recorder got %d of %d exchanges", i, n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.exs[len(r.exs)-n:]
	return append([]recorded(nil), out...)
}

// waitID returns the exchange with audit id id, failing the test if it is
// not recorded within 10 s. Records are built off the connection, so
// exchanges can reach the recorder in another order than their responses
// reached the client; wait's tokens are left alone.
func (r *testRecorder) waitID(t testing.TB, id string) recorded {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		for _, ex := range r.exs {
			if ex.AuditID.String() == id {
				r.mu.Unlock()
				return ex
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("exchange %s was not recorded", id)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type testGateway struct {
	*Gateway
	URL string
	rec *testRecorder
	reg *prometheus.Registry
}

// startGateway serves opts on a loopback port until the test ends.
func startGateway(t testing.TB, opts Options) *testGateway {
	t.Helper()
	rec := newTestRecorder()
	reg := prometheus.NewRegistry()
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	if _, ok := t.(*testing.B); ok {
		log = zap.NewNop()
	}
	g, err := New(opts, rec, log, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	scheme := "http://"
	if opts.TLS != nil {
		scheme = "https://"
	}
	return &testGateway{Gateway: g, URL: scheme + ln.Addr().String(), rec: rec, reg: reg}
}

// oneRoute is a gateway configuration with a single catch-all route.
func oneRoute(upstream string) Options {
	return Options{Forwarded: DefaultForwarded, Routes: []Route{{Name: "test", Upstream: upstream}}}
}

// rawClient does not decompress, retry or pool across tests.
func rawClient(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
