// Package capture turns a request/response exchange into a Record: the
// protocol profiles (OpenAI, Anthropic, KServe v1 and TF Serving, Open
// Inference Protocol v2 and Triton, SageMaker, MLflow, generic JSON),
// streaming reassembly, caller identity, model version, redaction and body
// hashes, and the record's JSON encoding.
package capture

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Settings are what a capture policy decided for one exchange.
type Settings struct {
	// Input and Output choose what the record holds besides metadata:
	// neither (metadata), the input (request), or both (full). Output
	// includes the rationale.
	Input, Output bool
	// MaxBody caps the bytes of each (decoded) body that the record's
	// input and output are read from; beyond it the record is marked
	// truncated, while the body hashes still cover every byte. If zero,
	// 1 MiB.
	MaxBody int
	// Redactor replaces sensitive values before the record is encoded;
	// nil redacts nothing.
	Redactor *Redactor
}

// DefaultMaxBody is the body cap when Settings.MaxBody is zero.
const DefaultMaxBody = 1 << 20

// CapturerOptions configure a Capturer.
type CapturerOptions struct {
	// Stream is the trail stream id written into every record.
	Stream string
	// Identity identifies callers.
	Identity IdentityOptions
}

// Capturer builds records. It is safe for concurrent use.
type Capturer struct {
	stream string
	ident  *Identifier
	secret []byte
}

// NewCapturer checks o and builds a Capturer.
func NewCapturer(o CapturerOptions) (*Capturer, error) {
	id, err := NewIdentifier(o.Identity)
	if err != nil {
		return nil, err
	}
	return &Capturer{stream: o.Stream, ident: id, secret: o.Identity.Secret}, nil
}

// Secret returns the HMAC secret of key ids, which also keys redaction
// tags, so that an equal value gets an equal tag across records.
func (c *Capturer) Secret() []byte { return c.secret }

// Identifier returns the capturer's caller identifier, for decisions that
// depend on the caller before the record is built.
func (c *Capturer) Identifier() *Identifier { return c.ident }

