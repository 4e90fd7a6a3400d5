package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// recorderCloseTimeout bounds closing the recorder after the drain, which
// may seal what the trail holds; it has its own budget so that a drain that
// used all of its time still leaves the trail time to finish.
const recorderCloseTimeout = 30 * time.Second

// Serve serves the proxy on ln until Shutdown. It returns nil after a
// graceful shutdown, and at once if Shutdown already ran.
func (g *Gateway) Serve(ln net.Listener) error {
	ln = &onceCloseListener{Listener: ln}
	g.lifecycleMu.Lock()
	if g.shuttingDown {
		g.lifecycleMu.Unlock()
		return ln.Close()
	}
	g.listeners = append(g.listeners, ln)
	g.lifecycleMu.Unlock()
	if g.tls != nil {
		ln = tls.NewListener(ln, g.tlsConfig())
	}
	err := g.srv.Serve(ln)
	g.lifecycleMu.Lock()
	stopped := g.shuttingDown
	g.lifecycleMu.Unlock()
	if stopped {
		// Shutdown closed the listener under Serve; that is not an error.
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for in-flight requests,
// streamed responses included, until ctx is done. Requests still running
// then are cut off: their client and upstream connections are closed, so
// that they end and are recorded (as client_gone or upstream_broken). Last,
// it closes the recorder, which then has seen every exchange.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.ready.Store(false)
	g.lifecycleMu.Lock()
	g.shuttingDown = true
	lns := g.listeners
	g.lifecycleMu.Unlock()

	err := g.srv.ShutdownWithContext(ctx)
	// fasthttp forgets a listener that Serve had not registered yet;
	// closing them here stops a Serve that raced with this Shutdown.
	for _, ln := range lns {
		_ = ln.Close()
	}
	if err != nil {
		n := g.active.Load()
		g.log.Warn("drain deadline passed: cutting off requests still running", zap.Int64("requests", n))
		err = fmt.Errorf("drain in-flight requests: %w; cut off %d", err, n)
		g.clientConns.closeAll()
		g.upstreamConns.closeAll()
		g.waitIdle(5 * time.Second)
	} else {
		// The connections are closed, but records are built off them:
		// wait for those too, as long as recording one may take.
		g.waitIdle(recordWait + 5*time.Second)
	}
	g.recorders.close()
	g.pool.closeIdle()
	if c, ok := g.rec.(Closer); ok {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recorderCloseTimeout)
		defer cancel()
		if cerr := c.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close recorder: %w", cerr))
		}
	}
	return err
}

// waitIdle waits until every exchange was recorded, or for d.
func (g *Gateway) waitIdle(d time.Duration) {
	deadline := time.Now().Add(d)
	for g.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := g.active.Load(); n > 0 {
		g.log.Error("exchanges still open after their connections were closed; they will not be recorded before the recorder closes", zap.Int64("exchanges", n))
	}
}

// connSet tracks open connections so a forced shutdown can close them.
// It is touched once per connection, never per request.
type connSet struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[net.Conn]struct{})
	}
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// track is fasthttp's ConnState hook for client connections.
func (s *connSet) track(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		s.add(c)
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.remove(c)
	}
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := make([]net.Conn, 0, len(s.m))
	for c := range s.m {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// onceCloseListener lets both Shutdown and fasthttp close a listener.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
