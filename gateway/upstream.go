package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// upstream is a pool of keep-alive connections to one upstream base URL.
type upstream struct {
	hc       *fasthttp.HostClient
	url      string
	https    bool
	host     []byte // Host header: the upstream's host[:port]
	basePath []byte
	key      string
}

// upstreamPool keeps one client per distinct upstream setting, so a reload
// that leaves a route's upstream alone keeps its warm connections.
type upstreamPool struct {
	mu      sync.Mutex
	clients map[string]*upstream
	conns   *connSet // every open upstream connection, for a forced shutdown
}

func newUpstreamPool(conns *connSet) *upstreamPool {
	return &upstreamPool{clients: make(map[string]*upstream), conns: conns}
}

func upstreamKey(r Route) string {
	t := r.UpstreamTLS
	return fmt.Sprintf("%s|%v|%v|%v|%d|%v|%s|%s|%v|%p",
		r.Upstream, r.DialTimeout, r.ResponseHeaderTimeout, r.IdleTimeout,
		r.MaxConns, r.MaxIdleConnDuration, t.CAFile, t.ServerName, t.InsecureSkipVerify, t.Config)
}

func (p *upstreamPool) get(r Route) (*upstream, error) {
	key := upstreamKey(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	if up, ok := p.clients[key]; ok {
		return up, nil
	}
	up, err := newUpstream(r, p.conns)
	if err != nil {
		return nil, err
	}
	up.key = key
	p.clients[key] = up
	return up, nil
}

// retain drops the clients no route uses any more. Their in-flight
// requests finish; idle connections are closed.
func (p *upstreamPool) retain(routes []*route) {
	used := make(map[string]bool, len(routes))
	for _, r := range routes {
		used[r.up.key] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, up := range p.clients {
		if !used[key] {
			up.hc.CloseIdleConnections()
			delete(p.clients, key)
		}
	}
}

func (p *upstreamPool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, up := range p.clients {
		up.hc.CloseIdleConnections()
	}
}

func newUpstream(r Route, conns *connSet) (*upstream, error) {
	u, err := parseUpstream(r.Upstream)
	if err != nil {
		return nil, err
	}
	https := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		if https {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	var tlsConf *tls.Config
	if https {
		if tlsConf, err = upstreamTLSConfig(r.UpstreamTLS, u.Hostname()); err != nil {
			return nil, err
		}
	}
	d := dialer{
		dial:   net.Dialer{Timeout: orDefault(r.DialTimeout, defaultDialTimeout), KeepAlive: 30 * time.Second},
		plain:  !https,
		header: orDefault(r.ResponseHeaderTimeout, defaultResponseHeaderTimeout),
		idle:   orDefault(r.IdleTimeout, defaultUpstreamIdleTimeout),
		conns:  conns,
	}
	hc := &fasthttp.HostClient{
		Addr:                          addr,
		NoDefaultUserAgentHeader:      true,
		IsTLS:                         https,
		TLSConfig:                     tlsConf,
		Dial:                          d.Dial,
		MaxConns:                      orDefault(r.MaxConns, defaultMaxConns),
		MaxIdleConnDuration:           orDefault(r.MaxIdleConnDuration, defaultMaxIdleConnDuration),
		MaxIdemponentCallAttempts:     1,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		StreamResponseBody:            true,
		// Bodies are streamed, never held whole, so no size limit applies.
		MaxResponseBodySize: 0,
		// The deadline-owning connections below bound each read and write;
		// fasthttp's own timeouts would bound the whole streamed body.
		ReadTimeout:  0,
		WriteTimeout: 0,
	}
	return &upstream{
		hc:       hc,
		url:      r.Upstream,
		https:    https,
		host:     []byte(u.Host),
		basePath: []byte(u.EscapedPath()),
	}, nil
}

func upstreamTLSConfig(t UpstreamTLS, serverName string) (*tls.Config, error) {
	if t.Config != nil {
		return t.Config, nil
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // documented as for tests only
		// HTTP/1.1 only: the proxy path does not speak HTTP/2.
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	if t.ServerName != "" {
		c.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read upstream CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read upstream CA file %s: no PEM certificate found", t.CAFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// dialer opens upstream connections that own their deadlines: the first
// response byte must come within header of the request being written, and
// after that no read or write may stall for longer than idle. fasthttp's
// client offers only one deadline for a whole response, which would cut off
// long model streams.
type dialer struct {
	dial         net.Dialer
	header, idle time.Duration
	plain        bool // not TLS: the connection reads the response's own bytes
	conns        *connSet
}

func (d *dialer) Dial(addr string) (net.Conn, error) {
	c, err := d.dial.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	dc := &deadlineConn{Conn: c, header: d.header, idle: d.idle, conns: d.conns}
	dc.self = connAddr{Addr: c.LocalAddr(), c: dc}
	dc.scan.on = d.plain
	if d.conns != nil {
		d.conns.add(dc)
	}
	return dc, nil
}

// deadlineConn is used by one request at a time (fasthttp's connection
// pool hands a connection to one request until it is released), so its
// state needs no lock.
type deadlineConn struct {
	net.Conn
	header, idle time.Duration
	awaiting     bool // a request was written; no response byte yet
	conns        *connSet
	self         connAddr
	scan         headScan // the current response, as far as bodyArrived needs
}

// LocalAddr leads a response back to its connection (bodyArrived).
func (c *deadlineConn) LocalAddr() net.Addr { return &c.self }

func (c *deadlineConn) Close() error {
	if c.conns != nil {
		c.conns.remove(c)
	}
	return c.Conn.Close()
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.idle > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
			return 0, err
		}
	}
	if !c.awaiting {
		c.scan.reset() // a new request: its response comes next
	}
	c.awaiting = true
	return c.Conn.Write(p)
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	var d time.Duration
	if c.awaiting {
		d = c.header
	} else {
		d = c.idle
	}
	if d > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(d)); err != nil {
			return 0, err
		}
	} else if err := c.Conn.SetReadDeadline(time.Time{}); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.awaiting = false
		c.scan.read(p[:n])
	}
	return n, err
}

// SetReadDeadline and SetWriteDeadline ignore fasthttp's deadlines: this
// connection sets its own on every read and write.
func (c *deadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }
func (c *deadlineConn) SetDeadline(time.Time) error      { return nil }

// orDefault maps zero to def and negative ("unlimited") to zero.
func orDefault[T int | int64 | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}
