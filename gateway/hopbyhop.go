package gateway

import (
	"bytes"
	"iter"
)

// hopByHop are the connection-specific fields a proxy must not forward
// (RFC 9110 §7.6.1), plus the proxy-authentication fields, which are meant
// for this hop, and Transfer-Encoding, which fasthttp frames itself.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate",
}

// fhHeader is what fasthttp's request and response headers share.
type fhHeader interface {
	All() iter.Seq2[[]byte, []byte]
	DelBytes(key []byte)
	ResetConnectionClose()
}

// scrubber finds hop-by-hop fields, whatever their case: with header-name
// normalization off (needed for fidelity), fasthttp deletes only the exact
// spelling it is given. Its buffers are reused across requests.
type scrubber struct {
	names  [][]byte // exact spellings to delete
	tokens [][]byte // field names listed in Connection
	buf    []byte
}

// scrub removes hop-by-hop fields and the fields Connection names from h,
// and drops extra, where not empty (Expect, answered by the gateway).
func (s *scrubber) scrub(h fhHeader, extra string) {
	s.names, s.tokens, s.buf = s.names[:0], s.tokens[:0], s.buf[:0]
	for k, v := range h.All() {
		if !isHopByHop(k) && (extra == "" || !asciiEqualFold(k, extra)) {
			continue
		}
		s.names = append(s.names, s.keep(k))
		if asciiEqualFold(k, "Connection") {
			for tok := range bytes.SplitSeq(v, []byte(",")) {
				if tok = bytes.TrimSpace(tok); len(tok) > 0 {
					s.tokens = append(s.tokens, s.keep(tok))
				}
			}
		}
	}
	if len(s.tokens) > 0 {
		for k := range h.All() {
			for _, t := range s.tokens {
				if bytes.EqualFold(k, t) {
					s.names = append(s.names, s.keep(k))
					break
				}
			}
		}
	}
	for _, n := range s.names {
		h.DelBytes(n)
	}
	h.ResetConnectionClose()
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
