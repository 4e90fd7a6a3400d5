// Package gateway is auditgate's reverse proxy: it routes each request to an
// upstream model API, streams bodies both ways untouched while teeing a
// capped, hashed copy of each, and hands every finished exchange to a
// Recorder. It also serves the admin API (health, readiness, metrics).
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Gateway is the proxy. Create it with New, run it with Serve or
// ListenAndServe, change its routes with Reload and stop it with Shutdown.
type Gateway struct {
	log  *zap.Logger
	rec  Recorder
	m    *metrics
	ids  idSource
	pool *upstreamPool

	listen  string
	srv     *fasthttp.Server
	tls     *ListenerTLS
	tlsConf atomic.Pointer[tls.Config]

	cur      atomic.Pointer[table]
	reloadMu sync.Mutex
	noRoute  *routeMetrics
	ready    atomic.Bool
}

// table is the part of the configuration that a reload swaps atomically.
type table struct {
	routes []*route
	fwd    Forwarded
}

// New checks opts and builds a gateway. rec receives every exchange (nil
// records nothing); reg, if not nil, gets the gateway's metrics.
func New(opts Options, rec Recorder, log *zap.Logger, reg prometheus.Registerer) (*Gateway, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if rec == nil {
		rec = nopRecorder{}
	}
	g := &Gateway{
		log:    log,
		rec:    rec,
		m:      newMetrics(reg),
		pool:   newUpstreamPool(),
		listen: opts.Listen,
		tls:    opts.TLS,
	}
	if g.listen == "" {
		g.listen = defaultListen
	}
	g.noRoute = g.m.forRoute(noRoute)
	tc, err := listenerTLSConfig(opts.TLS)
	if err != nil {
		return nil, err
	}
	if err := g.swap(opts); err != nil {
		return nil, err
	}
	g.tlsConf.Store(tc)
	g.srv = &fasthttp.Server{
		Handler:      g.handle,
		ErrorHandler: g.handleParseError,
		Logger:       fasthttpLogger{log},
		Concurrency:  opts.MaxConcurrency,
		ReadTimeout:  orDefault(opts.ReadTimeout, defaultReadTimeout),
		IdleTimeout:  orDefault(opts.IdleTimeout, defaultIdleTimeout),
		// Room for large headers (long JWTs, cookies) without 431s.
		ReadBufferSize: 16 << 10,
		// Bodies stream through; the route's limit applies, not fasthttp's.
		MaxRequestBodySize:            math.MaxInt,
		StreamRequestBody:             true,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		ReduceMemoryUsage:             false,
	}
	g.ready.Store(true)
	return g, nil
}

// Reload swaps in new routes, forwarded-header settings and listener
// certificates. It is all or nothing: on error the running configuration
// stays. The listen address, and whether the listener uses TLS at all,
// take effect on restart.
func (g *Gateway) Reload(opts Options) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	var tc *tls.Config
	if (opts.TLS == nil) != (g.tls == nil) {
		g.log.Warn("turning listener TLS on or off takes effect on restart")
	} else if g.tls != nil {
		var err error
		if tc, err = listenerTLSConfig(opts.TLS); err != nil {
			return err
		}
	}
	if err := g.swap(opts); err != nil {
		return err
	}
	if tc != nil {
		g.tlsConf.Store(tc)
	}
	if l := opts.Listen; l != "" && l != g.listen {
		g.log.Warn("listen address changes take effect on restart", zap.String("running", g.listen), zap.String("configured", l))
	}
	return nil
}

func (g *Gateway) swap(opts Options) error {
	routes, err := compileRoutes(opts.Routes, g.pool, g.m)
	if err != nil {
		return err
	}
	g.cur.Store(&table{routes: routes, fwd: opts.Forwarded})
	g.pool.retain(routes)
	return nil
}

// ListenAndServe listens on the configured address and serves until
// Shutdown.
func (g *Gateway) ListenAndServe() error {
	ln, err := net.Listen("tcp", g.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", g.listen, err)
	}
	return g.Serve(ln)
}

// Serve serves the proxy on ln until Shutdown. It returns nil after a
// graceful shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	if g.tls != nil {
		ln = tls.NewListener(ln, g.tlsConfig())
	}
	return g.srv.Serve(ln)
}

// Shutdown stops accepting connections, waits for in-flight requests
// (streamed responses included) until ctx is done, then closes the
// recorder. Exchanges cut off by ctx are still recorded when their
// connections close.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.ready.Store(false)
	err := g.srv.ShutdownWithContext(ctx)
	if err != nil {
		err = fmt.Errorf("drain in-flight requests: %w", err)
	}
	g.pool.closeIdle()
	if c, ok := g.rec.(Closer); ok {
		if cerr := c.Close(ctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close recorder: %w", cerr))
		}
	}
	return err
}

// Ready reports whether the gateway accepts traffic (false once shutdown
// began).
func (g *Gateway) Ready() bool { return g.ready.Load() }

type nopRecorder struct{}

func (nopRecorder) Record(*Exchange) {}

// fasthttpLogger routes fasthttp's own messages (mostly connection errors)
// to zap at debug level: they are the client's problems, not the gateway's.
type fasthttpLogger struct{ log *zap.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "fasthttp"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, args...)))
	}
}
