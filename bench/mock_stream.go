package bench

import (
	"bufio"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Constant pieces of OpenAI stream chunks. Every chunk is the per-request head
// (id, created, model), one choice, and a tail.
const (
	chatRoleChoice     = `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`
	chatContentOpen    = `{"index":0,"delta":{"content":`
	chatContentClose   = `},"logprobs":null,"finish_reason":null}`
	chatFinalChoice    = `{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`
	textContentOpen    = `{"text":`
	textContentClose   = `,"index":0,"logprobs":null,"finish_reason":null}`
	textFinalChoice    = `{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}`
	chunkTail          = "]}\n\n"
	chunkTailNullUsage = "],\"usage\":null}\n\n"
	eventDone          = "data: [DONE]\n\n"
)

// Constant Anthropic stream events.
const (
	eventBlockStart = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	eventPing       = "event: ping\ndata: {\"type\":\"ping\"}\n\n"
	eventDeltaOpen  = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
	eventDeltaClose = "}}\n\n"
	eventBlockStop  = "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
	eventStop       = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
)

// sse is one streamed answer. The handler fills it and returns; fasthttp then
// runs run on its own goroutine, so everything run reads from the request has
// been copied into buf.
type sse struct {
	m            *Mock
	endpoint     endpoint
	done         <-chan struct{}
	chunkDelay   time.Duration
	includeUsage bool
	// buf holds the per-request bytes: for OpenAI, the chunk head in
	// buf[:split] and the usage object in buf[split:]; for Anthropic, the
	// whole message_start event.
	buf   []byte
	split int
	// runFn is run bound once, so that handing it to fasthttp per request
	// does not allocate a closure.
	runFn fasthttp.StreamWriter
}

var ssePool sync.Pool

// init sets New here because run puts streams back in the pool, which would
// make a New set in the declaration refer to itself.
func init() {
	ssePool.New = func() any {
		s := &sse{buf: make([]byte, 0, 512)}
		s.runFn = s.run
		return s
	}
}

// stream starts a streamed answer. Headers go out when the handler returns;
// each event is flushed as soon as it is written.
func (m *Mock) stream(ctx *fasthttp.RequestCtx, ep endpoint, a answer, includeUsage bool, chunkDelay time.Duration) {
	s := ssePool.Get().(*sse)
	s.m, s.endpoint, s.done, s.chunkDelay, s.includeUsage = m, ep, ctx.Done(), chunkDelay, includeUsage
	b := s.buf[:0]
	switch ep {
	case endpointMessages:
		b = append(b, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock"...)
		b = strconv.AppendUint(b, a.seq, 10)
		b = append(b, `","type":"message","role":"assistant","model":`...)
		b = m.appendServedModel(b, a.model)
		b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
		b = appendAnthropicUsage(b, a.promptTokens, 1)
		b = append(b, "}}\n\n"...)
	default:
		b = append(b, `data: {"id":"`...)
		if ep == endpointChat {
			b = append(b, `chatcmpl-mock`...)
		} else {
			b = append(b, `cmpl-mock`...)
		}
		b = strconv.AppendUint(b, a.seq, 10)
		if ep == endpointChat {
			b = append(b, `","object":"chat.completion.chunk","created":`...)
		} else {
			b = append(b, `","object":"text_completion","created":`...)
		}
		b = strconv.AppendInt(b, a.created, 10)
		b = append(b, `,"model":`...)
		b = m.appendServedModel(b, a.model)
		b = append(b, `,"system_fingerprint":"`+systemFingerprint+`","choices":[`...)
		s.split = len(b)
		b = m.appendOpenAIUsage(b, a.promptTokens)
	}
	s.buf = b
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.SetBodyStreamWriter(s.runFn)
}

func (s *sse) run(w *bufio.Writer) {
	if s.endpoint == endpointMessages {
		s.runAnthropic(w)
	} else {
		s.runOpenAI(w)
	}
	s.m, s.done = nil, nil
	if cap(s.buf) <= maxPooledBuf {
		ssePool.Put(s)
	}
}

// runOpenAI writes the chunks of a chat or legacy completion stream. A failed
// flush means the client left; bufio's errors are sticky, so checking the
// flush covers the writes before it.
func (s *sse) runOpenAI(w *bufio.Writer) {
	head, usage := s.buf[:s.split], s.buf[s.split:]
	tail := chunkTail
	if s.includeUsage {
		// With include_usage, OpenAI sends "usage":null on every chunk but
		// the last.
		tail = chunkTailNullUsage
	}
	chat := s.endpoint == endpointChat
	if chat {
		w.Write(head)
		w.WriteString(chatRoleChoice)
		w.WriteString(tail)
		if w.Flush() != nil {
			return
		}
	}
	for i, c := range s.m.text.chunks {
		if i > 0 && !wait(s.chunkDelay, s.done) {
			return
		}
		w.Write(head)
		if chat {
			w.WriteString(chatContentOpen)
			w.Write(c)
			w.WriteString(chatContentClose)
		} else {
			w.WriteString(textContentOpen)
			w.Write(c)
			w.WriteString(textContentClose)
		}
		w.WriteString(tail)
		if w.Flush() != nil {
			return
		}
	}
	w.Write(head)
	if chat {
		w.WriteString(chatFinalChoice)
	} else {
		w.WriteString(textFinalChoice)
	}
	w.WriteString(tail)
	if w.Flush() != nil {
		return
	}
	if s.includeUsage {
		w.Write(head)
		w.WriteString(`],"usage":`)
		w.Write(usage)
		w.WriteString("}\n\n")
		if w.Flush() != nil {
			return
		}
	}
	w.WriteString(eventDone)
	w.Flush()
}

// runAnthropic writes the event sequence of a Messages API stream.
func (s *sse) runAnthropic(w *bufio.Writer) {
	w.Write(s.buf)
	if w.Flush() != nil {
		return
	}
	for _, ev := range [...]string{eventBlockStart, eventPing} {
		w.WriteString(ev)
		if w.Flush() != nil {
			return
		}
	}
	for i, c := range s.m.text.chunks {
		if i > 0 && !wait(s.chunkDelay, s.done) {
			return
		}
		w.WriteString(eventDeltaOpen)
		w.Write(c)
		w.WriteString(eventDeltaClose)
		if w.Flush() != nil {
			return
		}
	}
	for _, ev := range [...]string{eventBlockStop, s.m.text.messageDelta, eventStop} {
		w.WriteString(ev)
		if w.Flush() != nil {
			return
		}
	}
}
