package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"hash"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Recorder receives every finished exchange.
//
// Record is called exactly once per request the gateway answered, after the
// response was written to the client (or writing it failed), on the
// connection's goroutine, concurrently with other calls. The exchange and
// every slice in it are reused after Record returns: a recorder copies what
// it keeps.
type Recorder interface {
	Record(ex *Exchange)
}

// Closer is implemented by recorders that hold resources; the gateway calls
// Close after the last in-flight exchange was recorded on shutdown.
type Closer interface {
	Close(ctx context.Context) error
}

// Outcome says how an exchange ended.
type Outcome uint8

const (
	// OutcomeOK: the upstream's whole response reached the client.
	OutcomeOK Outcome = iota
	// OutcomeNoRoute: no route matched; the gateway answered 404.
	OutcomeNoRoute
	// OutcomeRequestTooLarge: the request body exceeded the route's limit
	// and the gateway answered 413.
	OutcomeRequestTooLarge
	// OutcomeUpstreamUnavailable: the upstream could not be reached, reset
	// the connection or answered with something that is not HTTP; 502.
	OutcomeUpstreamUnavailable
	// OutcomeUpstreamTimeout: the upstream did not answer in time; 504.
	OutcomeUpstreamTimeout
	// OutcomeUpstreamBusy: the route's connection limit was reached; 503.
	OutcomeUpstreamBusy
	// OutcomeUpstreamBroken: the upstream's response started but its body
	// broke off (reset, idle timeout, malformed chunking); the client got a
	// truncated body.
	OutcomeUpstreamBroken
	// OutcomeClientGone: the client went away before the whole response
	// was written to it; the upstream request was cancelled if it was
	// still running.
	OutcomeClientGone
)

var outcomeNames = [...]string{
	OutcomeOK:                  "ok",
	OutcomeNoRoute:             "no_route",
	OutcomeRequestTooLarge:     "request_too_large",
	OutcomeUpstreamUnavailable: "upstream_unavailable",
	OutcomeUpstreamTimeout:     "upstream_timeout",
	OutcomeUpstreamBusy:        "upstream_busy",
	OutcomeUpstreamBroken:      "upstream_broken",
	OutcomeClientGone:          "client_gone",
}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Header is one header field as it appeared on the wire (name case kept).
type Header struct {
	Name, Value []byte
}

// Headers holds header fields copied out of fasthttp's buffers into one
// arena, so an exchange owns its bytes after the handler returned.
type Headers struct {
	Fields []Header
	arena  []byte
	addFn  func(name, value []byte)
}

// adder returns h.add as a func value made once per Headers, since the
// Headers live in pooled exchanges and fasthttp's visitors take a func.
func (h *Headers) adder() func(name, value []byte) {
	if h.addFn == nil {
		h.addFn = h.add
	}
	return h.addFn
}

// Get returns the first value of name (ASCII case-insensitive), or nil.
func (h *Headers) Get(name string) []byte {
	for i := range h.Fields {
		if asciiEqualFold(h.Fields[i].Name, name) {
			return h.Fields[i].Value
		}
	}
	return nil
}

func (h *Headers) reset() {
	h.Fields = h.Fields[:0]
	h.arena = h.arena[:0]
}

// add copies name and value into the arena. When the arena grows, fields
// added earlier keep pointing into the old array, which is never written
// again, so they stay valid.
func (h *Headers) add(name, value []byte) {
	start := len(h.arena)
	h.arena = append(h.arena, name...)
	h.arena = append(h.arena, value...)
	mid, end := start+len(name), len(h.arena)
	h.Fields = append(h.Fields, Header{Name: h.arena[start:mid:mid], Value: h.arena[mid:end:end]})
}

// Body is what the gateway saw of one message body: a capped copy, the
// exact size, and the SHA-256 of every byte that crossed the gateway.
type Body struct {
	// Data holds the first bytes of the body, up to the route's MaxCapture,
	// as they were on the wire (still content-encoded, if they were).
	Data []byte
	// Size counts every byte of the body that crossed the gateway.
	Size int64
	// SHA256 is the hash of those Size bytes, whatever was captured.
	SHA256 [32]byte
	// Truncated is set when Data holds less than Size bytes.
	Truncated bool
	// Complete is set when the body was read to its end; otherwise it was
	// cut short (client or upstream gone, limit reached).
	Complete bool

	h hash.Hash
}

