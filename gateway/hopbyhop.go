package gateway

import "bytes"

// hopByHop are the connection-specific fields a proxy must not forward
// (RFC 9110 §7.6.1), plus the proxy-authentication fields, which are meant
// for this hop, and Transfer-Encoding, which fasthttp frames itself.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate",
}

// fhHeader is what fasthttp's request and response headers share.
type fhHeader interface {
	VisitAll(f func(key, value []byte))
	DelBytes(key []byte)
	ResetConnectionClose()
}

// scrubber finds hop-by-hop fields, whatever their case: with header-name
// normalization off (needed for fidelity), fasthttp deletes only the exact
// spelling it is given. Its buffers and visitor funcs are made once per
// pooled exchange, so scrubbing does not allocate.
type scrubber struct {
	names  [][]byte // exact spellings to delete
	tokens [][]byte // field names listed in Connection
	buf    []byte
	extra  string

	visitFn, tokenFn func(k, v []byte)
}

// scrub removes hop-by-hop fields and the fields Connection names from h,
// and drops extra, where not empty (Expect, answered by the gateway).
func (s *scrubber) scrub(h fhHeader, extra string) {
	s.names, s.tokens, s.buf, s.extra = s.names[:0], s.tokens[:0], s.buf[:0], extra
	if s.visitFn == nil {
		s.visitFn, s.tokenFn = s.visit, s.visitNamed
	}
	h.VisitAll(s.visitFn)
	if len(s.tokens) > 0 {
		h.VisitAll(s.tokenFn)
	}
	for _, n := range s.names {
		h.DelBytes(n)
	}
	h.ResetConnectionClose()
}

func (s *scrubber) visit(k, v []byte) {
	if !isHopByHop(k) && (s.extra == "" || !asciiEqualFold(k, s.extra)) {
		return
	}
	s.names = append(s.names, s.keep(k))
	if !asciiEqualFold(k, "Connection") {
		return
	}
	for len(v) > 0 {
		tok := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if tok = bytes.TrimSpace(tok); len(tok) > 0 {
			s.tokens = append(s.tokens, s.keep(tok))
		}
	}
}

// visitNamed collects the fields that Connection named.
func (s *scrubber) visitNamed(k, _ []byte) {
	for _, t := range s.tokens {
		if bytes.EqualFold(k, t) {
			s.names = append(s.names, s.keep(k))
			return
		}
	}
}

// keep copies b into the scrubber's buffer; fasthttp may reuse b's memory
// while fields are deleted.
func (s *scrubber) keep(b []byte) []byte {
	start := len(s.buf)
	s.buf = append(s.buf, b...)
	return s.buf[start:len(s.buf):len(s.buf)]
}

func isHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if asciiEqualFold(name, h) {
			return true
		}
	}
	return false
}
