package capture

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
)

// ReassembleOpenAIChat appends to dst the chat.completion object that the
// non-streamed Chat Completions API returns for the same request, built from
// the chat.completion.chunk events in body, and reports whether the stream's
// terminal "data: [DONE]" was seen. A stream cut short yields the object
// built so far. Content deltas join per choice; tool call deltas merge by
// their index (id, type and name come first, arguments join); content is
// null when no content delta came, as OpenAI answers a tool-call-only turn.
// The usage chunk (stream_options.include_usage) is copied as it is. A
// {"error": ...} chunk is kept as the object's "error". err is ErrNotStream,
// wrapped, when body is not a chat completion stream at all; dst must not
// overlap body.
func ReassembleOpenAIChat(dst, body []byte) (out []byte, complete bool, err error) {
	return reassembleOpenAI(dst, body, true)
}

// ReassembleOpenAICompletion is ReassembleOpenAIChat for the legacy
// Completions API: it appends the text_completion object, with each
// choice's text joined and its logprobs arrays, if any, concatenated.
func ReassembleOpenAICompletion(dst, body []byte) (out []byte, complete bool, err error) {
	return reassembleOpenAI(dst, body, false)
}

var oaiPool = sync.Pool{New: func() any { return new(oaiState) }}

func reassembleOpenAI(dst, body []byte, chat bool) (out []byte, complete bool, err error) {
	s := oaiPool.Get().(*oaiState)
	defer s.release(len(body))
	sc := newSSEScanner(body)
	for {
		ev, ok := sc.next()
		if !ok {
			break
		}
		if string(bytes.TrimSpace(ev.Data)) == "[DONE]" {
			complete = true
			break
		}
		root, ok := sseParse(ev.Data)
		if ok && s.chunk(root, chat) {
			s.known++
		} else if len(ev.Data) > 0 {
			s.foreign++
		}
	}
	api := "openai completion"
	if chat {
		api = "openai chat"
	}
	if err := sseStreamError(body, api, s.known, s.foreign); err != nil {
		return dst, false, err
	}
	return s.appendJSON(dst, chat), complete, nil
}

// oaiState is what a Chat Completions or Completions stream has said so far.
// Its strings are raw JSON values that alias the body.
type oaiState struct {
	id, created, model, fingerprint, tier, usage, errv string
	choices                                            []*oaiChoice
	idx                                                sseIndex
	known, foreign                                     int
}

type oaiChoice struct {
	index  int64
	role   string
	finish string
	// content, refusal, reasoning (reasoning_content, sent by some
	// OpenAI-compatible servers), calls and fn (the legacy function_call)
	// are chat's; text is a completion's.
	content, refusal, reasoning, text sseText
	calls                             []*oaiCall
	callIdx                           sseIndex
	fn                                oaiCall
	hasFn                             bool
	// logprobs is set once a choice had a logprobs object; chat's hold
	// content and refusal arrays, a completion's four parallel arrays.
	logprobs                          bool
	lpContent, lpRefusal              sseArray
	lpTokens, lpTokenLP, lpTop, lpOff sseArray
}

type oaiCall struct {
	index      int64
	id, typ    string
	name, args sseText
}

func (c *oaiCall) reset(index int64) {
	c.index, c.id, c.typ = index, "", ""
	c.name.reset()
	c.args.reset()
}

// merge takes a function delta: the name once, arguments joined.
func (c *oaiCall) merge(fn gjson.Result) {
	if !fn.IsObject() {
		return
	}
	fn.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "name":
			if !c.name.set && v.Str != "" {
				c.name.add(v)
			}
		case "arguments":
			c.args.add(v)
		}
		return true
	})
}

func (c *oaiChoice) reset(index int64) {
	c.index, c.role, c.finish = index, "", ""
	c.content.reset()
	c.refusal.reset()
	c.reasoning.reset()
	c.text.reset()
	for i := range c.calls {
		c.calls[i].reset(0)
	}
	c.calls = c.calls[:0]
	c.callIdx.reset()
	c.fn.reset(0)
	c.hasFn, c.logprobs = false, false
	c.lpContent.reset()
	c.lpRefusal.reset()
	c.lpTokens.reset()
	c.lpTokenLP.reset()
	c.lpTop.reset()
	c.lpOff.reset()
}

func (s *oaiState) choice(index int64) *oaiChoice {
	if i := s.idx.find(index); i >= 0 {
		return s.choices[i]
	}
	s.idx.add(index)
	var c *oaiChoice
	s.choices, c = sseGrow(s.choices)
	c.reset(index)
	return c
}

