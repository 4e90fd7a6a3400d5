package bench

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
)

// systemFingerprint stands for the backend build that served an answer. Real
// APIs change it when they redeploy; the mock never does.
const systemFingerprint = "fp_0f03d4f0ee"

const modelList = `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}`

const (
	embeddingDims = 8
	// maxInferOutputs bounds an inference answer whatever the input's size.
	maxInferOutputs = 1024
)

func (m *Mock) appendChat(b []byte, a answer) []byte {
	b = append(b, `{"id":"chatcmpl-mock`...)
	b = strconv.AppendUint(b, a.seq, 10)
	b = append(b, `","object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, a.created, 10)
	b = append(b, `,"model":`...)
	b = m.appendServedModel(b, a.model)
	b = append(b, `,"system_fingerprint":"`+systemFingerprint+`","choices":[{"index":0,"message":{"role":"assistant","content":`...)
	b = append(b, m.text.quoted...)
	b = append(b, `,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":`...)
	b = m.appendOpenAIUsage(b, a.promptTokens)
	return append(b, `,"service_tier":"default"}`...)
}

func (m *Mock) appendCompletion(b []byte, a answer) []byte {
	b = append(b, `{"id":"cmpl-mock`...)
	b = strconv.AppendUint(b, a.seq, 10)
	b = append(b, `","object":"text_completion","created":`...)
	b = strconv.AppendInt(b, a.created, 10)
	b = append(b, `,"model":`...)
	b = m.appendServedModel(b, a.model)
	b = append(b, `,"system_fingerprint":"`+systemFingerprint+`","choices":[{"text":`...)
	b = append(b, m.text.quoted...)
	b = append(b, `,"index":0,"logprobs":null,"finish_reason":"stop"}],"usage":`...)
	b = m.appendOpenAIUsage(b, a.promptTokens)
	return append(b, '}')
}

func (m *Mock) appendMessage(b []byte, a answer) []byte {
	b = append(b, `{"id":"msg_mock`...)
	b = strconv.AppendUint(b, a.seq, 10)
	b = append(b, `","type":"message","role":"assistant","model":`...)
	b = m.appendServedModel(b, a.model)
	b = append(b, `,"content":[{"type":"text","text":`...)
	b = append(b, m.text.quoted...)
	b = append(b, `}],"stop_reason":"end_turn","stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, a.promptTokens, m.text.tokens)
	return append(b, '}')
}

func (m *Mock) appendEmbeddings(b []byte, a answer, input gjson.Result, b64 bool) []byte {
	b = append(b, `{"object":"list","data":[`...)
	n := 0
	each := func(_, v gjson.Result) bool {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, `,"embedding":`...)
		text := v.Raw
		if v.Type == gjson.String {
			text = v.Str
		}
		b = appendVector(b, embed(text), b64)
		b = append(b, '}')
		n++
		return true
	}
	// An array of strings or of token arrays is one input per element; a
	// string, or a single array of tokens, is one input.
	if first := input.Get("0"); input.IsArray() && (first.Type == gjson.String || first.IsArray()) {
		input.ForEach(each)
	} else {
		each(gjson.Result{}, input)
	}
	b = append(b, `],"model":`...)
	b = m.appendServedModel(b, a.model)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(a.promptTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(a.promptTokens), 10)
	return append(b, `}}`...)
}

// appendVector writes v as a JSON array of numbers, or as the base64 of its
// little-endian float32s, which is what encoding_format "base64" asks for.
func appendVector(b []byte, v [embeddingDims]float32, b64 bool) []byte {
	if b64 {
		var raw [embeddingDims * 4]byte
		for i, f := range v {
			binary.LittleEndian.PutUint32(raw[i*4:], math.Float32bits(f))
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, raw[:])
		return append(b, '"')
	}
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	return append(b, ']')
}

// embed derives a unit vector from text, so that equal inputs get equal
// embeddings and different inputs almost surely differ.
func embed(text string) [embeddingDims]float32 {
	var v [embeddingDims]float32
	h := fnv1a(text)
	var sum float64
	for i := range v {
		h = splitmix(h)
		v[i] = float32(h>>40)/(1<<23) - 1
		sum += float64(v[i]) * float64(v[i])
	}
	if sum > 0 {
		norm := float32(math.Sqrt(sum))
		for i := range v {
			v[i] /= norm
		}
	}
	return v
}

func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// appendInfer answers an Open Inference Protocol request with one FP32 output
// holding a score in [0, 1) for each value of the first input tensor.
func appendInfer(b []byte, rt route, id, inputs gjson.Result) []byte {
	b = append(b, `{"model_name":`...)
	b = appendJSONString(b, rt.name)
	b = append(b, `,"model_version":`...)
	b = appendJSONString(b, rt.version)
	if id.Exists() {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id.String())
	}
	data := inputs.Get("0.data")
	count := scores{}
	count.visit(data)
	k := max(count.n, 1)
	b = append(b, `,"outputs":[{"name":"output0","shape":[1,`...)
	b = strconv.AppendInt(b, int64(k), 10)
	b = append(b, `],"datatype":"FP32","data":[`...)
	if count.n == 0 {
		b = append(b, '0')
	} else {
		out := scores{b: b, write: true}
		out.visit(data)
		b = out.b
	}
	return append(b, `]}]}`...)
}

// scores walks the values of a tensor's data, flattening nested arrays in
// row-major order, and counts or writes one score per value.
type scores struct {
	b     []byte
	n     int
	write bool
}

func (s *scores) visit(v gjson.Result) {
	if v.IsArray() {
		v.ForEach(func(_, e gjson.Result) bool {
			s.visit(e)
			return s.n < maxInferOutputs
		})
		return
	}
	if !v.Exists() || s.n >= maxInferOutputs {
		return
	}
	if s.write {
		if s.n > 0 {
			s.b = append(s.b, ',')
		}
		score := float32(splitmix(fnv1a(v.Raw))>>40) / (1 << 24)
		s.b = strconv.AppendFloat(s.b, float64(score), 'g', -1, 32)
	}
	s.n++
}

// appendServedModel names the model that "served" a request: the requested
// one with the configured suffix, unless it already ends with it.
func (m *Mock) appendServedModel(b []byte, requested string) []byte {
	b = append(b, '"')
	b = appendEscaped(b, requested)
	if !strings.HasSuffix(requested, m.opts.ServedModelSuffix) {
		b = appendEscaped(b, m.opts.ServedModelSuffix)
	}
	return append(b, '"')
}

func (m *Mock) appendOpenAIUsage(b []byte, prompt int) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(m.text.tokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+m.text.tokens), 10)
	return append(b, `,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

func appendAnthropicUsage(b []byte, input, output int) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(input), 10)
	b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(output), 10)
	return append(b, `,"service_tier":"standard"}`...)
}

// writeError answers status with an error body in the dialect's own shape.
// param names the offending request field; "" writes null.
func writeError(ctx *fasthttp.RequestCtx, d dialect, status int, msg, param string) {
	bp := getBuf()
	b := (*bp)[:0]
	switch d {
	case dialectAnthropic:
		b = append(b, `{"type":"error","error":{"type":"`...)
		b = append(b, anthropicErrorType(status)...)
		b = append(b, `","message":`...)
		b = appendJSONString(b, msg)
		b = append(b, `}}`...)
	case dialectOIP:
		b = append(b, `{"error":`...)
		b = appendJSONString(b, msg)
		b = append(b, '}')
	default:
		typ, code := openAIErrorType(status)
		b = append(b, `{"error":{"message":`...)
		b = appendJSONString(b, msg)
		b = append(b, `,"type":"`...)
		b = append(b, typ...)
		b = append(b, `","param":`...)
		b = appendNullableString(b, param)
		b = append(b, `,"code":`...)
		b = appendNullableString(b, code)
		b = append(b, `}}`...)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	*bp = b
	putBuf(bp)
}

func openAIErrorType(status int) (typ, code string) {
	switch {
	case status == fasthttp.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case status == fasthttp.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded"
	case status >= 500:
		return "server_error", ""
	}
	return "invalid_request_error", ""
}

func anthropicErrorType(status int) string {
	switch status {
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string.
func appendJSONString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

// appendEscaped writes s escaped for the inside of a JSON string. Invalid
// UTF-8 becomes U+FFFD, since model names and ids come from untrusted bytes.
func appendEscaped[T string | []byte](b []byte, s T) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	return append(b, s[start:]...)
}
