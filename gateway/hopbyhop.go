package gateway

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// hopByHop are the connection-specific fields a proxy must not forward
// (RFC 9110 §7.6.1), plus the proxy-authentication fields, which are meant
// for this hop, and Transfer-Encoding, which fasthttp frames itself.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate",
}

// Fields the gateway answers or sets itself, which scrub drops in every
// spelling when asked to, so that a client or an upstream cannot place its
// own beside the gateway's. Each is a bit of a dropSet.
const (
	dropExpect       dropSet = 1 << iota // the gateway answers 100-continue itself
	dropForwardedFor                     // its values are collected: the gateway appends to them
	dropForwardedProto
	dropForwardedHost
	dropAuditID
)

// dropSet selects the fields scrub drops besides the hop-by-hop ones.
type dropSet uint8

// dropNames are the fields of dropSet's bits, in bit order.
var dropNames = [...]string{"Expect", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", headerAuditID}

// fhHeader is what fasthttp's request and response headers share.
type fhHeader interface {
	VisitAll(f func(key, value []byte))
	DelBytes(key []byte)
	AddBytesKV(key, value []byte)
	ResetConnectionClose()
}

// scrubber finds hop-by-hop fields, and the fields the gateway sets,
// whatever their case: with header-name normalization off (needed for
// fidelity), fasthttp deletes and replaces only the exact spelling it is
// given. Its buffers and visitor funcs are made once per pooled exchange,
// so scrubbing does not allocate.
type scrubber struct {
	names  [][]byte // exact spellings to delete
	tokens [][]byte // field names listed in Connection
	fields [][]byte // dst's field names, when its fields are rebuilt
	buf    []byte
	drop   dropSet
	xff    []byte // the X-Forwarded-For values seen, joined by ", "
	dst    fhHeader
	resp   bool // dst is a response header

	visitFn, tokenFn, fieldFn, addFn func(k, v []byte)
}

// scrub removes from dst, a copy of src, the hop-by-hop fields, the fields
// Connection names and the fields drop selects; the others keep their
// order. When drop has dropForwardedFor, it appends the values of every
// X-Forwarded-For field to xff, in order and joined by ", ", and returns
// it.
func (s *scrubber) scrub(dst, src fhHeader, drop dropSet, xff []byte) []byte {
	s.names, s.tokens, s.buf, s.drop, s.xff = s.names[:0], s.tokens[:0], s.buf[:0], drop, xff
	if s.visitFn == nil {
		s.visitFn, s.tokenFn, s.fieldFn, s.addFn = s.visit, s.visitNamed, s.visitField, s.visitKept
	}
	src.VisitAll(s.visitFn)
	if len(s.tokens) > 0 {
		src.VisitAll(s.tokenFn)
	}
	if len(s.names) > 0 {
		s.rebuild(dst, src)
	}
	dst.ResetConnectionClose()
	xff, s.xff = s.xff, nil
	return xff
}

// rebuild deletes s.names from dst keeping the order of the other fields.
// fasthttp deletes a field by moving the last one into its place, which
// would reorder fields of one name, and RFC 9110 §5.3 forbids a proxy
// that. So every field that fasthttp keeps in its list goes, and those
// kept come back in src's order. The fields it keeps apart (keptApart)
// stay where they are; they move with no deletion.
func (s *scrubber) rebuild(dst, src fhHeader) {
	_, s.resp = dst.(*fasthttp.ResponseHeader)
	s.fields = s.fields[:0]
	dst.VisitAll(s.fieldFn)
	for _, n := range s.fields {
		dst.DelBytes(n)
	}
	for _, n := range s.names {
		if keptApart(n, s.resp) {
			dst.DelBytes(n) // named in Connection
		}
	}
	s.dst = dst
	src.VisitAll(s.addFn)
	s.dst = nil
}

func (s *scrubber) visitField(k, _ []byte) {
	if !keptApart(k, s.resp) {
		s.fields = append(s.fields, s.keep(k))
	}
}

func (s *scrubber) visitKept(k, v []byte) {
	if keptApart(k, s.resp) {
		return
	}
	for _, n := range s.names {
		if bytes.Equal(k, n) {
			return
		}
	}
	s.dst.AddBytesKV(k, v)
}

// keptApart reports whether fasthttp keeps a field of this name in a place
// of its own rather than in its list of fields, and would handle it
// specially if it were added back (it drops an added Date, for one).
// Connection, Transfer-Encoding and Trailer are too, but they are
// hop-by-hop and never kept.
func keptApart(name []byte, response bool) bool {
	if asciiEqualFold(name, "Content-Type") || asciiEqualFold(name, "Content-Length") {
		return true
	}
	if response {
		return asciiEqualFold(name, "Content-Encoding") || asciiEqualFold(name, "Server") ||
			asciiEqualFold(name, "Set-Cookie") || asciiEqualFold(name, "Date")
	}
	return asciiEqualFold(name, "Host") || asciiEqualFold(name, "User-Agent") || asciiEqualFold(name, "Cookie")
}

func (s *scrubber) visit(k, v []byte) {
	if !isHopByHop(k) && !s.dropped(k, v) {
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

// dropped reports whether k is a field of s.drop, collecting the value of
// an X-Forwarded-For.
func (s *scrubber) dropped(k, v []byte) bool {
	for i, name := range dropNames {
		bit := dropSet(1) << i
		if s.drop&bit == 0 || !asciiEqualFold(k, name) {
			continue
		}
		if v = bytes.TrimSpace(v); bit == dropForwardedFor && len(v) > 0 {
			if len(s.xff) > 0 {
				s.xff = append(s.xff, ", "...)
			}
			s.xff = append(s.xff, v...)
		}
		return true
	}
	return false
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
