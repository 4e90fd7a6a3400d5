package bench

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
)

const (
	defaultStreamChunks = 5
	defaultModelSuffix  = "-2024-07-18"
	defaultText         = "Hello! I am the auditgate mock upstream, and this is a short answer."
)

// MockOptions shape the mock's answers. The zero value gives small, fast
// answers.
type MockOptions struct {
	// Delay is the server's think time before it answers. If zero, none.
	Delay time.Duration
	// ResponseSize is the length in bytes of the generated text of chat,
	// completion and message answers. If zero, a short sentence.
	ResponseSize int
	// StreamChunks is the number of content chunks in a streamed answer.
	// If zero, 5.
	StreamChunks int
	// ChunkDelay is the wait between consecutive content chunks of a streamed
	// answer. If zero, none.
	ChunkDelay time.Duration
	// ServedModelSuffix is appended to the requested model to name the model
	// that served the answer. If empty, "-2024-07-18".
	ServedModelSuffix string
}

// Mock is a deterministic model API upstream. Its Handler is safe for
// concurrent use.
type Mock struct {
	opts     MockOptions
	text     answerText
	requests atomic.Uint64
}

// NewMock prepares a mock with opts. Negative sizes and counts count as zero.
func NewMock(opts MockOptions) *Mock {
	if opts.StreamChunks <= 0 {
		opts.StreamChunks = defaultStreamChunks
	}
	if opts.ServedModelSuffix == "" {
		opts.ServedModelSuffix = defaultModelSuffix
	}
	return &Mock{opts: opts, text: newAnswerText(opts.ResponseSize, opts.StreamChunks)}
}

// Requests returns the number of requests the handler has taken, answered or
// still being answered, errors included.
func (m *Mock) Requests() uint64 { return m.requests.Load() }

// answerText is the generated answer, prepared once so that serving it is a
// copy rather than work per request.
type answerText struct {
	text   string
	quoted []byte   // text as a JSON string
	chunks [][]byte // the streamed pieces of text, each as a JSON string
	tokens int
	// messageDelta is the Anthropic stream's closing usage event, which
	// depends only on the text.
	messageDelta string
}

var words = [...]string{
	"the", "gateway", "records", "every", "answer", "in", "a", "signed", "trail",
	"so", "that", "auditors", "can", "check", "each", "decision", "later",
}

func newAnswerText(size, chunks int) answerText {
	text := defaultText
	if size > 0 {
		b := make([]byte, 0, size+16)
		for i := 0; len(b) < size-1; i++ {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, words[i%len(words)]...)
		}
		b = append(b[:size-1], '.')
		if b[0] >= 'a' && b[0] <= 'z' {
			b[0] -= 'a' - 'A'
		}
		text = string(b)
	}
	a := answerText{text: text, quoted: appendJSONString(nil, text), tokens: tokens(len(text))}
	a.messageDelta = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":" +
		strconv.Itoa(a.tokens) + "}}\n\n"
	// Cut just before a space, as tokenizers do, so chunks read like tokens.
	start := 0
	for i := 1; i <= chunks; i++ {
		end := len(text)
		if i < chunks {
			end = max(start, len(text)*i/chunks)
			for end < len(text) && text[end] != ' ' {
				end++
			}
		}
		a.chunks = append(a.chunks, appendJSONString(nil, text[start:end]))
		start = end
	}
	return a
}

// tokens estimates a token count from a byte count, as about four bytes a
// token, and never less than one.
func tokens(n int) int { return max(1, (n+3)/4) }

// endpoint is what a request's method and path ask for.
type endpoint uint8

const (
	endpointUnknown endpoint = iota
	endpointChat
	endpointCompletion
	endpointEmbeddings
	endpointMessages
	endpointInfer
	endpointModels
	endpointHealth
)

// dialect is the API whose error shape an endpoint answers with.
type dialect uint8

const (
	dialectOpenAI dialect = iota
	dialectAnthropic
	dialectOIP
)

// route is a parsed request line. name and version alias the request's path
// and must not outlive the handler call.
type route struct {
	endpoint endpoint
	dialect  dialect
	name     []byte
	version  []byte
}

