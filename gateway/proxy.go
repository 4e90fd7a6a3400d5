package gateway

import (
	"bytes"
	"net"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

const headerAuditID = "X-Audit-Id"

// handle proxies one request. It returns once the upstream's response
// headers are in; fasthttp then streams the body through responseStream,
// which finishes the exchange.
func (g *Gateway) handle(ctx *fasthttp.RequestCtx) {
	ex := acquireExchange()
	ex.Start = time.Now()
	ex.setID(g.ids.next())
	g.active.Add(1)
	g.m.inFlight.Inc()
	copyRequest(ctx, ex)

	t := g.cur.Load()
	// Routing and forwarding both use the raw path: fasthttp's ctx.Path()
	// is normalized (dot segments resolved, %2F decoded), so a route chosen
	// on it would not be the one whose prefix the forwarded path has.
	path, query, ok := splitTarget(ctx.Request.Header.RequestURI())
	rt := match(t.routes, ctx.Host(), path, ctx.IsTLS())
	if !ok || !normalPath(path) {
		// Shaped like the errors of the route the raw path names, which
		// the client meant to call; counted and recorded under no route.
		proto := ProtocolAuto
		if rt != nil {
			proto = rt.protocol
		}
		g.refuse(ctx, ex, proto, path, refusedPath)
		return
	}
	if rt == nil {
		g.answer(ctx, ex, nil, OutcomeNoRoute)
		return
	}
	ex.Route, ex.Policy, ex.UpstreamURL = rt.Name, rt.Policy, rt.up.url

	declared := ctx.Request.Header.ContentLength()
	limit := orDefault(rt.MaxRequestBody, defaultMaxRequestBody)
	if limit > 0 && int64(declared) > limit {
		// Refuse before forwarding anything; the connection closes so that
		// the unread rest of the body is not parsed as the next request.
		ctx.SetConnectionClose()
		g.answer(ctx, ex, rt, OutcomeRequestTooLarge)
		return
	}

	req := fasthttp.AcquireRequest()
	g.upstreamRequest(ctx, req, rt, &t.fwd, ex, path, query)
	var rs *requestStream
	capture := orDefault(rt.MaxCapture, defaultMaxCapture)
	switch {
	case declared > 0 && declared <= maxPrebuffer && declared <= capture:
		// A small body is read whole into the capture buffer, so that
		// headers and body go upstream in one write.
		if err := ex.reqTee.readFull(ctx.RequestBodyStream(), int64(declared)); err != nil {
			fasthttp.ReleaseRequest(req)
			ex.reqTee.finish(false)
			ctx.SetConnectionClose()
			g.answer(ctx, ex, rt, OutcomeClientGone)
			return
		}
		req.SetBodyRaw(ex.RequestBody.Data)
	case declared > 0 || declared == -1: // -1: chunked
		rs = &ex.reqStream
		*rs = requestStream{src: ctx.RequestBodyStream(), tee: &ex.reqTee, capture: capture, limit: limit}
		req.SetBodyStream(rs, declared)
	}
	if t.audit != nil {
		if o, ok := t.audit.admit(rt, ex, req, &rs, capture, limit); !ok {
			fasthttp.ReleaseRequest(req)
			ex.reqTee.finish(false)
			if o == OutcomeStrictTooLarge || o == OutcomeRequestTooLarge || o == OutcomeClientGone {
				ctx.SetConnectionClose()
			}
			g.answer(ctx, ex, rt, o)
			return
		}
	}

	resp := fasthttp.AcquireResponse()
	ex.UpstreamStart = time.Now()
	err := rt.up.hc.Do(req, resp)
	ex.FirstByte = time.Now()
	fasthttp.ReleaseRequest(req)
	ex.reqTee.finish(rs == nil || rs.eof || ex.RequestBody.Size == int64(declared))

	if err != nil {
		fasthttp.ReleaseResponse(resp)
		o := classify(err, rs)
		if ce := g.log.Check(zap.WarnLevel, "upstream request failed"); ce != nil {
			ce.Write(zap.String("route", rt.Name), zap.String("upstream", rt.up.url),
				zap.String("outcome", o.String()), zap.Error(err), zap.Stringer("audit_id", ex.AuditID))
		}
		if o == OutcomeRequestTooLarge || o == OutcomeClientGone {
			ctx.SetConnectionClose()
		}
		g.answer(ctx, ex, rt, o)
		return
	}
	rt.m.upstream.Observe(ex.FirstByte.Sub(ex.UpstreamStart).Seconds())
	g.respond(ctx, ex, rt, resp)
}

// copyRequest copies what the exchange needs out of fasthttp's buffers,
// which are reused once the handler returns.
func copyRequest(ctx *fasthttp.RequestCtx, ex *Exchange) {
	ex.Method = append(ex.Method[:0], ctx.Method()...)
	ex.Host = append(ex.Host[:0], ctx.Host()...)
	ex.URI = append(ex.URI[:0], ctx.Request.Header.RequestURI()...)
	copyConn(ctx, ex)
	ctx.Request.Header.VisitAll(ex.reqHeads.adder(&ex.RequestHeaders))
}

// copyConn copies the client's address and TLS state.
func copyConn(ctx *fasthttp.RequestCtx, ex *Exchange) {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		ex.ClientAddr = a.AddrPort()
	}
	if ctx.IsTLS() {
		ex.TLS = true
		if st := ctx.TLSConnectionState(); st != nil && len(st.PeerCertificates) > 0 {
			ex.PeerCertificate = st.PeerCertificates[0]
		}
	}
}

