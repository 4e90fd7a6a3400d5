package capture

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
)

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
	return reassembleResponses(dst, body, false)
}

// reassembleResponses is ReassembleOpenAIResponses; cut says body is the
// beginning of a stream cut short (holdTails).
func reassembleResponses(dst, body []byte, cut bool) (out []byte, complete bool, err error) {
	s := respPool.Get().(*respState)
	defer s.release(len(body))
	complete, err = scanStream(body, "openai responses", func(ev SSEEvent, root gjson.Result, parsed bool) (bool, bool) {
		if !parsed {
			return false, false
		}
		return s.event(root, ev.Event)
	})
	if err != nil {
		return dst, false, err
	}
	if s.final != "" {
		return append(dst, s.final...), complete, nil
	}
	if cut {
		s.holdTails()
	}
	return s.appendJSON(dst), complete, nil
}

// holdTails drops the last cutHold bytes of each text rebuilt from deltas
// (an item or part that its done event did not give whole), where a value
// split by the cut would pass the detectors unseen.
func (s *respState) holdTails() {
	for _, it := range s.items {
		if it.done != "" {
			continue
		}
		it.args.hold()
		it.input.hold()
		for _, parts := range [2][]*respPart{it.parts, it.summary} {
			for _, p := range parts {
				if p.done == "" {
					p.text.hold()
					p.refusal.hold()
				}
			}
		}
	}
}

var respPool = sync.Pool{New: func() any { return new(respState) }}

// respState is what a Responses stream has said so far. Its strings are raw
// JSON values that alias the body.
type respState struct {
	id, createdAt, model, status, usage string
	// final is the terminal event's response object.
	final, errv string
	items       []*respItem
	idx         sseIndex
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
