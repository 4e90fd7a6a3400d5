package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// mockShutdownTimeout bounds Close. Delays and streams stop as soon as
// shutdown starts, so only a stuck client connection can use it up.
const mockShutdownTimeout = 5 * time.Second

// MockServer is a [Mock] serving HTTP on a local address.
type MockServer struct {
	mock    *Mock
	srv     *fasthttp.Server
	ln      net.Listener
	stopCtx func() bool

	served   chan struct{}
	serveErr error

	shutdownOnce sync.Once
	shutdownErr  error
}

// StartMock listens on addr ("127.0.0.1:0" for a free port; "" means the
// same) and serves a new Mock until ctx is done or Close is called.
func StartMock(ctx context.Context, addr string, opts MockOptions) (*MockServer, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for mock upstream on %s: %w", addr, err)
	}
	m := NewMock(opts)
	s := &MockServer{
		mock: m,
		ln:   ln,
		srv: &fasthttp.Server{
			Handler:               m.Handler,
			NoDefaultServerHeader: true,
			// Clients see "Connection: close" during shutdown instead of a
			// keep-alive connection that is about to vanish.
			CloseOnShutdown: true,
		},
		served: make(chan struct{}),
	}
	go s.serve()
	s.stopCtx = context.AfterFunc(ctx, s.shutdown)
	return s, nil
}

func (s *MockServer) serve() {
	defer close(s.served)
	if err := s.srv.Serve(s.ln); err != nil {
		s.serveErr = fmt.Errorf("serve mock upstream on %s: %w", s.Addr(), err)
	}
}

// shutdown stops the server once, whether ctx or Close asks first; a second
// caller waits for the first to finish.
func (s *MockServer) shutdown() {
	s.shutdownOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mockShutdownTimeout)
		defer cancel()
		if err := s.srv.ShutdownWithContext(ctx); err != nil {
			s.shutdownErr = fmt.Errorf("shut down mock upstream on %s: %w", s.Addr(), err)
		}
		// Shutdown returns at once when Serve has not registered the listener
		// yet; closing it here makes Serve return in that case too.
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) && s.shutdownErr == nil {
			s.shutdownErr = fmt.Errorf("close mock upstream listener on %s: %w", s.Addr(), err)
		}
	})
}

// Close stops the server, ending delays and streams in flight, and waits for
// it to finish serving. It is safe to call more than once.
func (s *MockServer) Close() error {
	s.stopCtx()
	s.shutdown()
	<-s.served
	return errors.Join(s.shutdownErr, s.serveErr)
}

// URL is the server's base URL, "http://" and its address.
func (s *MockServer) URL() string { return "http://" + s.Addr() }

// Addr is the address the server listens on, as host:port.
func (s *MockServer) Addr() string { return s.ln.Addr().String() }

// Mock returns the mock the server serves, for its request count.
func (s *MockServer) Mock() *Mock { return s.mock }