// upstreamRequest fills req from the client's request: same method, raw
// path (rebased on the route's upstream) and query, and headers less the
// hop-by-hop ones, plus X-Forwarded-* and X-Audit-Id.
func (g *Gateway) upstreamRequest(ctx *fasthttp.RequestCtx, req *fasthttp.Request, rt *route, fwd *Forwarded, ex *Exchange, path, query []byte) {
	ctx.Request.Header.CopyTo(&req.Header)
	// Every spelling of the fields the gateway sets goes, so that none the
	// client sent reaches the upstream beside the gateway's; those it does
	// not set (forwarded: off) pass untouched.
	drop := dropExpect | dropAuditID
	if fwd.For {
		drop |= dropForwardedFor
	}
	if fwd.Proto {
		drop |= dropForwardedProto
	}
	if fwd.Host {
		drop |= dropForwardedHost
	}
	xff := ex.scrub.scrub(&req.Header, &ctx.Request.Header, drop, ex.fwdBuf[:0])
	ex.uriBuf = rt.upstreamURI(ex.uriBuf[:0], path, query)
	req.Header.SetRequestURIBytes(ex.uriBuf)
	if !rt.PreserveHost {
		req.Header.SetHostBytes(rt.up.host)
	}
	if rt.up.https {
		req.URI().SetScheme("https")
	}
	if fwd.For {
		if ex.ClientAddr.IsValid() {
			if len(xff) > 0 {
				xff = append(xff, ", "...)
			}
			xff = ex.ClientAddr.Addr().Unmap().AppendTo(xff)
		}
		if len(xff) > 0 {
			req.Header.SetBytesV("X-Forwarded-For", xff)
		}
		ex.fwdBuf = xff
	}
	if fwd.Proto {
		if ctx.IsTLS() {
			req.Header.Set("X-Forwarded-Proto", "https")
		} else {
			req.Header.Set("X-Forwarded-Proto", "http")
		}
	}
	if fwd.Host && len(ctx.Host()) > 0 {
		req.Header.SetBytesV("X-Forwarded-Host", ctx.Host())
	}
	// The upstream sees the audit id too, replacing any the client sent,
	// so that its own logs can be joined with the trail.
	req.Header.SetBytesV(headerAuditID, ex.idBuf)
}

// maxPrebuffer is the largest body of declared length that is read whole
// before the response is written. Most non-streamed model answers fit;
// writing status, headers and body at once saves the client a wake-up per
// response, and an upstream that breaks off mid-body then gets the client a
// clean 502 instead of a truncated 200.
const maxPrebuffer = 64 << 10

