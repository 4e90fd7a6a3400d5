package capture

import (
	"cmp"
	"slices"
	"sync"

	"github.com/tidwall/gjson"
)

// ReassembleAnthropic appends to dst the Message object that the
// non-streamed Messages API returns for the same request, built from the
// events in body, and reports whether message_stop was seen. A stream cut
// short yields the message built so far. Content blocks come in index order,
// each as its content_block_start gave it with its deltas applied: text,
// thinking and signature join; citations append; the joined partial_json of
// an input_json_delta becomes the input, or, when it is not valid JSON
// because the stream broke off, stays a JSON string of what came.
// message_delta sets stop_reason and stop_sequence and merges its usage
// over message_start's, and other message keys follow the listed ones. The
// first error event's error object is kept as the message's "error". err is
// ErrNotStream, wrapped, when body is not a Messages stream at all; dst must
// not overlap body.
func ReassembleAnthropic(dst, body []byte) (out []byte, complete bool, err error) {
	return reassembleAnthropic(dst, body, false)
}

// reassembleAnthropic is ReassembleAnthropic; cut says body is the
// beginning of a stream cut short: then the text of every block without its
// content_block_stop loses its last cutHold bytes, where a value split by
// the cut would pass the detectors unseen.
func reassembleAnthropic(dst, body []byte, cut bool) (out []byte, complete bool, err error) {
	s := antPool.Get().(*antState)
	defer s.release(len(body))
	complete, err = scanStream(body, "anthropic messages", func(ev SSEEvent, root gjson.Result, parsed bool) (bool, bool) {
		if !parsed {
			return false, false
		}
		return s.event(root, ev.Event)
	})
	if err != nil {
		return dst, false, err
	}
	if cut {
		for _, b := range s.blocks {
			if !b.stopped {
				b.text.hold()
				b.thinking.hold()
				b.partial.hold()
			}
		}
	}
	return s.appendJSON(dst), complete, nil
}

var antPool = sync.Pool{New: func() any { return new(antState) }}

// antState is what a Messages stream has said so far. Its strings are raw
// JSON values that alias the body.
type antState struct {
	id, role, model     string
	stopReason, stopSeq string
	// usage is message_start's usage with message_delta's merged over it;
	// extra holds the message's other keys, such as container.
	usage, extra sseKV
	blocks       []*antBlock
	idx          sseIndex
	errv         string
	scratch      []byte
}

// antBlock is one content block. start is the content_block of its
// content_block_start; synth stands in for it when deltas came without one.
type antBlock struct {
	index                              int64
	start, synth                       string
	text, thinking, signature, partial sseText
	citations                          sseArray
	stopped                            bool // its content_block_stop came
}

// Stand-ins for a content_block_start that never came.
const (
	antSynthText     = `{"type":"text","text":""}`
	antSynthToolUse  = `{"type":"tool_use","input":{}}`
	antSynthThinking = `{"type":"thinking","thinking":"","signature":""}`
)

var antBlockKeys = []string{"text", "thinking", "signature", "input", "citations"}

func (b *antBlock) reset(index int64) {
	b.index, b.start, b.synth, b.stopped = index, "", "", false
	b.text.reset()
	b.thinking.reset()
	b.signature.reset()
	b.partial.reset()
	b.citations.reset()
}

func (s *antState) release(bodyLen int) {
	for i := range s.blocks {
		s.blocks[i].reset(0)
	}
	s.idx.reset()
	s.usage.reset()
	s.extra.reset()
	*s = antState{blocks: s.blocks[:0], idx: s.idx, usage: s.usage, extra: s.extra, scratch: s.scratch[:0]}
	if bodyLen <= streamMaxPooled {
		antPool.Put(s)
	}
}

func (s *antState) block(root gjson.Result, synth string) *antBlock {
	index := root.Get("index").Int()
	var b *antBlock
	if i := s.idx.find(index); i >= 0 {
		b = s.blocks[i]
	} else {
		s.idx.add(index)
		s.blocks, b = sseGrow(s.blocks)
		b.reset(index)
	}
	if b.synth == "" {
		b.synth = synth
	}
	return b
}

// event applies one event and reports whether it was one of the API's and
// whether it was terminal. The data's type decides, as in the SDKs; the
// event: line is only a fallback.
func (s *antState) event(root gjson.Result, name []byte) (known, terminal bool) {
	typ := root.Get("type").Str
	if typ == "" {
		typ = sseView(name)
	}
	switch typ {
	case "message_start":
		s.start(root.Get("message"))
	case "content_block_start":
		b := s.block(root, "")
		if cb := root.Get("content_block"); cb.IsObject() {
			b.start = cb.Raw
		}
	case "content_block_delta":
		s.delta(root)
	case "content_block_stop":
		if i := s.idx.find(root.Get("index").Int()); i >= 0 {
			s.blocks[i].stopped = true
		}
	case "ping":
	case "message_delta":
		if d := root.Get("delta"); d.IsObject() {
			d.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "stop_reason":
					s.stopReason = v.Raw
				case "stop_sequence":
					s.stopSeq = v.Raw
				default:
					if v.Type != gjson.Null {
						s.extra.set(k, v)
					}
				}
				return true
			})
		}
		s.usage.merge(root.Get("usage"), true)
	case "message_stop":
		return true, true
	case "error":
		if s.errv == "" {
			if e := root.Get("error"); e.Exists() {
				s.errv = e.Raw
			} else {
				s.errv = root.Raw
			}
		}
	default:
		return false, false
	}
	return true, false
}