func routeOf(method, path []byte) route {
	post, get := string(method) == fasthttp.MethodPost, string(method) == fasthttp.MethodGet
	switch string(path) {
	case "/v1/chat/completions":
		if post {
			return route{endpoint: endpointChat}
		}
	case "/v1/completions":
		if post {
			return route{endpoint: endpointCompletion}
		}
	case "/v1/embeddings":
		if post {
			return route{endpoint: endpointEmbeddings}
		}
	case "/v1/messages":
		if post {
			return route{endpoint: endpointMessages, dialect: dialectAnthropic}
		}
	case "/v1/models":
		if get {
			return route{endpoint: endpointModels}
		}
	case "/healthz":
		if get {
			return route{endpoint: endpointHealth}
		}
	}
	rest, ok := bytes.CutPrefix(path, []byte("/v2/models/"))
	if !ok {
		return route{}
	}
	rest, ok = bytes.CutSuffix(rest, []byte("/infer"))
	if !ok || !post {
		return route{dialect: dialectOIP}
	}
	name, version, versioned := bytes.Cut(rest, []byte("/versions/"))
	if !versioned {
		version = []byte("1")
	}
	if len(name) == 0 || len(version) == 0 || bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(version, '/') >= 0 {
		return route{dialect: dialectOIP}
	}
	return route{endpoint: endpointInfer, dialect: dialectOIP, name: name, version: version}
}

// hooks are the per-request overrides read from X-Mock-* headers.
type hooks struct {
	delay      time.Duration
	chunkDelay time.Duration
	status     int
}

// hooks reads the X-Mock-* headers. A header that does not parse yields a
// message for a 400 answer instead of being ignored.
func (m *Mock) hooks(h *fasthttp.RequestHeader) (hk hooks, problem string) {
	hk = hooks{delay: m.opts.Delay, chunkDelay: m.opts.ChunkDelay}
	if v := h.Peek("X-Mock-Status"); v != nil {
		n, err := fasthttp.ParseUint(v)
		if err != nil || n < 400 || n > 599 {
			return hk, "X-Mock-Status must be a status code from 400 to 599"
		}
		hk.status = n
	}
	var ok bool
	if v := h.Peek("X-Mock-Delay"); v != nil {
		if hk.delay, ok = parseDelay(v); !ok {
			return hk, "X-Mock-Delay must be a duration such as 50ms"
		}
	}
	if v := h.Peek("X-Mock-Chunk-Delay"); v != nil {
		if hk.chunkDelay, ok = parseDelay(v); !ok {
			return hk, "X-Mock-Chunk-Delay must be a duration such as 50ms"
		}
	}
	return hk, ""
}

func parseDelay(v []byte) (time.Duration, bool) {
	d, err := time.ParseDuration(string(v))
	return d, err == nil && d >= 0
}

// Handler answers one request; it can serve in any fasthttp server.
func (m *Mock) Handler(ctx *fasthttp.RequestCtx) {
	seq := m.requests.Add(1)
	var idBuf [32]byte
	ctx.Response.Header.SetBytesV("X-Request-Id", strconv.AppendUint(append(idBuf[:0], "req_mock"...), seq, 10))

	rt := routeOf(ctx.Method(), ctx.Path())
	hk, problem := m.hooks(&ctx.Request.Header)
	if problem != "" {
		writeError(ctx, rt.dialect, fasthttp.StatusBadRequest, problem, "")
		return
	}
	if !wait(hk.delay, ctx.Done()) {
		writeError(ctx, rt.dialect, fasthttp.StatusServiceUnavailable, "the mock upstream is shutting down", "")
		return
	}
	if hk.status != 0 {
		writeError(ctx, rt.dialect, hk.status, fasthttp.StatusMessage(hk.status), "")
		return
	}

	switch rt.endpoint {
	case endpointUnknown:
		writeError(ctx, rt.dialect, fasthttp.StatusNotFound, "Invalid URL ("+string(ctx.Method())+" "+string(ctx.Path())+")", "")
		return
	case endpointHealth:
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok")
		return
	case endpointModels:
		ctx.SetContentType("application/json")
		ctx.SetBodyString(modelList)
		return
	}

	body := ctx.PostBody()
	req, problem, param := parseRequest(rt.endpoint, body)
	if problem != "" {
		writeError(ctx, rt.dialect, fasthttp.StatusBadRequest, problem, param)
		return
	}
	a := answer{seq: seq, created: time.Now().Unix(), model: req.model.Str, promptTokens: tokens(len(body))}
	if req.stream && (rt.endpoint == endpointChat || rt.endpoint == endpointCompletion || rt.endpoint == endpointMessages) {
		m.stream(ctx, rt.endpoint, a, req.includeUsage, hk.chunkDelay)
		return
	}
	m.answer(ctx, rt, req, a)
}

