package capture

import (
	"bytes"

	"github.com/tidwall/gjson"
)

// facts is what a profile reads out of one exchange's bodies. The byte
// slices are JSON values pointing into the bodies or the scratch space.
type facts struct {
	operation                  string
	requested, served, version string
	input, output, rationale   []byte
	usage                      Usage
}

// detectProfile picks a profile from the request path, for routes that
// leave it to auto. Suffixes are matched, so an upstream base path
// (Azure's /openai/deployments/{d}/..., a proxy's /v1/...) still matches.
func detectProfile(path []byte) Profile {
	switch {
	case bytes.HasSuffix(path, []byte("/chat/completions")), bytes.HasSuffix(path, []byte("/completions")),
		bytes.HasSuffix(path, []byte("/responses")), bytes.HasSuffix(path, []byte("/embeddings")):
		return ProfileOpenAI
	case bytes.HasSuffix(path, []byte("/v1/messages")):
		return ProfileAnthropic
	case bytes.HasPrefix(path, []byte("/v1/models/")) && bytes.IndexByte(path, ':') > 0:
		return ProfileKServe
	case bytes.HasPrefix(path, []byte("/v2/models/")) && bytes.HasSuffix(path, []byte("/infer")):
		return ProfileTriton
	case bytes.HasPrefix(path, []byte("/endpoints/")) && bytes.Contains(path, []byte("/invocations")):
		return ProfileSageMaker
	case bytes.HasSuffix(path, []byte("/invocations")):
		return ProfileMLflow
	}
	return ProfileGeneric
}

// raw returns the bytes of a gjson result inside body without copying
// when gjson found them in place, else a copy.
func raw(body []byte, r gjson.Result) []byte {
	if !r.Exists() {
		return nil
	}
	if r.Index > 0 && r.Index+len(r.Raw) <= len(body) {
		return body[r.Index : r.Index+len(r.Raw)]
	}
	return []byte(r.Raw)
}

func str(body []byte, path string) string {
	r := gjson.GetBytes(body, path)
	if r.Type != gjson.String {
		return ""
	}
	return r.Str
}

// openAI reads chat completions, completions, responses and embeddings.
// resp is the non-streamed answer, or the one reassembled from a stream.
// Its top level is read in one pass: an answer is scanned once, not once
// per field.
func openAI(path, req, resp []byte) facts {
	f := facts{requested: str(req, "model"), input: req}
	var top openAITop
	top.read(resp)
	f.served, f.version = top.model.Str, top.fingerprint.Str
	if top.model.Type != gjson.String {
		f.served = ""
	}
	if top.fingerprint.Type != gjson.String {
		f.version = ""
	}
	switch {
	case bytes.HasSuffix(path, []byte("/chat/completions")):
		f.operation = "chat"
		f.output = raw(resp, top.choices)
		// Open-weight servers (vLLM, DeepSeek) return the model's reasoning.
		if bytes.Contains(f.output, []byte(`"reasoning_content"`)) {
			if r := top.choices.Get("#.message.reasoning_content"); r.IsArray() && len(r.Array()) > 0 && r.Array()[0].Exists() {
				f.rationale = []byte(r.Raw)
			}
		}
		f.usage = openAIUsage(top.usage, "prompt_tokens", "completion_tokens", "prompt_tokens_details.cached_tokens", "completion_tokens_details.reasoning_tokens")
	case bytes.HasSuffix(path, []byte("/completions")):
		f.operation = "completion"
		f.output = raw(resp, top.choices)
		f.usage = openAIUsage(top.usage, "prompt_tokens", "completion_tokens", "prompt_tokens_details.cached_tokens", "completion_tokens_details.reasoning_tokens")
	case bytes.HasSuffix(path, []byte("/responses")):
		f.operation = "responses"
		f.output = raw(resp, gjson.GetBytes(resp, `output.#(type!="reasoning")#`))
		if r := gjson.GetBytes(resp, `output.#(type=="reasoning")#`); r.IsArray() && len(r.Array()) > 0 {
			f.rationale = []byte(r.Raw)
		}
		f.usage = openAIUsage(top.usage, "input_tokens", "output_tokens", "input_tokens_details.cached_tokens", "output_tokens_details.reasoning_tokens")
	case bytes.HasSuffix(path, []byte("/embeddings")):
		f.operation = "embeddings"
		f.output = raw(resp, top.data)
		f.usage = openAIUsage(top.usage, "prompt_tokens", "completion_tokens", "", "")
	default:
		f.operation = "other"
		f.output = resp
	}
	return f
}

