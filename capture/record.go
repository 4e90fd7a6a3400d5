package capture

import (
	"time"
)

// Record kinds (the record's "kind").
const (
	KindRequest   = "request"   // strict mode's record, written before forwarding
	KindInference = "inference" // one finished exchange
	KindEvent     = "event"
	KindLineage   = "lineage"
	KindAlert     = "alert"
	KindGap       = "gap"
	KindHeartbeat = "heartbeat"
	KindAdmin     = "admin"
)

// Version is the record format's version, the record's "v".
const Version = 1

// Record is one line of the trail. Its JSON encoding (AppendJSON) has a
// fixed key order; docs/record.md describes every key.
type Record struct {
	ID     ID
	Time   time.Time // when the gateway received the request
	Kind   string
	Stream string
	Route  string
	Method string
	Path   string // the request target as the client sent it: path and raw query
	Status int
	// Latency is from receiving the request to finishing the response;
	// TTFB to the upstream's response headers.
	Latency, TTFB time.Duration

	Caller    Caller
	Model     Model
	Operation string // chat, completion, responses, embeddings, messages, predict, classify, regress, explain, infer, invoke

	// Input, Output and Rationale are JSON values (nil encodes as null).
	// Attributes is a JSON object of extra values a route extracts for
	// rules, such as an applicant group; nil encodes as null.
	Input, Output, Rationale, Attributes []byte

	Usage Usage

	RequestSHA256, ResponseSHA256 [32]byte
	// Truncated is set when the input or output holds less than the body
	// did (a size cap, or a body cut short on the wire).
	Truncated bool
	// Flags name what was unusual about the exchange (see the Flag
	// constants), in the order found.
	Flags      []string
	Redactions []Redaction
	// Rules holds verdicts known before the record was written (pre-request
	// rules), as one JSON array; nil encodes as [].
	Rules []byte
	Error *Error
}

// Caller is who made the request. Empty fields are left out of the JSON.
type Caller struct {
	// KeyID is "k_" and the first 16 hex digits of HMAC-SHA256(secret, API
	// key): stable for one key, useless to anyone without the secret.
	KeyID string
	// Subject, Issuer and Audience come from a JWT bearer token; Verified
	// says its signature was checked against a configured key.
	Subject, Issuer, Audience string
	Verified                  bool
	// Claims holds configured extra JWT claims as a JSON object.
	Claims []byte
	// CertSubject and CertFingerprint (SHA-256, hex) identify a verified
	// client certificate.
	CertSubject, CertFingerprint string
	// Headers holds the configured identity headers, name and value.
	Headers [][2]string
	// IP is the client address, taken from X-Forwarded-For when the peer is
	// a trusted proxy.
	IP string
}

// Model is which model answered.
type Model struct {
	Provider  string // openai, anthropic, kserve, triton, sagemaker, mlflow, generic
	Requested string // what the client asked for
	Served    string // what the upstream says answered
	Version   string // the most specific version known: fingerprint, model_version, variant, label
	Digest    string // a configured artifact digest, if any
}

// Usage counts tokens as the provider reports them; zero fields are left
// out. CachedTokens are input tokens read from a prompt cache,
// CacheCreationTokens input tokens written to one (Anthropic); whether
// InputTokens include them depends on the provider (docs/record.md).
type Usage struct {
	InputTokens, OutputTokens, CachedTokens, CacheCreationTokens, ReasoningTokens int64
}

// Redaction says where a value was replaced and what it looked like.
type Redaction struct {
	Where string // a path into the record, such as input.messages[1].content
	Type  string // email, phone, card, ssn, iban, ip, secret, path, ...
}

// Error describes an exchange that did not end well.
type Error struct {
	Kind    string // the gateway's outcome: upstream_timeout, client_gone, ...
	Message string
}

// Flags.
const (
	FlagRequestNotJSON     = "request_not_json"    // the request body is not JSON; input holds it as text or base64
	FlagResponseNotJSON    = "response_not_json"   // likewise for the response
	FlagRequestTruncated   = "request_truncated"   // the captured request body is shorter than the body
	FlagResponseTruncated  = "response_truncated"  // likewise for the response
	FlagRequestIncomplete  = "request_incomplete"  // the request body was cut short on the wire
	FlagResponseIncomplete = "response_incomplete" // likewise for the response
	FlagDecodeLimit        = "decode_limit"        // a compressed body expanded past the cap (a compression bomb, or just large)
	FlagDecodeError        = "decode_error"        // a compressed body could not be decoded
	FlagStreamIncomplete   = "stream_incomplete"   // a streamed answer ended without its final event
	FlagUnknownEncoding    = "unknown_encoding"    // a Content-Encoding capture cannot decode
	FlagInvalidUTF8        = "invalid_utf8"        // text with invalid UTF-8, recorded as base64
	FlagJWTUnverified      = "jwt_unverified"      // a JWT whose signature could not be verified against the configured keys
	FlagClientGone         = "client_gone"         // the client left before the whole response reached it
)