func (b *Body) reset() {
	b.Data = b.Data[:0]
	b.Size = 0
	b.SHA256 = [32]byte{}
	b.Truncated = false
	b.Complete = false
	if b.h == nil {
		b.h = sha256.New()
	} else {
		b.h.Reset()
	}
}

// write tees p: every byte is hashed and counted, the first max kept.
func (b *Body) write(p []byte, max int) {
	if len(p) == 0 {
		return
	}
	b.h.Write(p)
	b.Size += int64(len(p))
	if room := max - len(b.Data); room > 0 {
		if room > len(p) {
			room = len(p)
		}
		b.Data = append(b.Data, p[:room]...)
	}
	if int64(len(b.Data)) < b.Size {
		b.Truncated = true
	}
}

// readFull reads a body of n bytes whole into Data, hashing it.
func (b *Body) readFull(r io.Reader, n int64) error {
	b.Data = slices.Grow(b.Data[:0], int(n))[:n]
	if _, err := io.ReadFull(r, b.Data); err != nil {
		b.Data = b.Data[:0]
		return err
	}
	b.h.Write(b.Data)
	b.Size = n
	return nil
}

func (b *Body) finish(complete bool) {
	b.h.Sum(b.SHA256[:0])
	b.Complete = complete
}

// Exchange is one request and its response as the gateway handled them.
type Exchange struct {
	// AuditID is the exchange's UUIDv7, also sent to the client in
	// X-Audit-Id.
	AuditID ID
	// Route and Policy name the matched route and its capture policy;
	// empty when no route matched.
	Route, Policy string

	// Method, Host and URI (path and raw query) as the client sent them.
	Method, Host, URI []byte
	// ClientAddr is the peer address of the client connection.
	ClientAddr netip.AddrPort
	// TLS is set when the client connected over TLS; PeerCertificate is its
	// verified client certificate, if it presented one.
	TLS             bool
	PeerCertificate *x509.Certificate

	RequestHeaders Headers
	RequestBody    Body

	// Status is the status code the client received (the upstream's, or
	// the gateway's own on errors).
	Status          int
	ResponseHeaders Headers
	ResponseBody    Body

	// Start is when the gateway began handling the request, UpstreamStart
	// when it began sending it upstream, FirstByte when the upstream's
	// response headers had arrived, End when the response was finished
	// (written, or abandoned). Zero when a step did not happen.
	Start, UpstreamStart, FirstByte, End time.Time

	// Outcome says how the exchange ended; ClientGone is also set when the
	// client vanished after an upstream error was already known.
	Outcome    Outcome
	ClientGone bool

	// UpstreamURL is the base URL the request was sent to.
	UpstreamURL string

	// Scratch space reused across requests, so the proxy path does not
	// allocate.
	reqStream  requestStream
	respStream responseStream
	scrub      scrubber
	uriBuf     []byte
	fwdBuf     []byte
	idBuf      []byte
	errBuf     []byte
	bodyReader bytes.Reader // over errBuf, or a prebuffered body
}

var exchangePool = sync.Pool{New: func() any { return new(Exchange) }}

func acquireExchange() *Exchange {
	ex := exchangePool.Get().(*Exchange)
	ex.RequestBody.reset()
	ex.ResponseBody.reset()
	return ex
}

func releaseExchange(ex *Exchange) {
	ex.Route, ex.Policy, ex.UpstreamURL = "", "", ""
	ex.Method, ex.Host, ex.URI = ex.Method[:0], ex.Host[:0], ex.URI[:0]
	ex.uriBuf = ex.uriBuf[:0]
	ex.ClientAddr = netip.AddrPort{}
	ex.TLS, ex.PeerCertificate = false, nil
	ex.RequestHeaders.reset()
	ex.ResponseHeaders.reset()
	ex.Status = 0
	ex.Start, ex.UpstreamStart, ex.FirstByte, ex.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	ex.Outcome, ex.ClientGone = OutcomeOK, false
	ex.bodyReader.Reset(nil)
	ex.reqStream, ex.respStream = requestStream{}, responseStream{}
	// Drop buffers that a huge exchange grew, so the pool does not pin them.
	const keep = 4 << 20
	if cap(ex.RequestBody.Data) > keep {
		ex.RequestBody.Data = nil
	}
	if cap(ex.ResponseBody.Data) > keep {
		ex.ResponseBody.Data = nil
	}
	exchangePool.Put(ex)
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