// openAITop holds the top-level fields of an OpenAI answer.
type openAITop struct {
	model, fingerprint, choices, data, usage gjson.Result
}

// Its results point into resp, not into a copy of it: the strings taken
// from them (the served model, the fingerprint) live as long as resp does.
func (t *openAITop) read(resp []byte) {
	gjson.Parse(sseView(resp)).ForEach(t.field)
}

// field keeps the first of each, as gjson.Get would.
func (t *openAITop) field(k, v gjson.Result) bool {
	var dst *gjson.Result
	switch k.Str {
	case "model":
		dst = &t.model
	case "system_fingerprint":
		dst = &t.fingerprint
	case "choices":
		dst = &t.choices
	case "data":
		dst = &t.data
	case "usage":
		dst = &t.usage
	default:
		return true
	}
	if !dst.Exists() {
		*dst = v
	}
	return true
}

func openAIUsage(u gjson.Result, in, out, cached, reasoning string) Usage {
	if !u.IsObject() {
		return Usage{}
	}
	us := Usage{InputTokens: u.Get(in).Int(), OutputTokens: u.Get(out).Int()}
	if cached != "" {
		us.CachedTokens = u.Get(cached).Int()
	}
	if reasoning != "" {
		us.ReasoningTokens = u.Get(reasoning).Int()
	}
	return us
}

// anthropic reads the messages API. The answer's thinking blocks are its
// rationale; the rest of its content, with the stop reason, its output.
func anthropic(req, resp []byte, sc *scratch) facts {
	f := facts{operation: "messages", requested: str(req, "model"), served: str(resp, "model"), input: req}
	if !gjson.ValidBytes(resp) || !gjson.GetBytes(resp, "content").IsArray() {
		f.output = resp
		return f
	}
	content := gjson.GetBytes(resp, `content.#(type!="thinking")#`)
	thinking := gjson.GetBytes(resp, `content.#(type=="thinking")#`)
	b := sc.output[:0]
	b = append(b, `{"content":`...)
	b = append(b, content.Raw...)
	b = append(b, `,"stop_reason":`...)
	b = appendRawOrNull(b, gjson.GetBytes(resp, "stop_reason"))
	b = append(b, `,"stop_sequence":`...)
	b = appendRawOrNull(b, gjson.GetBytes(resp, "stop_sequence"))
	b = append(b, '}')
	sc.output = b
	f.output = b
	if len(thinking.Array()) > 0 {
		f.rationale = []byte(thinking.Raw)
	}
	// Anthropic's input_tokens leave out the tokens read from and written
	// to the prompt cache; they are recorded as Anthropic reports them.
	u := gjson.GetBytes(resp, "usage")
	f.usage = Usage{
		InputTokens:         u.Get("input_tokens").Int(),
		OutputTokens:        u.Get("output_tokens").Int(),
		CachedTokens:        u.Get("cache_read_input_tokens").Int(),
		CacheCreationTokens: u.Get("cache_creation_input_tokens").Int(),
	}
	return f
}

func appendRawOrNull(b []byte, r gjson.Result) []byte {
	if !r.Exists() {
		return append(b, "null"...)
	}
	return append(b, r.Raw...)
}

// kserve reads the v1 predict protocol shared by KServe v1 and TF Serving:
// /v1/models/{m}[/versions/{v}|/labels/{l}]:{predict|classify|regress|explain}.
// An :explain answer is the rationale. Its answers do not name the model,
// so the served model is left unknown: the path says only what was asked
// for.
func kserve(path, req, resp []byte) facts {
	rest := path[len("/v1/models/"):]
	verb := ""
	if i := bytes.LastIndexByte(rest, ':'); i >= 0 {
		rest, verb = rest[:i], string(rest[i+1:])
	}
	name, version := rest, []byte(nil)
	if i := bytes.Index(rest, []byte("/versions/")); i >= 0 {
		name, version = rest[:i], rest[i+len("/versions/"):]
	} else if i := bytes.Index(rest, []byte("/labels/")); i >= 0 {
		name, version = rest[:i], rest[i+len("/labels/"):]
	}
	f := facts{operation: verb, requested: string(name), version: string(version), input: req}
	if verb == "explain" {
		f.rationale = resp
		return f
	}
	if r := gjson.GetBytes(resp, "predictions"); r.Exists() {
		f.output = raw(resp, r)
	} else if r := gjson.GetBytes(resp, "outputs"); r.Exists() {
		f.output = raw(resp, r)
	} else if r := gjson.GetBytes(resp, "results"); r.Exists() { // TF Serving classify/regress
		f.output = raw(resp, r)
	} else {
		f.output = resp
	}
	if r := gjson.GetBytes(resp, "explanations"); r.Exists() {
		f.rationale = raw(resp, r)
	}
	return f
}

