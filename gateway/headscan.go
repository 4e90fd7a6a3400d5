package gateway

import (
	"net"

	"github.com/valyala/fasthttp"
)

// headScan follows the bytes of an upstream response as the connection
// reads them, just far enough to tell whether body bytes arrived with the
// head: then fasthttp's reader holds them, the first read of the body
// returns at once, and the head can go to the client in the same write as
// the body's first bytes, as nginx sends them. When the head came alone,
// it is flushed at once instead: a model's first token can take a while.
//
// It sees a response's bytes only on a plain connection (under TLS the
// connection reads ciphertext), and it is reset when a new request is
// written.
type headScan struct {
	on    bool
	state uint8 // scanHead or scanBody
	match int   // bytes of the terminator matched so far
	seen  int   // bytes of the current head seen, up to its status code
	info  bool  // the current head is a 1xx interim response's
	after int64 // bytes read after the head
	line  int64 // where the first line after the head ends in them (a chunk size), 0 until seen
	size  int64 // the chunk size that line states; -1 if it states none
	ext   bool  // past the size's digits (an extension, or the line's end)
}

const (
	scanHead = iota // in a response head, looking for its blank line
	scanBody        // after the head
	scanLost        // a head this scan does not follow (bare line feeds)
)

// statusDigit is the offset of the status code's first digit in a status
// line ("HTTP/1.1 200").
const statusDigit = len("HTTP/1.1 ")

func (s *headScan) reset() {
	*s = headScan{on: s.on}
}

// read takes the next bytes of the response.
func (s *headScan) read(p []byte) {
	if !s.on {
		return
	}
	for i := 0; i < len(p); {
		switch s.state {
		case scanBody:
			if s.line == 0 {
				s.chunkLine(p[i:])
			}
			s.after += int64(len(p) - i)
			return
		case scanLost:
			return
		}
		c := p[i]
		i++
		if s.seen <= statusDigit {
			if s.seen == statusDigit {
				s.info = c == '1'
			}
			s.seen++
		}
		// The head ends at "\r\n\r\n".
		switch {
		case c == '\r' && s.match%2 == 0:
			s.match++
		case c == '\n' && s.match%2 == 1:
			s.match++
		case c == '\n':
			// A line ended without CR: fasthttp reads such heads, this
			// scan does not, and says nothing of what follows.
			s.state = scanLost
			return
		default:
			s.match = 0
			if c == '\r' {
				s.match = 1
			}
		}
		if s.match == 4 {
			if s.info {
				// fasthttp skips 1xx responses; the final head follows.
				*s = headScan{on: true}
				continue
			}
			s.state, s.match = scanBody, 0
		}
	}
}

// chunkLine follows the first line after the head, p being its next
// bytes, as a chunk-size line: hex digits, perhaps an extension, CRLF.
func (s *headScan) chunkLine(p []byte) {
	for j, c := range p {
		if c == '\n' && s.match == 1 {
			s.line = s.after + int64(j) + 1
			return
		}
		s.match = 0
		switch d := hexDigit(c); {
		case c == '\r':
			s.match, s.ext = 1, true
		case s.ext:
		case c == ';' || c == ' ' || c == '\t':
			s.ext = true
		case d < 0 || s.size > 1<<40:
			s.size, s.ext = -1, true
		default:
			s.size = s.size<<4 | int64(d)
		}
	}
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// bodyArrived says body bytes came with the head, so that fasthttp's first
// read of the body returns without waiting. For a chunked body that takes
// a whole chunk-size line and a byte after it, and not the chunk's data
// whole without the CRLF after it, which fasthttp's read waits for; an
// empty chunked body (its last chunk first, perhaps with trailers, which
// fasthttp reads to their end) never counts: its head goes first.
func (s *headScan) bodyArrived(chunked bool) bool {
	if !s.on || s.state != scanBody {
		return false
	}
	if !chunked {
		return s.after > 0
	}
	if s.line == 0 || s.size <= 0 || s.after <= s.line {
		return false
	}
	end := s.line + s.size // the chunk's data ends here; its CRLF follows
	return s.after < end || s.after >= end+2
}

// connAddr is an upstream connection's local address. fasthttp hands it to
// each response it reads there (Response.LocalAddr), which leads
// bodyArrived back to the connection.
type connAddr struct {
	net.Addr
	c *deadlineConn
}

// bodyArrived says the upstream sent body bytes of resp together with its
// head; false when that is unknown.
func bodyArrived(resp *fasthttp.Response) bool {
	a, ok := resp.LocalAddr().(*connAddr)
	return ok && a.c.scan.bodyArrived(resp.Header.ContentLength() == -1)
}