// answer writes a whole JSON answer for a request that parseRequest accepted.
func (m *Mock) answer(ctx *fasthttp.RequestCtx, rt route, req request, a answer) {
	bp := getBuf()
	b := (*bp)[:0]
	switch rt.endpoint {
	case endpointChat:
		b = m.appendChat(b, a)
	case endpointCompletion:
		b = m.appendCompletion(b, a)
	case endpointMessages:
		b = m.appendMessage(b, a)
	case endpointEmbeddings:
		b = m.appendEmbeddings(b, a, req.input, req.base64)
	case endpointInfer:
		b = appendInfer(b, rt, req.id, req.inputs)
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	*bp = b
	putBuf(bp)
}

// answer is what one response needs to know about its request.
type answer struct {
	seq          uint64
	created      int64
	model        string
	promptTokens int
}

// request holds the fields the mock reads from a JSON body. Its Results alias
// fasthttp's request buffer and must not outlive the handler call.
type request struct {
	model        gjson.Result
	input        gjson.Result
	id           gjson.Result
	inputs       gjson.Result
	stream       bool
	includeUsage bool
	base64       bool
}

// parseRequest reads the known top-level fields of a JSON object in one pass
// and checks that ep has what it needs. A problem is the message for a 400
// answer, and param the field it is about, if any.
func parseRequest(ep endpoint, body []byte) (req request, problem, param string) {
	if !gjson.ValidBytes(body) {
		return req, "We could not parse the JSON body of your request: it must be a JSON object.", ""
	}
	root := gjson.Parse(view(body))
	if !root.IsObject() {
		return req, "We could not parse the JSON body of your request: it must be a JSON object.", ""
	}
	root.ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "model":
			req.model = value
		case "stream":
			req.stream = value.Type == gjson.True
		case "stream_options":
			req.includeUsage = value.Get("include_usage").Type == gjson.True
		case "input":
			req.input = value
		case "encoding_format":
			req.base64 = value.Str == "base64"
		case "id":
			req.id = value
		case "inputs":
			req.inputs = value
		}
		return true
	})
	switch {
	case ep == endpointInfer:
		if !req.inputs.IsArray() || !req.inputs.Get("0").Exists() {
			return req, "inputs must be a non-empty array of tensors", ""
		}
	case req.model.Type != gjson.String || req.model.Str == "":
		return req, "you must provide a model parameter", "model"
	case ep == endpointEmbeddings && !req.input.Exists():
		return req, "'input' is a required property", "input"
	}
	return req, "", ""
}

// view returns b as a string without copying it, so that gjson can read the
// request body without an allocation per field. The string aliases b.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// maxPooledBuf keeps one huge answer from pinning its buffer in the pool for
// the rest of a run.
const maxPooledBuf = 1 << 20

// bufPool holds answer buffers as *[]byte so that Put does not allocate.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		bufPool.Put(b)
	}
}

// timerPool reuses timers: at thousands of delayed requests a second a fresh
// timer each would be steady garbage. Since Go 1.23, Reset on a stopped timer
// needs no draining.
var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// wait sleeps for d, or less if done closes first, and reports whether it
// slept the whole time. done closes when the server shuts down, so delays and
// streams never hold a shutdown up.
func wait(d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := timerPool.Get().(*time.Timer)
	t.Reset(d)
	defer timerPool.Put(t)
	select {
	case <-t.C:
		return true
	case <-done:
		t.Stop()
		return false
	}
}