func (c *oaiChoice) call(index int64) *oaiCall {
	if i := c.callIdx.find(index); i >= 0 {
		return c.calls[i]
	}
	c.callIdx.add(index)
	var tc *oaiCall
	c.calls, tc = sseGrow(c.calls)
	tc.reset(index)
	return tc
}

// release empties s, dropping its views of the body, and pools it.
func (s *oaiState) release(bodyLen int) {
	for i := range s.choices {
		s.choices[i].reset(0)
	}
	s.choices = s.choices[:0]
	s.idx.reset()
	*s = oaiState{choices: s.choices, idx: s.idx}
	if bodyLen <= streamMaxPooled {
		oaiPool.Put(s)
	}
}

// oaiString reports whether v is a string with something in it: Azure's
// first chunk carries empty id, model and object.
func oaiString(v gjson.Result) bool { return v.Type == gjson.String && v.Str != "" }

// chunk applies one chunk and reports whether it was one of the API's.
func (s *oaiState) chunk(root gjson.Result, chat bool) bool {
	var id, object, created, model, fingerprint, tier, choices, usage, errv gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			id = v
		case "object":
			object = v
		case "created":
			created = v
		case "model":
			model = v
		case "system_fingerprint":
			fingerprint = v
		case "service_tier":
			tier = v
		case "choices":
			choices = v
		case "usage":
			usage = v
		case "error":
			errv = v
		}
		return true
	})
	want := "text_completion"
	if chat {
		want = "chat.completion.chunk"
	}
	hasErr := errv.Exists() && errv.Type != gjson.Null
	if object.Str != want && (object.Str != "" || !(choices.IsArray() || hasErr)) {
		return false
	}
	if s.id == "" && oaiString(id) {
		s.id = id.Raw
	}
	if s.created == "" && created.Type == gjson.Number && created.Num != 0 {
		s.created = created.Raw
	}
	if s.model == "" && oaiString(model) {
		s.model = model.Raw
	}
	if s.fingerprint == "" && oaiString(fingerprint) {
		s.fingerprint = fingerprint.Raw
	}
	if s.tier == "" && oaiString(tier) {
		s.tier = tier.Raw
	}
	if usage.IsObject() {
		s.usage = usage.Raw
	}
	if s.errv == "" && hasErr {
		s.errv = errv.Raw
	}
	if choices.IsArray() {
		choices.ForEach(func(_, c gjson.Result) bool {
			if c.IsObject() {
				s.addChoice(c, chat)
			}
			return true
		})
	}
	return true
}

func (s *oaiState) addChoice(c gjson.Result, chat bool) {
	var index, delta, logprobs, finish, text gjson.Result
	c.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "index":
			index = v
		case "delta":
			delta = v
		case "logprobs":
			logprobs = v
		case "finish_reason":
			finish = v
		case "text":
			text = v
		}
		return true
	})
	ch := s.choice(index.Int())
	if finish.Type == gjson.String {
		ch.finish = finish.Raw
	}
	if chat {
		ch.delta(delta)
	} else {
		ch.text.add(text)
	}
	if !logprobs.IsObject() {
		return
	}
	ch.logprobs = true
	logprobs.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content":
			ch.lpContent.addElems(v)
		case "refusal":
			ch.lpRefusal.addElems(v)
		case "tokens":
			ch.lpTokens.addElems(v)
		case "token_logprobs":
			ch.lpTokenLP.addElems(v)
		case "top_logprobs":
			ch.lpTop.addElems(v)
		case "text_offset":
			ch.lpOff.addElems(v)
		}
		return true
	})
}

func (ch *oaiChoice) delta(d gjson.Result) {
	if !d.IsObject() {
		return
	}
	d.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "role":
			if ch.role == "" && oaiString(v) {
				ch.role = v.Raw
			}
		case "content":
			ch.content.add(v)
		case "refusal":
			ch.refusal.add(v)
		case "reasoning_content":
			ch.reasoning.add(v)
		case "tool_calls":
			if v.IsArray() {
				v.ForEach(func(_, tc gjson.Result) bool {
					if tc.IsObject() {
						ch.toolCall(tc)
					}
					return true
				})
			}
		case "function_call":
			if v.IsObject() {
				ch.hasFn = true
				ch.fn.merge(v)
			}
		}
		return true
	})
}