// triton reads Open Inference Protocol v2 (KServe v2, Triton):
// /v2/models/{m}[/versions/{v}]/infer. The served model is the answer's
// model_name, unknown when the answer leaves it out.
func triton(path, req, resp []byte) facts {
	rest := bytes.TrimSuffix(path[len("/v2/models/"):], []byte("/infer"))
	name, version := rest, []byte(nil)
	if i := bytes.Index(rest, []byte("/versions/")); i >= 0 {
		name, version = rest[:i], rest[i+len("/versions/"):]
	}
	f := facts{operation: "infer", requested: string(name), served: str(resp, "model_name"), input: req}
	f.version = str(resp, "model_version")
	if f.version == "" {
		f.version = string(version)
	}
	if r := gjson.GetBytes(resp, "outputs"); r.Exists() {
		f.output = raw(resp, r)
	} else {
		f.output = resp
	}
	return f
}

// sageMaker reads SageMaker runtime invocations: the endpoint is the
// requested model, the production variant that answered the served one.
func sageMaker(path, req, resp []byte, respHeaders *Headers) facts {
	rest := path[len("/endpoints/"):]
	name := rest
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		name = rest[:i]
	}
	f := facts{operation: "invoke", requested: string(name), input: req, output: resp}
	if v := respHeaders.Get("X-Amzn-Invoked-Production-Variant"); len(v) > 0 {
		f.served = string(v)
	}
	return f
}

// mlflow reads MLflow's scoring server (/invocations): the model is the
// route's, named by labels or extract paths.
func mlflow(req, resp []byte) facts {
	f := facts{operation: "predict", input: req, output: resp}
	if r := gjson.GetBytes(resp, "predictions"); r.Exists() {
		f.output = raw(resp, r)
	}
	return f
}

// generic reads any JSON API through the route's extract paths; without
// them the whole bodies are the input and output.
func generic(req, resp []byte, x *Extract) facts {
	f := facts{operation: "predict", input: req, output: resp}
	if x.Input != "" {
		f.input = extractRaw(req, resp, x.Input, false)
	}
	if x.Output != "" {
		f.output = extractRaw(req, resp, x.Output, true)
	}
	return f
}

// applyExtract lays the route's extract paths over what the profile
// found; they win where set.
func applyExtract(f *facts, req, resp []byte, x *Extract) {
	if x.Model != "" {
		if r := extract(req, resp, x.Model, false); r.Exists() {
			f.requested = r.String()
		}
	}
	if x.Version != "" {
		if r := extract(req, resp, x.Version, true); r.Exists() {
			f.version = r.String()
		}
	}
	if x.Rationale != "" {
		if b := extractRaw(req, resp, x.Rationale, true); b != nil {
			f.rationale = b
		}
	}
}

// extract reads a path: "request." and "response." prefixes choose the
// body; otherwise the response if preferResponse, else the request.
func extract(req, resp []byte, path string, preferResponse bool) gjson.Result {
	switch {
	case len(path) > len("request.") && path[:len("request.")] == "request.":
		return gjson.GetBytes(req, path[len("request."):])
	case len(path) > len("response.") && path[:len("response.")] == "response.":
		return gjson.GetBytes(resp, path[len("response."):])
	case preferResponse:
		return gjson.GetBytes(resp, path)
	}
	return gjson.GetBytes(req, path)
}

func extractRaw(req, resp []byte, path string, preferResponse bool) []byte {
	r := extract(req, resp, path, preferResponse)
	if !r.Exists() {
		return nil
	}
	return []byte(r.Raw)
}