// respond hands the upstream's response to fasthttp: status and headers
// now, the body as a stream written after the handler returns.
func (g *Gateway) respond(ctx *fasthttp.RequestCtx, ex *Exchange, rt *route, resp *fasthttp.Response) {
	size := int64(resp.Header.ContentLength())
	if size < 0 {
		size = -1 // chunked, or delimited by close: chunked to the client
	}
	capture := orDefault(rt.MaxCapture, defaultMaxCapture)
	src := resp.BodyStream()
	if ctx.IsHead() {
		src = nil // no body comes, whatever the headers say
	}
	var bodyTime time.Duration
	prebuffer := src != nil && size > 0 && size <= maxPrebuffer && size <= int64(capture) &&
		!bytes.HasPrefix(resp.Header.ContentType(), []byte("text/event-stream"))
	if prebuffer {
		start := time.Now()
		err := ex.respTee.readFull(src, size)
		bodyTime = time.Since(start)
		if err != nil {
			if cs, ok := src.(fasthttp.ReadCloserWithError); ok {
				_ = cs.CloseWithError(err)
			}
			fasthttp.ReleaseResponse(resp)
			if ce := g.log.Check(zap.WarnLevel, "upstream response body broke off"); ce != nil {
				ce.Write(zap.String("route", rt.Name), zap.String("upstream", rt.up.url), zap.Error(err), zap.Stringer("audit_id", ex.AuditID))
			}
			ex.respTee.reset(&ex.ResponseBody)
			g.answer(ctx, ex, rt, OutcomeUpstreamBroken)
			return
		}
	}

	h := &ctx.Response.Header
	resp.Header.CopyTo(h)
	// CopyTo takes the upstream response's setting, under which fasthttp
	// would add a Content-Type the upstream did not send.
	h.SetNoDefaultContentType(true)
	ex.scrub.scrub(h, &resp.Header, dropAuditID, nil)
	h.SetBytesV(headerAuditID, ex.idBuf)
	ex.Status = resp.StatusCode()
	s := &ex.respStream
	*s = responseStream{g: g, ex: ex, rt: rt, size: size, capture: capture}
	switch {
	case prebuffer:
		// The upstream connection goes back to its pool before the client
		// is written to.
		fasthttp.ReleaseResponse(resp)
		ex.bodyReader.Reset(ex.ResponseBody.Data)
		s.src, s.teed = &ex.bodyReader, true
	case src == nil:
		fasthttp.ReleaseResponse(resp)
		s.src, s.eof = &ex.bodyReader, true
	default:
		// Headers go out as soon as the upstream sent them, without waiting
		// for the first body bytes (a model's first token can take a while).
		// A body of unknown length is written chunk by chunk, each flushed
		// as it is read: body bytes that came with the headers then go out
		// in the same write.
		ctx.Response.ImmediateHeaderFlush = size >= 0 || !bodyArrived(resp)
		s.upstream, s.src = resp, src
	}
	ctx.SetBodyStream(s, int(size))
	h.VisitAll(ex.respHeads.adder(&ex.ResponseHeaders))
	rt.m.added.Observe((ex.UpstreamStart.Sub(ex.Start) + time.Since(ex.FirstByte) - bodyTime).Seconds())
}

// answer writes the gateway's own response for an outcome, shaped like the
// route's protocol's errors.
func (g *Gateway) answer(ctx *fasthttp.RequestCtx, ex *Exchange, rt *route, o Outcome) {
	proto := ProtocolAuto
	if rt != nil {
		proto = rt.protocol
	}
	ex.errBuf = appendErrorBody(ex.errBuf[:0], protocolFor(proto, ctx.Path()), o, ex.AuditID)
	g.writeAnswer(ctx, ex, rt, o, outcomeStatus(o))
}

// refuse answers a request the gateway will not route, shaped like proto's
// errors (resolved from path when ProtocolAuto).
func (g *Gateway) refuse(ctx *fasthttp.RequestCtx, ex *Exchange, proto Protocol, path []byte, r refusal) {
	ex.errBuf = appendRefusalBody(ex.errBuf[:0], protocolFor(proto, path), r, ex.AuditID)
	g.writeAnswer(ctx, ex, nil, outcomeRefused, r.status())
}

// writeAnswer sends ex.errBuf as the response, through the same stream as
// an upstream's body, so that the exchange is finished and recorded the
// same way.
func (g *Gateway) writeAnswer(ctx *fasthttp.RequestCtx, ex *Exchange, rt *route, o Outcome, status int) {
	ex.Outcome = o
	ex.bodyReader.Reset(ex.errBuf)
	ex.Status = status

	closeConn := ctx.Response.ConnectionClose()
	ctx.Response.Reset()
	if closeConn {
		ctx.Response.SetConnectionClose()
	}
	ctx.SetStatusCode(ex.Status)
	h := &ctx.Response.Header
	h.SetContentType("application/json")
	h.SetBytesV(headerAuditID, ex.idBuf)
	if o == OutcomeUpstreamBusy || o == OutcomeTrailUnavailable {
		h.Set("Retry-After", "1")
	}
	s := &ex.respStream
	*s = responseStream{g: g, ex: ex, rt: rt, src: &ex.bodyReader, size: int64(len(ex.errBuf)), capture: len(ex.errBuf)}
	ctx.SetBodyStream(s, len(ex.errBuf))
	h.VisitAll(ex.respHeads.adder(&ex.ResponseHeaders))
}