func (s *antState) start(m gjson.Result) {
	if !m.IsObject() {
		return
	}
	s.id, s.role, s.model, s.stopReason, s.stopSeq = "", "", "", "", ""
	s.usage.reset()
	s.extra.reset()
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			s.id = v.Raw
		case "role":
			s.role = v.Raw
		case "model":
			s.model = v.Raw
		case "stop_reason":
			s.stopReason = v.Raw
		case "stop_sequence":
			s.stopSeq = v.Raw
		case "usage":
			s.usage.merge(v, false)
		case "type", "content":
		default:
			s.extra.set(k, v)
		}
		return true
	})
}

func (s *antState) delta(root gjson.Result) {
	d := root.Get("delta")
	if !d.IsObject() {
		return
	}
	switch d.Get("type").Str {
	case "text_delta":
		s.block(root, antSynthText).text.add(d.Get("text"))
	case "input_json_delta":
		s.block(root, antSynthToolUse).partial.add(d.Get("partial_json"))
	case "thinking_delta":
		s.block(root, antSynthThinking).thinking.add(d.Get("thinking"))
	case "signature_delta":
		s.block(root, antSynthThinking).signature.add(d.Get("signature"))
	case "citations_delta":
		s.block(root, antSynthText).citations.add(d.Get("citation"))
	}
}

func (s *antState) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = sseOrNull(dst, s.id)
	dst = append(dst, `,"type":"message","role":`...)
	if s.role == "" {
		dst = append(dst, `"assistant"`...)
	} else {
		dst = append(dst, s.role...)
	}
	dst = append(dst, `,"model":`...)
	dst = sseOrNull(dst, s.model)
	dst = append(dst, `,"content":[`...)
	if !s.idx.sorted() {
		slices.SortFunc(s.blocks, func(a, b *antBlock) int { return cmp.Compare(a.index, b.index) })
	}
	for i := range s.blocks {
		if i > 0 {
			dst = append(dst, ',')
		}
		b := s.blocks[i]
		skel := b.start
		if skel == "" {
			skel = b.synth
		}
		dst = sseMergeObject(dst, skel, antBlockKeys, func(dst []byte, key string, old gjson.Result) ([]byte, bool) {
			return s.blockField(dst, b, key, old)
		})
	}
	dst = append(dst, `],"stop_reason":`...)
	dst = sseOrNull(dst, s.stopReason)
	dst = append(dst, `,"stop_sequence":`...)
	dst = sseOrNull(dst, s.stopSeq)
	dst = append(dst, `,"usage":`...)
	if s.usage.empty() {
		dst = append(dst, "null"...)
	} else {
		dst = s.usage.appendObject(dst)
	}
	dst = s.extra.appendMembers(dst)
	if s.errv != "" {
		dst = append(dst, `,"error":`...)
		dst = append(dst, s.errv...)
	}
	return append(dst, '}')
}

// blockField writes what the deltas made of one member of a block.
func (s *antState) blockField(dst []byte, b *antBlock, key string, old gjson.Result) ([]byte, bool) {
	switch key {
	case "text":
		if b.text.set {
			return b.text.appendJSON(dst, old), true
		}
	case "thinking":
		if b.thinking.set {
			return b.thinking.appendJSON(dst, old), true
		}
	case "signature":
		if b.signature.set {
			return b.signature.appendJSON(dst, old), true
		}
	case "input":
		if len(b.partial.b) > 0 {
			return s.appendInput(dst, b), true
		}
	case "citations":
		if b.citations.n > 0 {
			return b.citations.appendJSON(dst, old), true
		}
	}
	return dst, false
}

// appendInput writes a tool_use block's input: the joined partial_json as
// the JSON it spells, compacted as the API writes it, or, if it is not
// valid JSON (the stream broke off inside it), as a string.
func (s *antState) appendInput(dst []byte, b *antBlock) []byte {
	s.scratch = append(append(append(s.scratch[:0], '"'), b.partial.b...), '"')
	if text := gjson.Parse(sseView(s.scratch)).Str; gjson.Valid(text) {
		return sseAppendCompact(dst, text)
	}
	return b.partial.appendJSON(dst, gjson.Result{})
}