func (ch *oaiChoice) toolCall(tc gjson.Result) {
	var index, id, typ, fn gjson.Result
	tc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "index":
			index = v
		case "id":
			id = v
		case "type":
			typ = v
		case "function":
			fn = v
		}
		return true
	})
	var k int64
	switch {
	case index.Type == gjson.Number:
		k = index.Int()
	case oaiString(id) || len(ch.calls) == 0:
		// Some compatible servers leave index out: a new id is a new call,
		// anything else continues the last one.
		k = int64(len(ch.calls))
	default:
		k = ch.calls[len(ch.calls)-1].index
	}
	c := ch.call(k)
	if c.id == "" && oaiString(id) {
		c.id = id.Raw
	}
	if c.typ == "" && oaiString(typ) {
		c.typ = typ.Raw
	}
	c.merge(fn)
}

func (s *oaiState) appendJSON(dst []byte, chat bool) []byte {
	dst = append(dst, `{"id":`...)
	dst = sseOrNull(dst, s.id)
	if chat {
		dst = append(dst, `,"object":"chat.completion","created":`...)
	} else {
		dst = append(dst, `,"object":"text_completion","created":`...)
	}
	dst = sseOrNull(dst, s.created)
	dst = append(dst, `,"model":`...)
	dst = sseOrNull(dst, s.model)
	if s.fingerprint != "" {
		dst = append(dst, `,"system_fingerprint":`...)
		dst = append(dst, s.fingerprint...)
	}
	dst = append(dst, `,"choices":[`...)
	if !s.idx.sorted() {
		slices.SortFunc(s.choices, func(a, b *oaiChoice) int { return cmp.Compare(a.index, b.index) })
	}
	for i := range s.choices {
		if i > 0 {
			dst = append(dst, ',')
		}
		if chat {
			dst = s.choices[i].appendChat(dst)
		} else {
			dst = s.choices[i].appendCompletion(dst)
		}
	}
	dst = append(dst, ']')
	if s.usage != "" {
		dst = append(dst, `,"usage":`...)
		dst = append(dst, s.usage...)
	}
	if chat && s.tier != "" {
		dst = append(dst, `,"service_tier":`...)
		dst = append(dst, s.tier...)
	}
	if s.errv != "" {
		dst = append(dst, `,"error":`...)
		dst = append(dst, s.errv...)
	}
	return append(dst, '}')
}

