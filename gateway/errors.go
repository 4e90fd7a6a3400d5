package gateway

import (
	"bytes"
	"errors"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

var (
	// errRequestTooLarge stops a request body at the route's limit.
	errRequestTooLarge = errors.New("request body exceeds the route's limit")
	// errClientGone marks an upstream body abandoned because the client
	// could not be written to.
	errClientGone = errors.New("client went away")
)

// classify maps an error from the upstream round trip to how the exchange
// ended. The request stream's own state is checked first: a failed upload
// reads as a failed write to the upstream.
func classify(err error, reqStream *requestStream) Outcome {
	if reqStream != nil {
		switch {
		case reqStream.tooLarge:
			return OutcomeRequestTooLarge
		case reqStream.clientErr != nil:
			return OutcomeClientGone
		}
	}
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return OutcomeUpstreamBusy
	case isTimeout(err):
		return OutcomeUpstreamTimeout
	}
	return OutcomeUpstreamUnavailable
}

func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// outcomeStatus is the code the gateway answers for an outcome it produced itself.
func outcomeStatus(o Outcome) int {
	switch o {
	case OutcomeNoRoute:
		return fasthttp.StatusNotFound
	case OutcomeRequestTooLarge:
		return fasthttp.StatusRequestEntityTooLarge
	case OutcomeUpstreamTimeout:
		return fasthttp.StatusGatewayTimeout
	case OutcomeUpstreamBusy, OutcomeTrailUnavailable:
		return fasthttp.StatusServiceUnavailable
	case OutcomeStrictTooLarge:
		return fasthttp.StatusRequestEntityTooLarge
	case OutcomeBadRequest:
		return fasthttp.StatusBadRequest
	case OutcomeClientGone:
		// nginx's "client closed request"; nobody reads it, the trail does.
		return 499
	}
	return fasthttp.StatusBadGateway
}

// outcomeMessage is what the client reads: what happened and what to do, never
// internal error text.
func outcomeMessage(o Outcome) string {
	switch o {
	case OutcomeNoRoute:
		return "no route matches this host and path; check the gateway's routes"
	case OutcomeRequestTooLarge:
		return "request body is larger than this route allows"
	case OutcomeUpstreamTimeout:
		return "the model server did not answer in time; retry later"
	case OutcomeUpstreamBusy:
		return "the gateway has no free connection to the model server; retry later"
	case OutcomeClientGone:
		return "client closed the request"
	case OutcomeTrailUnavailable:
		return "the gateway cannot write its audit trail, and this route does not forward unaudited requests; retry later"
	case OutcomeStrictTooLarge:
		return "this route records every request durably before forwarding it, and buffers at most its capture limit to do so; send a smaller body, or raise the route's max_capture"
	}
	return "the model server could not be reached or broke the connection; retry later"
}

// outcomeErrorType names the error in each protocol's vocabulary.
func outcomeErrorType(o Outcome, p Protocol) string {
	switch p {
	case ProtocolAnthropic:
		switch o {
		case OutcomeNoRoute:
			return "not_found_error"
		case OutcomeRequestTooLarge, OutcomeStrictTooLarge:
			return "request_too_large"
		case OutcomeUpstreamBusy, OutcomeTrailUnavailable:
			return "overloaded_error"
		case OutcomeUpstreamTimeout:
			return "timeout_error"
		}
		return "api_error"
	case ProtocolOpenAI:
		switch o {
		case OutcomeNoRoute, OutcomeRequestTooLarge, OutcomeStrictTooLarge:
			return "invalid_request_error"
		}
		return "server_error"
	}
	return o.String()
}

// protocolFor resolves ProtocolAuto from the request path.
func protocolFor(p Protocol, path []byte) Protocol {
	if p != ProtocolAuto {
		return p
	}
	switch {
	case bytes.HasPrefix(path, []byte("/v1/messages")) || bytes.HasPrefix(path, []byte("/v1/complete")) && !bytes.HasPrefix(path, []byte("/v1/completions")):
		return ProtocolAnthropic
	case bytes.HasPrefix(path, []byte("/v1/")) || bytes.HasPrefix(path, []byte("/openai/")):
		return ProtocolOpenAI
	}
	return ProtocolPlain
}

// refusal is why the gateway refuses a request before choosing a route:
// the client's error, answered 4xx.
type refusal uint8

const (
	refusedMalformed       refusal = iota // fasthttp could not parse the request
	refusedHeadersTooLarge                // the request head is over the read buffer
	refusedPath                           // the request path is not one normalPath accepts
	refusedTimeout                        // the request did not arrive within the read timeout
)

// outcomeRefused is how a refused request ends; the status (400, 431)
// tells the refusals apart.
const outcomeRefused = OutcomeBadRequest

func (r refusal) status() int {
	switch r {
	case refusedHeadersTooLarge:
		return fasthttp.StatusRequestHeaderFieldsTooLarge
	case refusedTimeout:
		return fasthttp.StatusRequestTimeout
	}
	return fasthttp.StatusBadRequest
}

// String is the refusal's error type in plain bodies and its code in
// OpenAI-shaped ones.
func (r refusal) String() string {
	switch r {
	case refusedHeadersTooLarge:
		return "headers_too_large"
	case refusedPath:
		return "invalid_path"
	case refusedTimeout:
		return "request_timeout"
	}
	return "bad_request"
}

func (r refusal) message() string {
	switch r {
	case refusedHeadersTooLarge:
		return "request headers are larger than 16 KiB"
	case refusedPath:
		return notNormal + "; send the path in normal form"
	case refusedTimeout:
		return "the request did not arrive within the gateway's read timeout; send it faster, or raise read_timeout"
	}
	return "malformed HTTP request"
}

// appendRefusalBody writes the protocol's error JSON for a refusal.
func appendRefusalBody(dst []byte, p Protocol, r refusal, auditID ID) []byte {
	typ := r.String()
	if p == ProtocolOpenAI || p == ProtocolAnthropic {
		typ = "invalid_request_error"
	}
	return appendError(dst, p, typ, r.message(), r.String(), auditID)
}

// appendErrorBody writes the protocol's error JSON for an outcome.
func appendErrorBody(dst []byte, p Protocol, o Outcome, auditID ID) []byte {
	return appendError(dst, p, outcomeErrorType(o, p), outcomeMessage(o), o.String(), auditID)
}

// appendError writes an error body in p's shape. Every string written is an
// ASCII constant that needs no escaping.
func appendError(dst []byte, p Protocol, typ, msg, code string, auditID ID) []byte {
	switch p {
	case ProtocolAnthropic:
		dst = append(dst, `{"type":"error","error":{"type":"`...)
		dst = append(dst, typ...)
		dst = append(dst, `","message":"`...)
		dst = append(dst, msg...)
		dst = append(dst, `"},"request_id":"`...)
		dst = auditID.AppendText(dst)
		return append(dst, `"}`...)
	case ProtocolOpenAI:
		dst = append(dst, `{"error":{"message":"`...)
		dst = append(dst, msg...)
		dst = append(dst, `","type":"`...)
		dst = append(dst, typ...)
		dst = append(dst, `","param":null,"code":"`...)
		dst = append(dst, code...)
		return append(dst, `"}}`...)
	}
	dst = append(dst, `{"error":{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","message":"`...)
	dst = append(dst, msg...)
	dst = append(dst, `","audit_id":"`...)
	dst = auditID.AppendText(dst)
	return append(dst, `"}}`...)
}