// finish accounts for an exchange and hands it to the recorder.
func (g *Gateway) finish(rt *route, ex *Exchange) {
	rm := g.noRoute
	if rt != nil {
		rm = rt.m
	}
	rm.countStatus(ex.Status)
	rm.outcomes[ex.Outcome].Inc()
	rm.bytesIn.Add(float64(ex.RequestBody.Size))
	rm.bytesOut.Add(float64(ex.ResponseBody.Size))
	g.m.inFlight.Dec()
	if ce := g.log.Check(zap.DebugLevel, "exchange"); ce != nil {
		ce.Write(zap.Stringer("audit_id", ex.AuditID), zap.String("route", ex.Route),
			zap.ByteString("method", ex.Method), zap.ByteString("path", logPath(ex.URI)),
			zap.Int("status", ex.Status), zap.Stringer("outcome", ex.Outcome),
			zap.Int64("request_bytes", ex.RequestBody.Size), zap.Int64("response_bytes", ex.ResponseBody.Size),
			zap.Duration("duration", ex.End.Sub(ex.Start)))
	}
	a := g.cur.Load().audit
	// finish runs inside fasthttp's writing of the response, before its
	// last bytes are flushed to the client: the record is built by the
	// recorder goroutines, so that the client does not wait for it. Past a
	// bound of records queued, it is built here, which slows the
	// connection down instead of holding more exchanges.
	if !g.recorders.offer(recordJob{g, a, rt, ex}) {
		g.recordExchange(a, rt, ex)
	}
}

// recordExchange builds and hands on the exchange's record, then releases
// the exchange; the gateway's drain waits for it.
func (g *Gateway) recordExchange(a *audit, rt *route, ex *Exchange) {
	defer g.active.Add(-1)
	if a != nil {
		a.record(g, rt, ex)
	}
	g.record(ex)
	releaseExchange(ex)
}

// record hands ex to the recorder. A recorder that panics loses that one
// exchange, counted and logged, instead of the process: the client has its
// response already.
func (g *Gateway) record(ex *Exchange) {
	defer func() {
		if p := recover(); p != nil {
			g.m.recorderPanics.Inc()
			g.log.Error("recorder panicked; exchange not recorded",
				zap.Stringer("audit_id", ex.AuditID), zap.Any("panic", p), zap.Stack("stack"))
		}
	}()
	g.rec.Record(ex)
}

// logPath is the path of a raw request target, for the log: never the
// query, which can carry API keys (?key=) and personal data that records
// redact, nor an absolute-form target's user info.
func logPath(uri []byte) []byte {
	if path, _, ok := splitTarget(uri); ok {
		return path
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// handleParseError answers requests fasthttp could not parse; they never
// reach a route or an upstream, but are answered with an audit id and
// recorded like every other.
func (g *Gateway) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	ex := acquireExchange()
	ex.Start = time.Now()
	ex.setID(g.ids.next())
	g.active.Add(1)
	g.m.inFlight.Inc()
	r := refusedMalformed
	if _, ok := err.(*fasthttp.ErrSmallBuffer); ok {
		r = refusedHeadersTooLarge
	} else if isTimeout(err) {
		r = refusedTimeout
	}
	var path []byte
	// fasthttp empties the header when it cannot parse it; what it did
	// parse (a request whose URI or body then failed) is copied.
	if h := &ctx.Request.Header; h.Len() > 0 {
		ex.Method = append(ex.Method[:0], h.Method()...)
		ex.Host = append(ex.Host[:0], h.Host()...)
		ex.URI = append(ex.URI[:0], h.RequestURI()...)
		h.VisitAll(ex.reqHeads.adder(&ex.RequestHeaders))
		path, _, _ = splitTarget(ex.URI)
	}
	copyConn(ctx, ex)
	g.refuse(ctx, ex, ProtocolAuto, path, r)
}
