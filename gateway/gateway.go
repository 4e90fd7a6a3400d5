// Package gateway is auditgate's reverse proxy: it routes each request to an
// upstream model API, streams bodies both ways untouched while teeing a
// capped, hashed copy of each, and hands every finished exchange to a
// Recorder. It also serves the admin API (health, readiness, metrics).
package gateway

import (
	"crypto/tls"
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

	// Shutdown state; see shutdown.go.
	active        atomic.Int64 // exchanges not yet recorded
	recorders     recorders
	lifecycleMu   sync.Mutex
	shuttingDown  bool
	listeners     []net.Listener
	clientConns   connSet
	upstreamConns connSet
}

// table is the part of the configuration that a reload swaps atomically.
type table struct {
	routes []*route
	fwd    Forwarded
	audit  *audit // nil: exchanges are not turned into records
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
		pool:   nil,
		listen: opts.Listen,
		tls:    opts.TLS,
	}
	g.recorders.init()
	if g.listen == "" {
		g.listen = defaultListen
	}
	g.pool = newUpstreamPool(&g.upstreamConns)
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
		ConnState:                     g.clientConns.track,
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
	g.cur.Store(&table{routes: routes, fwd: opts.Forwarded, audit: newAudit(opts.Audit, g.m)})
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
