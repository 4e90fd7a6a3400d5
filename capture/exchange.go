package capture

import (
	"crypto/x509"
	"encoding/hex"
	"net/netip"
	"time"
)

// ID is an exchange's audit id: a UUIDv7 (RFC 9562), so ids sort by time.
type ID [16]byte

// String returns the canonical 8-4-4-4-12 hex form.
func (id ID) String() string {
	var b [36]byte
	id.encode(&b)
	return string(b[:])
}

// AppendText appends the canonical form to dst.
func (id ID) AppendText(dst []byte) []byte {
	var b [36]byte
	id.encode(&b)
	return append(dst, b[:]...)
}

func (id ID) encode(b *[36]byte) {
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], id[10:16])
}

// Header is one header field as it appeared on the wire (name case kept).
type Header struct {
	Name, Value []byte
}

// Headers is a message's header fields in wire order.
type Headers struct {
	Fields []Header
}

// Get returns the first value of name (ASCII case-insensitive), or nil.
func (h *Headers) Get(name string) []byte {
	for i := range h.Fields {
		if equalFold(h.Fields[i].Name, name) {
			return h.Fields[i].Value
		}
	}
	return nil
}

// Body is what the gateway saw of one message body.
type Body struct {
	// Data holds the first bytes of the body, up to the capture cap, as
	// they were on the wire (still content-encoded, if they were).
	Data []byte
	// Size counts every byte of the body that crossed the gateway.
	Size int64
	// SHA256 is the hash of those Size bytes.
	SHA256 [32]byte
	// Truncated is set when Data holds less than Size bytes.
	Truncated bool
	// Complete is set when the body was read to its end.
	Complete bool
}

// Exchange is one request and its response as the gateway handled them:
// the input of capture. Its slices are valid only while the gateway hands
// the exchange over.
type Exchange struct {
	AuditID       ID
	Route, Policy string
	// Method, Host and URI (path and raw query) as the client sent them.
	Method, Host, URI []byte
	ClientAddr        netip.AddrPort
	TLS               bool
	// PeerCertificate is the client's verified certificate, if any.
	PeerCertificate *x509.Certificate

	RequestHeaders Headers
	RequestBody    Body

	Status          int
	ResponseHeaders Headers
	ResponseBody    Body

	// Start: request received; UpstreamStart: sent upstream; FirstByte:
	// upstream's response headers in; End: response finished. Zero when a
	// step did not happen.
	Start, UpstreamStart, FirstByte, End time.Time

	Outcome    Outcome
	ClientGone bool
	// UpstreamURL is the base URL the request was sent to.
	UpstreamURL string
}

// Outcome says how an exchange ended.
type Outcome uint8

const (
	OutcomeOK                  Outcome = iota // the whole response reached the client
	OutcomeNoRoute                            // no route matched; the gateway answered 404
	OutcomeRequestTooLarge                    // the body exceeded the route's limit; 413
	OutcomeUpstreamUnavailable                // refused, reset, or not HTTP; 502
	OutcomeUpstreamTimeout                    // no answer in time; 504
	OutcomeUpstreamBusy                       // the route's connection limit; 503
	OutcomeUpstreamBroken                     // the response body broke off
	OutcomeClientGone                         // the client left before the whole response reached it
	OutcomeTrailUnavailable                   // the trail could not take the record and the policy fails closed; 503
	OutcomeStrictTooLarge                     // strict durability: the body is over the capture cap it is buffered to; 413
	OutcomeBadRequest                         // malformed, or a path not in normal form; 400 (431 for headers too large)
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
	OutcomeTrailUnavailable:    "trail_unavailable",
	OutcomeStrictTooLarge:      "strict_body_too_large",
	OutcomeBadRequest:          "bad_request",
}

// NumOutcomes is the number of outcomes, for tables indexed by Outcome.
const NumOutcomes = len(outcomeNames)

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
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