func (ch *oaiChoice) appendChat(dst []byte) []byte {
	var none gjson.Result
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, ch.index, 10)
	dst = append(dst, `,"message":{"role":`...)
	if ch.role == "" {
		dst = append(dst, `"assistant"`...)
	} else {
		dst = append(dst, ch.role...)
	}
	dst = append(dst, `,"content":`...)
	if ch.content.set {
		dst = ch.content.appendJSON(dst, none)
	} else {
		dst = append(dst, "null"...)
	}
	if ch.refusal.set {
		dst = append(dst, `,"refusal":`...)
		dst = ch.refusal.appendJSON(dst, none)
	}
	if len(ch.calls) > 0 {
		if !ch.callIdx.sorted() {
			slices.SortFunc(ch.calls, func(a, b *oaiCall) int { return cmp.Compare(a.index, b.index) })
		}
		dst = append(dst, `,"tool_calls":[`...)
		for i := range ch.calls {
			c := ch.calls[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = sseOrNull(dst, c.id)
			dst = append(dst, `,"type":`...)
			if c.typ == "" {
				dst = append(dst, `"function"`...)
			} else {
				dst = append(dst, c.typ...)
			}
			dst = append(dst, `,"function":`...)
			dst = c.appendFunction(dst)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if ch.hasFn {
		dst = append(dst, `,"function_call":`...)
		dst = ch.fn.appendFunction(dst)
	}
	if ch.reasoning.set {
		dst = append(dst, `,"reasoning_content":`...)
		dst = ch.reasoning.appendJSON(dst, none)
	}
	dst = append(dst, '}')
	if ch.logprobs {
		dst = append(dst, `,"logprobs":{"content":`...)
		if ch.lpContent.n > 0 || ch.lpRefusal.n == 0 {
			dst = ch.lpContent.appendJSON(dst, none)
		} else {
			dst = append(dst, "null"...)
		}
		dst = append(dst, `,"refusal":`...)
		if ch.lpRefusal.n > 0 {
			dst = ch.lpRefusal.appendJSON(dst, none)
		} else {
			dst = append(dst, "null"...)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"finish_reason":`...)
	dst = sseOrNull(dst, ch.finish)
	return append(dst, '}')
}

func (c *oaiCall) appendFunction(dst []byte) []byte {
	var none gjson.Result
	dst = append(dst, `{"name":`...)
	dst = c.name.appendJSON(dst, none)
	dst = append(dst, `,"arguments":`...)
	dst = c.args.appendJSON(dst, none)
	return append(dst, '}')
}

func (ch *oaiChoice) appendCompletion(dst []byte) []byte {
	var none gjson.Result
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, ch.index, 10)
	dst = append(dst, `,"text":`...)
	dst = ch.text.appendJSON(dst, none)
	dst = append(dst, `,"finish_reason":`...)
	dst = sseOrNull(dst, ch.finish)
	dst = append(dst, `,"logprobs":`...)
	if !ch.logprobs {
		dst = append(dst, "null"...)
		return append(dst, '}')
	}
	dst = append(dst, `{"tokens":`...)
	dst = ch.lpTokens.appendJSON(dst, none)
	dst = append(dst, `,"token_logprobs":`...)
	dst = ch.lpTokenLP.appendJSON(dst, none)
	dst = append(dst, `,"top_logprobs":`...)
	dst = ch.lpTop.appendJSON(dst, none)
	dst = append(dst, `,"text_offset":`...)
	dst = ch.lpOff.appendJSON(dst, none)
	return append(dst, "}}"...)
}

// ReassembleOpenAIResponses appends to dst the response object that the
// non-streamed Responses API returns for the same request, and reports
// whether a terminal event (response.completed, response.failed or
// response.incomplete) was seen. The terminal event carries the whole
// response, which is appended as it is. Without one, the object is rebuilt
// from the last response snapshot (response.created, response.in_progress)
// and the output items: each as its response.output_item.done gave it, or
// else rebuilt from response.output_item.added and the deltas after it. An
// "error" event is kept as the rebuilt object's "error".
func ReassembleOpenAIResponses(dst, body []byte) (out []byte, complete bool, err error) {
	s := respPool.Get().(*respState)
	defer s.release(len(body))
	sc := newSSEScanner(body)
	for {
		ev, ok := sc.next()
		if !ok {
			break
		}
		root, ok := sseParse(ev.Data)
		if !ok {
			if len(ev.Data) > 0 {
				s.foreign++
			}
			continue
		}
		known, terminal := s.event(root, ev.Event)
		if !known {
			s.foreign++
			continue
		}
		s.known++
		if terminal {
			complete = true
			break
		}
	}
	if err := sseStreamError(body, "openai responses", s.known, s.foreign); err != nil {
		return dst, false, err
	}
	if s.final != "" {
		return append(dst, s.final...), complete, nil
	}
	return s.appendJSON(dst), complete, nil
}

var respPool = sync.Pool{New: func() any { return new(respState) }}

// respState is what a Responses stream has said so far. Its strings are raw
// JSON values that alias the body.
type respState struct {
	id, createdAt, model, status, usage string
	// final is the terminal event's response object.
	final, errv    string
	items          []*respItem
	idx            sseIndex
	known, foreign int
}

// respItem is one output item. added and done are the item as
// response.output_item.added and .done gave it; synth stands in for added
// when deltas came without it.
type respItem struct {
	index               int64
	added, done, synth  string
	args, input         sseText
	parts, summary      []*respPart
	partIdx, summaryIdx sseIndex
}

// respPart is one content part (or reasoning summary part) of an item.
type respPart struct {
	index              int64
	added, done, synth string
	text, refusal      sseText
	annotations        sseArray
}

// Stand-ins for a start event that never came.
const (
	respSynthMessage   = `{"type":"message","role":"assistant","content":[]}`
	respSynthCall      = `{"type":"function_call","arguments":""}`
	respSynthCustom    = `{"type":"custom_tool_call","input":""}`
	respSynthReasoning = `{"type":"reasoning","summary":[]}`
	respSynthText      = `{"type":"output_text","text":"","annotations":[]}`
	respSynthRefusal   = `{"type":"refusal","refusal":""}`
	respSynthReasonTxt = `{"type":"reasoning_text","text":""}`
	respSynthSummary   = `{"type":"summary_text","text":""}`
)

var (
	respItemKeys = []string{"arguments", "input", "content", "summary"}
	respPartKeys = []string{"text", "refusal", "annotations"}
)

func (p *respPart) reset(index int64) {
	p.index, p.added, p.done, p.synth = index, "", "", ""
	p.text.reset()
	p.refusal.reset()
	p.annotations.reset()
}

func (it *respItem) reset(index int64) {
	it.index, it.added, it.done, it.synth = index, "", "", ""
	it.args.reset()
	it.input.reset()
	for i := range it.parts {
		it.parts[i].reset(0)
	}
	for i := range it.summary {
		it.summary[i].reset(0)
	}
	it.parts, it.summary = it.parts[:0], it.summary[:0]
	it.partIdx.reset()
	it.summaryIdx.reset()
}

func (s *respState) release(bodyLen int) {
	for i := range s.items {
		s.items[i].reset(0)
	}
	s.idx.reset()
	*s = respState{items: s.items[:0], idx: s.idx}
	if bodyLen <= streamMaxPooled {
		respPool.Put(s)
	}
}

// item returns the output item that root's output_index names, with synth
// as its stand-in start.
func (s *respState) item(root gjson.Result, synth string) *respItem {
	index := root.Get("output_index").Int()
	var it *respItem
	if i := s.idx.find(index); i >= 0 {
		it = s.items[i]
	} else {
		s.idx.add(index)
		s.items, it = sseGrow(s.items)
		it.reset(index)
	}
	if it.synth == "" {
		it.synth = synth
	}
	return it
}

// part returns the content part (or, if summary, the reasoning summary
// part) that root names.
func (it *respItem) part(root gjson.Result, summary bool, synth string) *respPart {
	parts, idx, key := &it.parts, &it.partIdx, "content_index"
	if summary {
		parts, idx, key = &it.summary, &it.summaryIdx, "summary_index"
	}
	index := root.Get(key).Int()
	var p *respPart
	if i := idx.find(index); i >= 0 {
		p = (*parts)[i]
	} else {
		idx.add(index)
		*parts, p = sseGrow(*parts)
		p.reset(index)
	}
	if p.synth == "" {
		p.synth = synth
	}
	return p
}

// event applies one event and reports whether it was one of the API's and
// whether it was terminal.
func (s *respState) event(root gjson.Result, name []byte) (known, terminal bool) {
	typ := root.Get("type").Str
	if typ == "" {
		typ = sseView(name)
	}
	if typ == "error" {
		if s.errv == "" {
			s.errv = root.Raw
		}
		return true, false
	}
	rest, ok := strings.CutPrefix(typ, "response.")
	if !ok {
		return false, false
	}
	switch rest {
	case "created", "in_progress", "queued":
		s.snapshot(root.Get("response"))
	case "completed", "failed", "incomplete":
		if r := root.Get("response"); r.IsObject() {
			s.final = r.Raw
		} else {
			s.status = respStatus[rest]
		}
		return true, true
	case "output_item.added":
		if v := root.Get("item"); v.IsObject() {
			s.item(root, "").added = v.Raw
		}
	case "output_item.done":
		if v := root.Get("item"); v.IsObject() {
			s.item(root, "").done = v.Raw
		}
	case "content_part.added", "content_part.done", "reasoning_summary_part.added", "reasoning_summary_part.done":
		if v := root.Get("part"); v.IsObject() {
			summary := rest[0] == 'r'
			synth := respSynthMessage
			if summary {
				synth = respSynthReasoning
			}
			p := s.item(root, synth).part(root, summary, "")
			if strings.HasSuffix(rest, ".added") {
				p.added = v.Raw
			} else {
				p.done = v.Raw
			}
		}
	case "output_text.delta":
		s.item(root, respSynthMessage).part(root, false, respSynthText).text.add(root.Get("delta"))
	case "output_text.done":
		s.item(root, respSynthMessage).part(root, false, respSynthText).text.replace(root.Get("text"))
	case "output_text.annotation.added":
		s.item(root, respSynthMessage).part(root, false, respSynthText).annotations.add(root.Get("annotation"))
	case "refusal.delta":
		s.item(root, respSynthMessage).part(root, false, respSynthRefusal).refusal.add(root.Get("delta"))
	case "refusal.done":
		s.item(root, respSynthMessage).part(root, false, respSynthRefusal).refusal.replace(root.Get("refusal"))
	case "reasoning_text.delta":
		s.item(root, respSynthReasoning).part(root, false, respSynthReasonTxt).text.add(root.Get("delta"))
	case "reasoning_text.done":
		s.item(root, respSynthReasoning).part(root, false, respSynthReasonTxt).text.replace(root.Get("text"))
	case "reasoning_summary_text.delta":
		s.item(root, respSynthReasoning).part(root, true, respSynthSummary).text.add(root.Get("delta"))
	case "reasoning_summary_text.done":
		s.item(root, respSynthReasoning).part(root, true, respSynthSummary).text.replace(root.Get("text"))
	case "function_call_arguments.delta", "mcp_call_arguments.delta":
		s.item(root, respSynthCall).args.add(root.Get("delta"))
	case "function_call_arguments.done", "mcp_call_arguments.done":
		s.item(root, respSynthCall).args.replace(root.Get("arguments"))
	case "custom_tool_call_input.delta":
		s.item(root, respSynthCustom).input.add(root.Get("delta"))
	case "custom_tool_call_input.done":
		s.item(root, respSynthCustom).input.replace(root.Get("input"))
	}
	return true, false
}

var respStatus = map[string]string{"completed": `"completed"`, "failed": `"failed"`, "incomplete": `"incomplete"`}

// snapshot takes the fields of a response snapshot that a rebuilt response
// reports.
func (s *respState) snapshot(r gjson.Result) {
	if !r.IsObject() {
		return
	}
	r.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			s.id = v.Raw
		case "created_at":
			s.createdAt = v.Raw
		case "model":
			s.model = v.Raw
		case "status":
			s.status = v.Raw
		case "usage":
			if v.IsObject() {
				s.usage = v.Raw
			}
		}
		return true
	})
}

func (s *respState) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = sseOrNull(dst, s.id)
	dst = append(dst, `,"object":"response","created_at":`...)
	dst = sseOrNull(dst, s.createdAt)
	dst = append(dst, `,"model":`...)
	dst = sseOrNull(dst, s.model)
	dst = append(dst, `,"status":`...)
	dst = sseOrNull(dst, s.status)
	dst = append(dst, `,"output":[`...)
	if !s.idx.sorted() {
		slices.SortFunc(s.items, func(a, b *respItem) int { return cmp.Compare(a.index, b.index) })
	}
	for i := range s.items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = s.items[i].appendJSON(dst)
	}
	dst = append(dst, `],"usage":`...)
	dst = sseOrNull(dst, s.usage)
	if s.errv != "" {
		dst = append(dst, `,"error":`...)
		dst = append(dst, s.errv...)
	}
	return append(dst, '}')
}

func (it *respItem) appendJSON(dst []byte) []byte {
	if it.done != "" {
		return append(dst, it.done...)
	}
	skel := it.added
	if skel == "" {
		skel = it.synth
	}
	return sseMergeObject(dst, skel, respItemKeys, it.field)
}

func (it *respItem) field(dst []byte, key string, _ gjson.Result) ([]byte, bool) {
	var none gjson.Result
	switch key {
	case "arguments":
		if it.args.set {
			return it.args.appendJSON(dst, none), true
		}
	case "input":
		if it.input.set {
			return it.input.appendJSON(dst, none), true
		}
	case "content":
		if len(it.parts) > 0 {
			return respAppendParts(dst, it.parts, &it.partIdx), true
		}
	case "summary":
		if len(it.summary) > 0 {
			return respAppendParts(dst, it.summary, &it.summaryIdx), true
		}
	}
	return dst, false
}

func respAppendParts(dst []byte, parts []*respPart, idx *sseIndex) []byte {
	if !idx.sorted() {
		slices.SortFunc(parts, func(a, b *respPart) int { return cmp.Compare(a.index, b.index) })
	}
	dst = append(dst, '[')
	for i := range parts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = parts[i].appendJSON(dst)
	}
	return append(dst, ']')
}

func (p *respPart) appendJSON(dst []byte) []byte {
	if p.done != "" {
		return append(dst, p.done...)
	}
	skel := p.added
	if skel == "" {
		skel = p.synth
	}
	if skel == "" {
		skel = respSynthText
	}
	return sseMergeObject(dst, skel, respPartKeys, p.field)
}

func (p *respPart) field(dst []byte, key string, old gjson.Result) ([]byte, bool) {
	var none gjson.Result
	switch key {
	case "text":
		if p.text.set {
			return p.text.appendJSON(dst, none), true
		}
	case "refusal":
		if p.refusal.set {
			return p.refusal.appendJSON(dst, none), true
		}
	case "annotations":
		if p.annotations.n > 0 {
			return p.annotations.appendJSON(dst, old), true
		}
	}
	return dst, false
}
