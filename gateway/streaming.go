package gateway

import (
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// requestStream tees the client's request body on its way upstream: every
// byte is hashed and counted and the first MaxCapture bytes are kept, so the
// body is never held whole. It stops the upload at the route's limit.
type requestStream struct {
	src      io.Reader
	tee      *tee
	capture  int
	limit    int64 // <= 0: unlimited
	eof      bool
	tooLarge bool
	// clientErr is the error reading from the client, when the upload
	// broke off.
	clientErr error
}

func (s *requestStream) Read(p []byte) (int, error) {
	n, err := s.src.Read(p)
	if s.limit > 0 && s.tee.b.Size+int64(n) > s.limit {
		s.tooLarge = true
		return 0, errRequestTooLarge
	}
	s.tee.write(p[:n], s.capture)
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil:
		s.clientErr = err
	}
	return n, err
}

// responseStream is the body the client receives: it reads the upstream's
// body (or the gateway's own error body), tees it like requestStream, and
// when fasthttp is done writing it — to the end, or because the client
// went away — it releases the upstream response and finishes the exchange.
//
// fasthttp flushes every read of a body of unknown length to the client at
// once, so server-sent events reach the client as the upstream sends them.
type responseStream struct {
	g  *Gateway
	ex *Exchange
	rt *route // nil when no route matched

	upstream *fasthttp.Response // nil for the gateway's own answers
	src      io.Reader
	size     int64 // declared length, or -1
	capture  int

	// teed is set when the body was read whole beforehand and is already
	// counted and hashed.
	teed    bool
	eof     bool
	readErr error
	closed  bool
}

func (s *responseStream) Read(p []byte) (int, error) {
	n, err := s.src.Read(p)
	if !s.teed {
		s.ex.respTee.write(p[:n], s.capture)
	}
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil:
		s.readErr = err
	}
	return n, err
}

// CloseWithError is called by fasthttp once per response, after the body
// was written (writeErr nil) or when writing stopped (writeErr says why: a
// client write error, or the error Read returned).
func (s *responseStream) CloseWithError(writeErr error) error {
	if s.closed {
		return nil
	}
	s.closed = true
	ex := s.ex
	complete := s.eof || (s.size >= 0 && ex.ResponseBody.Size == s.size)
	if s.upstream != nil {
		if cs, ok := s.upstream.BodyStream().(fasthttp.ReadCloserWithError); ok {
			var why error
			if !complete {
				// Not read to its end: fasthttp closes the upstream
				// connection, which cancels a response still running.
				why = errClientGone
			}
			_ = cs.CloseWithError(why)
		}
		fasthttp.ReleaseResponse(s.upstream)
		s.upstream = nil
	}
	switch {
	case s.readErr != nil:
		if ex.Outcome == OutcomeOK {
			ex.Outcome = OutcomeUpstreamBroken
		}
	case writeErr != nil || !complete:
		ex.ClientGone = true
		if ex.Outcome == OutcomeOK {
			ex.Outcome = OutcomeClientGone
		}
	}
	ex.respTee.finish(complete)
	ex.End = time.Now()
	s.g.finish(s.rt, ex)
	return nil
}