// scratch holds the buffers one record is built in; pooled.
type scratch struct {
	req, resp, stream             []byte
	input, output, rationale      []byte
	attrs, path, output2, headers []byte
	closed                        []byte // a cut JSON body made whole
	reds                          []Redaction
	flags                         []string
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// AppendRecord builds the exchange's record and appends its JSON line
// (without the newline) to dst.
func (c *Capturer) AppendRecord(dst []byte, ex *Exchange, ro *RouteOptions, s *Settings) []byte {
	sc := scratchPool.Get().(*scratch)
	rec := c.build(ex, ro, s, sc)
	dst = rec.AppendJSON(dst)
	scratchPool.Put(sc)
	return dst
}

// AppendRequestRecord builds the record of a request about to be
// forwarded — caller, model and input, no response — with kind "request",
// and appends its JSON line to dst. Strict durability makes it durable
// before the request goes upstream; the inference record follows with the
// same id.
func (c *Capturer) AppendRequestRecord(dst []byte, ex *Exchange, ro *RouteOptions, s *Settings) []byte {
	sc := scratchPool.Get().(*scratch)
	rs := *s
	rs.Output = false
	var req Exchange
	req.AuditID, req.Start, req.Route, req.Policy = ex.AuditID, ex.Start, ex.Route, ex.Policy
	req.Method, req.Host, req.URI, req.ClientAddr = ex.Method, ex.Host, ex.URI, ex.ClientAddr
	req.TLS, req.PeerCertificate = ex.TLS, ex.PeerCertificate
	req.RequestHeaders, req.RequestBody = ex.RequestHeaders, ex.RequestBody
	rec := c.build(&req, ro, &rs, sc)
	rec.Kind = KindRequest
	dst = rec.AppendJSON(dst)
	scratchPool.Put(sc)
	return dst
}

// Build returns the exchange's record. Its byte slices and strings are
// copies the caller may keep.
func (c *Capturer) Build(ex *Exchange, ro *RouteOptions, s *Settings) Record {
	rec := c.build(ex, ro, s, new(scratch))
	rec.Input, rec.Output, rec.Rationale = bytes.Clone(rec.Input), bytes.Clone(rec.Output), bytes.Clone(rec.Rationale)
	rec.Model.Served, rec.Model.Version = strings.Clone(rec.Model.Served), strings.Clone(rec.Model.Version)
	return rec
}

// build assembles the record in sc's buffers. Its body parts and the
// model's served name and version may point into ex's bodies or sc: it is
// valid until either is reused.
func (c *Capturer) build(ex *Exchange, ro *RouteOptions, s *Settings, sc *scratch) Record {
	if ro == nil {
		ro = &RouteOptions{}
	}
	maxBody := s.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	sc.flags, sc.reds = sc.flags[:0], sc.reds[:0]
	rec := Record{
		ID:             ex.AuditID,
		Time:           ex.Start,
		Kind:           KindInference,
		Stream:         c.stream,
		Route:          ex.Route,
		Method:         string(ex.Method),
		Status:         ex.Status,
		RequestSHA256:  ex.RequestBody.SHA256,
		ResponseSHA256: ex.ResponseBody.SHA256,
	}
	if !ex.End.IsZero() {
		rec.Latency = ex.End.Sub(ex.Start)
	}
	if !ex.FirstByte.IsZero() {
		rec.TTFB = ex.FirstByte.Sub(ex.Start)
	}
	if ex.Outcome != OutcomeOK {
		rec.Error = &Error{Kind: ex.Outcome.String(), Message: outcomeMessage(ex.Outcome)}
	}
	if ex.ClientGone {
		sc.flags = append(sc.flags, FlagClientGone)
	}

	caller, idFlags := c.ident.Identify(ex)
	sc.flags = append(sc.flags, idFlags...)

	path, profile := pathProfile(ex.URI, ro)

	// Bodies, decoded for reading. Model, usage and the other facts are
	// read from all that was captured; the policy's cap applies to what
	// the record holds. Decoding is bounded too, against compression bombs.
	decodeMax := max(maxBody, DefaultMaxBody)
	req, reqCut := sc.body(&sc.req, &ex.RequestBody, ex.RequestHeaders.Get("Content-Encoding"), decodeMax, true)
	resp, respCut := sc.body(&sc.resp, &ex.ResponseBody, ex.ResponseHeaders.Get("Content-Encoding"), decodeMax, false)
	if bytes.HasPrefix(ex.ResponseHeaders.Get("Content-Type"), []byte("text/event-stream")) {
		resp = sc.reassemble(profile, path, resp, respCut)
	}

	var f facts
	switch profile {
	case ProfileOpenAI:
		f = openAI(path, req, resp)
	case ProfileAnthropic:
		f = anthropic(req, resp, sc)
	case ProfileKServe:
		f = kserve(path, req, resp)
	case ProfileTriton:
		f = triton(path, req, resp)
	case ProfileSageMaker:
		f = sageMaker(path, req, resp, &ex.ResponseHeaders)
	case ProfileMLflow:
		f = mlflow(req, resp)
	default:
		f = generic(req, resp, &ro.Extract)
	}
	applyExtract(&f, req, resp, &ro.Extract)
	// What a profile does not recognize (an error answer, an HTML page) is
	// recorded whole rather than lost.
	if f.input == nil {
		f.input = req
	}
	if f.output == nil && f.rationale == nil {
		f.output = resp
	}

	rec.Operation = f.operation
	rec.Usage = f.usage
	rec.Model = Model{Provider: string(profile), Requested: f.requested, Served: f.served, Version: f.version, Digest: ro.Labels.Digest}
	if ro.Provider != "" {
		rec.Model.Provider = ro.Provider
	}
	if rec.Model.Requested == "" {
		rec.Model.Requested = ro.Labels.Model
	}
	if v := versionHeader(ro.VersionHeaders, ex); v != "" {
		rec.Model.Version = v
	}
	if rec.Model.Version == "" {
		rec.Model.Version = ro.Labels.Version
	}

	r := s.Redactor
	rec.Path = string(sc.redactText(r, path, "path"))
	if len(path) < len(ex.URI) {
		// The query can carry anything a form can: redact it like text.
		rec.Path += string(sc.redactText(r, ex.URI[len(path):], "path"))
	}
	caller.Headers = sc.redactHeaders(r, caller.Headers)
	rec.Caller = caller
	rec.Attributes = sc.attributes(r, req, resp, &ro.Extract)
	if s.Input {
		rec.Input = sc.value(r, &sc.input, f.input, "input", FlagRequestNotJSON, FlagRequestTruncated, maxBody, reqCut)
	}
	if s.Output {
		rec.Output = sc.value(r, &sc.output2, f.output, "output", FlagResponseNotJSON, FlagResponseTruncated, maxBody, respCut)
		rec.Rationale = sc.value(r, &sc.rationale, f.rationale, "rationale", "", FlagResponseTruncated, maxBody, respCut)
	}
	for _, fl := range sc.flags {
		switch fl {
		case FlagRequestTruncated, FlagResponseTruncated, FlagDecodeLimit, FlagRequestIncomplete,
			FlagResponseIncomplete, FlagStreamIncomplete:
			rec.Truncated = true
		}
	}
	rec.Flags = sc.flags
	rec.Redactions = sc.reds
	return rec
}

// body returns the bytes the record is read from: the captured body,
// decoded if it was content-encoded (at most max bytes), and whether they
// may be only its beginning: the capture cap or the wire cut it, or
// decoding stopped early.
func (sc *scratch) body(buf *[]byte, b *Body, encoding []byte, max int, isReq bool) (data []byte, prefix bool) {
	truncated, incomplete := FlagResponseTruncated, FlagResponseIncomplete
	if isReq {
		truncated, incomplete = FlagRequestTruncated, FlagRequestIncomplete
	}
	if b.Truncated {
		sc.flags = append(sc.flags, truncated)
		prefix = true
	}
	if !b.Complete && b.Size > 0 {
		sc.flags = append(sc.flags, incomplete)
		prefix = true
	}
	data = b.Data
	if len(encoding) > 0 && !asciiEqualFoldString(encoding, "identity") {
		var fl []string
		*buf, fl = Decode((*buf)[:0], data, encoding, max)
		sc.flags = append(sc.flags, fl...)
		for _, f := range fl {
			if f == FlagDecodeLimit || f == FlagDecodeError {
				prefix = true
			}
		}
		return *buf, prefix
	}
	return data, prefix
}

// reassemble turns a streamed answer into the non-streamed one. cut says
// body is only the beginning of the stream: each text still being streamed
// then loses its last cutHold bytes, where a value split by the cut would
// pass the detectors unseen.
func (sc *scratch) reassemble(p Profile, path, body []byte, cut bool) []byte {
	var (
		out      []byte
		complete bool
		err      error
	)
	switch {
	case p == ProfileAnthropic:
		out, complete, err = reassembleAnthropic(sc.stream[:0], body, cut)
	case p == ProfileOpenAI && bytes.HasSuffix(path, []byte("/chat/completions")):
		out, complete, err = reassembleOpenAI(sc.stream[:0], body, true, cut)
	case p == ProfileOpenAI && bytes.HasSuffix(path, []byte("/completions")):
		out, complete, err = reassembleOpenAI(sc.stream[:0], body, false, cut)
	case p == ProfileOpenAI && bytes.HasSuffix(path, []byte("/responses")):
		out, complete, err = reassembleResponses(sc.stream[:0], body, cut)
	default:
		return body
	}
	if err != nil {
		return body
	}
	sc.stream = out
	if !complete {
		sc.flags = append(sc.flags, FlagStreamIncomplete)
	}
	return out
}

// value returns a body part as the JSON value the record holds: redacted
// JSON as is, text as a JSON string, binary as {"base64": ...}. A part
// longer than max is cut to max bytes, flagged cut; notJSON flags a part
// that was not JSON to begin with. A part that may be only the beginning
// of what was sent (prefix, or cut here) is made whole if it is a JSON
// object or array (closeJSONPrefix), so that redaction paths still apply;
// as text it loses its last cutHold bytes, where a value split by the cut
// would pass the detectors unseen.
func (sc *scratch) value(r *Redactor, buf *[]byte, v []byte, root, notJSON, cut string, max int, prefix bool) []byte {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil
	}
	if len(v) > max {
		v = v[:max]
		if !slices.Contains(sc.flags, cut) {
			sc.flags = append(sc.flags, cut)
		}
		notJSON = ""
		prefix = true
	}
	if r != nil && !prefix && (v[0] == '{' || v[0] == '[') {
		// The redactor's walk is itself a strict JSON parser, so a whole
		// object or array it accepts needs no separate validation pass;
		// anything it refuses takes the path below.
		n0 := len(sc.reds)
		var ok bool
		*buf, sc.reds, ok = r.redact((*buf)[:0], v, root, sc.reds)
		if ok {
			if utf8.Valid(v) {
				return *buf
			}
			sc.reds = sc.reds[:n0] // redacted again below, once the UTF-8 is repaired
		}
	}
	valid := gjson.ValidBytes(v)
	closed := false
	if !valid && prefix && (v[0] == '{' || v[0] == '[') {
		var ok bool
		sc.closed, ok = closeJSONPrefix(sc.closed[:0], v)
		if ok && gjson.ValidBytes(sc.closed) {
			v, valid, closed = sc.closed, true, true
		}
	}
	if valid {
		if !utf8.Valid(v) {
			// Valid JSON may still carry invalid UTF-8 inside its strings;
			// a record line is always UTF-8. JSON's own syntax is ASCII,
			// so replacing the bad bytes keeps the structure.
			v = bytes.ToValidUTF8(v, []byte("\uFFFD"))
			closed = false
			if !slices.Contains(sc.flags, FlagInvalidUTF8) {
				sc.flags = append(sc.flags, FlagInvalidUTF8)
			}
		}
		if r == nil {
			if closed {
				// sc.closed is reused by the next part.
				*buf = append((*buf)[:0], v...)
				return *buf
			}
			return v
		}
		var ok bool
		*buf, sc.reds, ok = r.redact((*buf)[:0], v, root, sc.reds)
		if ok {
			return *buf
		}
		// JSON nested deeper than the redactor walks is recorded as
		// text, so that the detectors still see it.
		notJSON = ""
	}
	if notJSON != "" {
		sc.flags = append(sc.flags, notJSON)
	}
	text := v
	if prefix {
		text = cutText(v)
	}
	if utf8.Valid(text) {
		if r != nil {
			sc.path, sc.reds = r.RedactString(sc.path[:0], text, root, sc.reds)
			text = sc.path
		}
		*buf = appendBytesString((*buf)[:0], text)
		return *buf
	}
	if !slices.Contains(sc.flags, FlagInvalidUTF8) {
		sc.flags = append(sc.flags, FlagInvalidUTF8)
	}
	b := append((*buf)[:0], `{"base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, v)
	*buf = append(b, `"}`...)
	return *buf
}

// redactText redacts a plain string part of the record (the path).
func (sc *scratch) redactText(r *Redactor, s []byte, where string) []byte {
	if r == nil {
		return s
	}
	var out []byte
	out, sc.reds = r.RedactString(nil, s, where, sc.reds)
	return out
}

func (sc *scratch) redactHeaders(r *Redactor, hs [][2]string) [][2]string {
	if r == nil || len(hs) == 0 {
		return hs
	}
	for i := range hs {
		var out []byte
		out, sc.reds = r.RedactString(nil, []byte(hs[i][1]), "caller.headers."+hs[i][0], sc.reds)
		hs[i][1] = string(out)
	}
	return hs
}

// attributes builds the record's attributes object from the route's
// extract paths: the decision first, then the named attributes in name
// order.
func (sc *scratch) attributes(r *Redactor, req, resp []byte, x *Extract) []byte {
	if x.Decision == "" && len(x.Attributes) == 0 {
		return nil
	}
	b := append(sc.attrs[:0], '{')
	add := func(name, path string, preferResponse bool) {
		v := extract(req, resp, path, preferResponse)
		if !v.Exists() {
			return
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendString(b, name)
		b = append(b, ':')
		b = append(b, v.Raw...)
	}
	if x.Decision != "" {
		add("decision", x.Decision, true)
	}
	for _, name := range sortedKeys(x.Attributes) {
		add(name, x.Attributes[name], false)
	}
	b = append(b, '}')
	sc.attrs = b
	if len(b) == 2 {
		return nil
	}
	if r != nil {
		var ok bool
		sc.headers, sc.reds, ok = r.redact(sc.headers[:0], b, "attributes", sc.reds)
		if !ok {
			return nil // nested deeper than redaction walks
		}
		return sc.headers
	}
	return b
}

func versionHeader(names []string, ex *Exchange) string {
	for _, n := range names {
		if v := ex.ResponseHeaders.Get(n); len(v) > 0 {
			return string(v)
		}
		if v := ex.RequestHeaders.Get(n); len(v) > 0 {
			return string(v)
		}
	}
	return ""
}

func asciiEqualFoldString(b []byte, s string) bool { return equalFold(b, s) }
