package capture

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
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
	return reassembleOpenAI(dst, body, true, false)
}

// ReassembleOpenAICompletion is ReassembleOpenAIChat for the legacy
// Completions API: it appends the text_completion object, with each
// choice's text joined and its logprobs arrays, if any, concatenated.
func ReassembleOpenAICompletion(dst, body []byte) (out []byte, complete bool, err error) {
	return reassembleOpenAI(dst, body, false, false)
}

var oaiPool = sync.Pool{New: func() any { return new(oaiState) }}

// reassembleOpenAI is both; cut says body is the beginning of a stream cut
// short (holdTails).
func reassembleOpenAI(dst, body []byte, chat, cut bool) (out []byte, complete bool, err error) {
	s := oaiPool.Get().(*oaiState)
	defer s.release(len(body))
	api := "openai completion"
	if chat {
		api = "openai chat"
	}
	complete, err = scanStream(body, api, func(ev SSEEvent, root gjson.Result, parsed bool) (bool, bool) {
		if string(bytes.TrimSpace(ev.Data)) == "[DONE]" {
			return false, true
		}
		return parsed && s.chunk(root, chat), false
	})
	if err != nil {
		return dst, false, err
	}
	if cut {
		s.holdTails()
	}
	return s.appendJSON(dst, chat), complete, nil
}

// holdTails drops the last cutHold bytes of each text of a choice that had
// not finished when the stream was cut.
func (s *oaiState) holdTails() {
	for _, ch := range s.choices {
		if ch.finish != "" {
			continue
		}
		ch.content.hold()
		ch.refusal.hold()
		ch.reasoning.hold()
		ch.text.hold()
		ch.fn.args.hold()
		for _, c := range ch.calls {
			c.args.hold()
		}
	}
}

// oaiState is what a Chat Completions or Completions stream has said so far.
// Its strings are raw JSON values that alias the body.
type oaiState struct {
	id, created, model, fingerprint, tier, usage, errv string
	choices                                            []*oaiChoice
	idx                                                sseIndex
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
