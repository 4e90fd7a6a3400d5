package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/auditgate/auditgate/capture"
)

// Recorder receives every finished exchange.
//
// Record is called exactly once per request the gateway answered, after the
// response was written to the client (or writing it failed), usually on a
// goroutine of its own, concurrently with other calls and in no particular
// order, even for one connection's requests. The exchange and
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

// The exchange's types are capture's, so that the recorder hands the
// exchange to capture without copying it.
type (
	ID      = capture.ID
	Outcome = capture.Outcome
	Header  = capture.Header
	Headers = capture.Headers
	Body    = capture.Body
)

// Outcomes; see capture.Outcome.
const (
	OutcomeOK                  = capture.OutcomeOK
	OutcomeNoRoute             = capture.OutcomeNoRoute
	OutcomeRequestTooLarge     = capture.OutcomeRequestTooLarge
	OutcomeUpstreamUnavailable = capture.OutcomeUpstreamUnavailable
	OutcomeUpstreamTimeout     = capture.OutcomeUpstreamTimeout
	OutcomeUpstreamBusy        = capture.OutcomeUpstreamBusy
	OutcomeUpstreamBroken      = capture.OutcomeUpstreamBroken
	OutcomeClientGone          = capture.OutcomeClientGone
	OutcomeTrailUnavailable    = capture.OutcomeTrailUnavailable
	OutcomeStrictTooLarge      = capture.OutcomeStrictTooLarge
	OutcomeBadRequest          = capture.OutcomeBadRequest
)

// headerCopy copies header fields out of fasthttp's buffers into one arena,
// so an exchange owns its bytes after the handler returned.
type headerCopy struct {
	h     *Headers
	arena []byte
	addFn func(name, value []byte)
}

// adder returns add as a func value made once per pooled exchange, since
// fasthttp's visitors take a func.
func (c *headerCopy) adder(h *Headers) func(name, value []byte) {
	c.h = h
	if c.addFn == nil {
		c.addFn = c.add
	}
	return c.addFn
}

// add copies name and value into the arena. When the arena grows, fields
// added earlier keep pointing into the old array, which is never written
// again, so they stay valid.
func (c *headerCopy) add(name, value []byte) {
	start := len(c.arena)
	c.arena = append(c.arena, name...)
	c.arena = append(c.arena, value...)
	mid, end := start+len(name), len(c.arena)
	c.h.Fields = append(c.h.Fields, Header{Name: c.arena[start:mid:mid], Value: c.arena[mid:end:end]})
}

func (c *headerCopy) reset() {
	c.h.Fields = c.h.Fields[:0]
	c.arena = c.arena[:0]
}

// tee keeps what the gateway sees of one body: every byte is hashed and
// counted, the first max kept.
type tee struct {
	b *Body
	h hash.Hash
}

func (t *tee) reset(b *Body) {
	t.b = b
	b.Data = b.Data[:0]
	b.Size = 0
	b.SHA256 = [32]byte{}
	b.Truncated = false
	b.Complete = false
	if t.h == nil {
		t.h = sha256.New()
	} else {
		t.h.Reset()
	}
}

func (t *tee) write(p []byte, limit int) {
	if len(p) == 0 {
		return
	}
	b := t.b
	t.h.Write(p)
	b.Size += int64(len(p))
	if room := limit - len(b.Data); room > 0 {
		if room > len(p) {
			room = len(p)
		}
		if len(b.Data)+room > cap(b.Data) {
			// Double up to the cap: append's 1.25x growth past 256 bytes
			// would allocate about five times the cap on the way to it.
			b.Data = slices.Grow(b.Data, min(max(2*cap(b.Data), len(b.Data)+room), limit)-len(b.Data))
		}
		b.Data = append(b.Data, p[:room]...)
	}
	if int64(len(b.Data)) < b.Size {
		b.Truncated = true
	}
}

// readFull reads a body of n bytes whole into Data, hashing it.
func (t *tee) readFull(r io.Reader, n int64) error {
	b := t.b
	b.Data = slices.Grow(b.Data[:0], int(n))[:n]
	if _, err := io.ReadFull(r, b.Data); err != nil {
		b.Data = b.Data[:0]
		return err
	}
	t.h.Write(b.Data)
	b.Size = n
	return nil
}

// errStrictTooLarge stops a body read whole for strict durability.
var errStrictTooLarge = errors.New("request body exceeds the capture limit of strict durability")

// readAll reads the rest of a body of unknown or large length into Data,
// hashing it, up to limit bytes in all; a longer body is errStrictTooLarge.
func (t *tee) readAll(r io.Reader, limit int64) error {
	b := t.b
	for {
		if len(b.Data) == cap(b.Data) {
			b.Data = slices.Grow(b.Data, int(min(max(2*int64(cap(b.Data)), 4096), limit+1))-len(b.Data))
		}
		n, err := r.Read(b.Data[len(b.Data):cap(b.Data)])
		t.h.Write(b.Data[len(b.Data) : len(b.Data)+n])
		b.Data = b.Data[:len(b.Data)+n]
		b.Size += int64(n)
		switch {
		case b.Size > limit:
			return errStrictTooLarge
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

func (t *tee) finish(complete bool) {
	t.h.Sum(t.b.SHA256[:0])
	t.b.Complete = complete
}

// Exchange is one request and its response as the gateway handled them:
// capture's Exchange, plus the gateway's scratch space.
type Exchange struct {
	capture.Exchange

	reqTee, respTee       tee
	reqHeads, respHeads   headerCopy
	reqStream             requestStream
	respStream            responseStream
	scrub                 scrubber
	uriBuf, fwdBuf, idBuf []byte
	errBuf                []byte
	bodyReader            bytes.Reader // over errBuf, or a prebuffered body
	// trailRefused: forwarded although the trail refused records, under a
	// policy that fails open.
	trailRefused bool
}

var exchangePool = sync.Pool{New: func() any { return new(Exchange) }}

// setID gives ex its audit id, and its text for the headers that carry it.
func (ex *Exchange) setID(id ID) {
	ex.AuditID = id
	ex.idBuf = id.AppendText(ex.idBuf[:0])
}

func acquireExchange() *Exchange {
	ex := exchangePool.Get().(*Exchange)
	ex.reqTee.reset(&ex.RequestBody)
	ex.respTee.reset(&ex.ResponseBody)
	return ex
}

func releaseExchange(ex *Exchange) {
	ex.Route, ex.Policy, ex.UpstreamURL = "", "", ""
	ex.Method, ex.Host, ex.URI = ex.Method[:0], ex.Host[:0], ex.URI[:0]
	ex.ClientAddr = netip.AddrPort{}
	ex.TLS, ex.PeerCertificate = false, nil
	ex.reqHeads.adder(&ex.RequestHeaders)
	ex.reqHeads.reset()
	ex.respHeads.adder(&ex.ResponseHeaders)
	ex.respHeads.reset()
	ex.Status = 0
	ex.Start, ex.UpstreamStart, ex.FirstByte, ex.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	ex.Outcome, ex.ClientGone, ex.trailRefused = OutcomeOK, false, false
	ex.uriBuf = ex.uriBuf[:0]
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
