package capture

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/tidwall/gjson"
)

// SSEEvent is one server-sent event. Data joins multiple data: lines with
// "\n". The slices alias the body being parsed, except a Data joined from
// several lines, which is a fresh slice; none is reused for a later event.
type SSEEvent struct{ Event, Data, ID []byte }

// ErrNotStream reports a body that is not an event stream of the API a
// Reassemble function reads: a JSON error answer, an HTML page, or another
// API's stream.
var ErrNotStream = errors.New("not an event stream of the API")

// ForEachSSE calls fn for each complete event in body, as the WHATWG
// EventSource parser would dispatch it: an event ends at a blank line; lines
// end with "\r\n", "\n" or "\r"; lines starting with ":" are comments; an
// event without a data line is not dispatched; a field name without a colon
// has an empty value, and one space after the colon is dropped. A trailing
// event without its blank line is not delivered. It stops early if fn
// returns false. It reports whether body ended exactly at an event boundary:
// false when it stopped early, or when body ends inside a line or inside an
// event.
func ForEachSSE(body []byte, fn func(ev SSEEvent) bool) (clean bool) {
	s := newSSEScanner(body)
	for {
		ev, ok := s.next()
		if !ok {
			return s.clean()
		}
		if !fn(ev) {
			return false
		}
	}
}

var sseBOM = []byte("\xef\xbb\xbf")

// sseScanner is ForEachSSE as an iterator, so that the Reassemble functions
// need no closure. It remembers where the next LF and CR are, so that a body
// using only one of them is still scanned once.
type sseScanner struct {
	body           []byte
	pos            int
	nextLF, nextCR int
	// pending is set while the lines since the last blank line hold a field.
	pending bool
}

func newSSEScanner(body []byte) sseScanner {
	return sseScanner{body: bytes.TrimPrefix(body, sseBOM), nextLF: -1, nextCR: -1}
}

// clean reports, once next has returned false, whether the body ended at an
// event boundary.
func (s *sseScanner) clean() bool { return s.pos == len(s.body) && !s.pending }

// next returns the next complete event with data, or false at the end of the
// body.
func (s *sseScanner) next() (ev SSEEvent, ok bool) {
	dataLines := 0
	for s.pos < len(s.body) {
		if s.nextLF < s.pos {
			s.nextLF = sseIndexFrom(s.body, s.pos, '\n')
		}
		if s.nextCR < s.pos {
			s.nextCR = sseIndexFrom(s.body, s.pos, '\r')
		}
		end := min(s.nextLF, s.nextCR)
		if end == len(s.body) {
			// The last line has no end: it is not a line yet.
			return SSEEvent{}, false
		}
		line := s.body[s.pos:end]
		s.pos = end + 1
		if s.body[end] == '\r' && s.pos < len(s.body) && s.body[s.pos] == '\n' {
			s.pos++
		}
		if len(line) == 0 {
			s.pending = false
			if dataLines > 0 {
				return ev, true
			}
			ev = SSEEvent{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		s.pending = true
		name, value, found := bytes.Cut(line, []byte{':'})
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(name) {
		case "event":
			ev.Event = value
		case "id":
			ev.ID = value
		case "data":
			switch dataLines {
			case 0:
				ev.Data = value
			case 1:
				joined := make([]byte, 0, len(ev.Data)+1+len(value)+64)
				joined = append(joined, ev.Data...)
				ev.Data = append(append(joined, '\n'), value...)
			default:
				ev.Data = append(append(ev.Data, '\n'), value...)
			}
			dataLines++
		}
	}
	return SSEEvent{}, false
}

// sseIndexFrom returns the index of the first c in b at or after from, or
// len(b).
func sseIndexFrom(b []byte, from int, c byte) int {
	if i := bytes.IndexByte(b[from:], c); i >= 0 {
		return from + i
	}
	return len(b)
}

// sseLooksLikeStream reports whether body can be an event stream, or the
// start of one: its first line that is not blank is a comment or one of the
// standard fields, or the start of one where the body ends.
func sseLooksLikeStream(body []byte) bool {
	body = bytes.TrimPrefix(body, sseBOM)
	body = bytes.TrimLeft(body, "\r\n")
	if len(body) == 0 || body[0] == ':' {
		return true
	}
	// The longest field names have five letters, so six bytes decide.
	head := body[:min(len(body), 6)]
	if i := bytes.IndexAny(head, ":\r\n"); i >= 0 {
		return sseField(string(head[:i]))
	}
	if len(head) < len(body) {
		return false
	}
	for _, f := range [...]string{"data", "event", "id", "retry"} {
		if len(head) <= len(f) && f[:len(head)] == string(head) {
			return true
		}
	}
	return false
}

func sseField(name string) bool {
	switch name {
	case "data", "event", "id", "retry":
		return true
	}
	return false
}

// sseStreamError decides whether a body is not a stream of the API: it
// does not look like an event stream, or it has events but none the API
// sends.
func sseStreamError(body []byte, api string, known, foreign int) error {
	if !sseLooksLikeStream(body) || (known == 0 && foreign > 0) {
		return fmt.Errorf("reassemble %s stream: %w", api, ErrNotStream)
	}
	return nil
}

// sseView returns b as a string without copying, so that gjson results
// alias the body instead of copying each value. The Reassemble functions
// read the body only while they run and never change it.
func sseView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// sseParse returns an event's data as a JSON object, or false when it is
// not one; such events are skipped.
func sseParse(data []byte) (gjson.Result, bool) {
	s := sseView(data)
	if !gjson.Valid(s) {
		return gjson.Result{}, false
	}
	v := gjson.Parse(s)
	return v, v.IsObject()
}

// sseText gathers the pieces of a streamed JSON string as the escaped
// insides of their string literals: joining them needs no decoding, and a
// character escaped as a surrogate pair split across two pieces joins up
// again.
type sseText struct {
	b   []byte
	set bool
}

func (t *sseText) add(v gjson.Result) {
	if v.Type == gjson.String {
		t.b = append(t.b, v.Raw[1:len(v.Raw)-1]...)
		t.set = true
	}
}

// replace takes a done event's whole text over the pieces.
func (t *sseText) replace(v gjson.Result) {
	if v.Type == gjson.String {
		t.b = t.b[:0]
		t.add(v)
	}
}

func (t *sseText) reset() { t.b, t.set = t.b[:0], false }

// hold drops the text's last cutHold bytes, never inside an escape or a
// UTF-8 sequence (cutStringEnd).
func (t *sseText) hold() { t.b = t.b[:cutStringEnd(t.b, -1)] }

// appendJSON appends the string literal, after prefix: the inside of an
// earlier value of the same string, such as a content block's initial text.
func (t *sseText) appendJSON(dst []byte, prefix gjson.Result) []byte {
	dst = append(dst, '"')
	if prefix.Type == gjson.String {
		dst = append(dst, prefix.Raw[1:len(prefix.Raw)-1]...)
	}
	dst = append(dst, t.b...)
	return append(dst, '"')
}

// sseArray gathers the elements of streamed JSON arrays, such as logprobs
// or citations, as raw JSON.
type sseArray struct {
	b []byte
	n int
}

// addElems appends the elements of the array v.
func (a *sseArray) addElems(v gjson.Result) {
	if v.IsArray() {
		a.addInner(v.Raw[1 : len(v.Raw)-1])
	}
}

// add appends v as one element.
func (a *sseArray) add(v gjson.Result) {
	if v.Exists() {
		a.addInner(v.Raw)
	}
}

func (a *sseArray) addInner(raw string) {
	raw = sseTrimSpace(raw)
	if raw == "" {
		return
	}
	if a.n > 0 {
		a.b = append(a.b, ',')
	}
	a.b = append(a.b, raw...)
	a.n++
}

func (a *sseArray) reset() { a.b, a.n = a.b[:0], 0 }

// appendJSON appends the array, after the elements of prefix if it is an
// array.
func (a *sseArray) appendJSON(dst []byte, prefix gjson.Result) []byte {
	dst = append(dst, '[')
	if prefix.IsArray() {
		if inner := sseTrimSpace(prefix.Raw[1 : len(prefix.Raw)-1]); inner != "" {
			dst = append(dst, inner...)
			if a.n > 0 {
				dst = append(dst, ',')
			}
		}
	}
	dst = append(dst, a.b...)
	return append(dst, ']')
}

func sseTrimSpace(s string) string {
	for len(s) > 0 && sseSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && sseSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func sseSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// sseIndex maps the index numbers a stream gives choices, tool calls or
// content blocks to positions in a slice. Streams give small dense numbers,
// but nothing stops a broken one from giving millions: past a few entries a
// map keeps lookups constant.
type sseIndex struct {
	keys []int64
	m    map[int64]int
}

const sseIndexLinear = 8

// find returns the position of k, or -1.
func (x *sseIndex) find(k int64) int {
	if x.m != nil {
		if i, ok := x.m[k]; ok {
			return i
		}
		return -1
	}
	// The last entry is the likeliest: deltas mostly go to the newest one.
	for i := len(x.keys) - 1; i >= 0; i-- {
		if x.keys[i] == k {
			return i
		}
	}
	return -1
}

// add records k at the next position and returns it.
func (x *sseIndex) add(k int64) int {
	i := len(x.keys)
	x.keys = append(x.keys, k)
	if x.m == nil && len(x.keys) > sseIndexLinear {
		x.m = make(map[int64]int, 2*len(x.keys))
		for j, key := range x.keys {
			x.m[key] = j
		}
	} else if x.m != nil {
		x.m[k] = i
	}
	return i
}

func (x *sseIndex) reset() { x.keys, x.m = x.keys[:0], nil }

// sorted reports whether the keys are in ascending order, as they are in
// almost every stream, so that output needs no sort.
func (x *sseIndex) sorted() bool {
	return slices.IsSorted(x.keys)
}

// sseKV is an ordered JSON object being merged from several events, such as
// the usage of an Anthropic message_start and its message_delta events.
type sseKV struct {
	names, keys, vals []string
	m                 map[string]int
}

// set gives key the value v, in place if the key is there already.
func (o *sseKV) set(key, v gjson.Result) {
	name := key.Str
	i := -1
	if o.m != nil {
		if j, ok := o.m[name]; ok {
			i = j
		}
	} else {
		for j, n := range o.names {
			if n == name {
				i = j
				break
			}
		}
	}
	if i >= 0 {
		o.vals[i] = v.Raw
		return
	}
	o.names = append(o.names, name)
	o.keys = append(o.keys, key.Raw)
	o.vals = append(o.vals, v.Raw)
	if o.m == nil && len(o.names) > sseIndexLinear {
		o.m = make(map[string]int, 2*len(o.names))
		for j, n := range o.names {
			o.m[n] = j
		}
	} else if o.m != nil {
		o.m[name] = len(o.names) - 1
	}
}

// merge sets every member of the object v, skipping nulls if skipNull:
// Anthropic's message_delta sends null for what it does not update.
func (o *sseKV) merge(v gjson.Result, skipNull bool) {
	if !v.IsObject() {
		return
	}
	v.ForEach(func(key, val gjson.Result) bool {
		if !skipNull || val.Type != gjson.Null {
			o.set(key, val)
		}
		return true
	})
}

func (o *sseKV) empty() bool { return len(o.names) == 0 }

// reset empties o, dropping its views of the body so that a pooled o does
// not keep the body alive.
func (o *sseKV) reset() {
	clear(o.names)
	clear(o.keys)
	clear(o.vals)
	o.names, o.keys, o.vals, o.m = o.names[:0], o.keys[:0], o.vals[:0], nil
}

// appendMembers appends the members, each preceded by a comma.
func (o *sseKV) appendMembers(dst []byte) []byte {
	for i := range o.keys {
		dst = append(dst, ',')
		dst = append(dst, o.keys[i]...)
		dst = append(dst, ':')
		dst = append(dst, o.vals[i]...)
	}
	return dst
}

func (o *sseKV) appendObject(dst []byte) []byte {
	if o.empty() {
		return append(dst, '{', '}')
	}
	n := len(dst)
	dst = o.appendMembers(dst)
	dst[n] = '{'
	return append(dst, '}')
}

// sseMergeObject appends the JSON object skel with the members named in
// keys rewritten by field, which gets the old value (or a Result that does
// not exist) and reports false to keep it. Keys that skel lacks follow, in
// the order of keys, when field has a value for them. It rebuilds a content
// block or an output item from its start event and its deltas, keeping the
// members it knows nothing about.
func sseMergeObject(dst []byte, skel string, keys []string, field func(dst []byte, key string, old gjson.Result) ([]byte, bool)) []byte {
	dst = append(dst, '{')
	first := true
	var seen uint64
	comma := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	if skel != "" {
		gjson.Parse(skel).ForEach(func(key, val gjson.Result) bool {
			comma()
			dst = append(dst, key.Raw...)
			dst = append(dst, ':')
			if i := slices.Index(keys, key.Str); i >= 0 {
				seen |= 1 << i
				var ok bool
				if dst, ok = field(dst, keys[i], val); ok {
					return true
				}
			}
			dst = append(dst, val.Raw...)
			return true
		})
	}
	for i, k := range keys {
		if seen&(1<<i) != 0 {
			continue
		}
		mark, wasFirst := len(dst), first
		comma()
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, '"', ':')
		var ok bool
		if dst, ok = field(dst, k, gjson.Result{}); !ok {
			dst, first = dst[:mark], wasFirst
		}
	}
	return append(dst, '}')
}

// streamMaxPooled keeps the state of one huge stream from staying in a
// pool: states of bodies larger than this are left to the collector.
const streamMaxPooled = 1 << 20

// sseGrow extends s by one element, reusing an element (and its buffers)
// left from an earlier use of a pooled state, and returns it for resetting.
// Elements are pointers so that a stream with very many of them does not
// copy them around as the slice grows or sorts.
func sseGrow[T any](s []*T) ([]*T, *T) {
	if len(s) < cap(s) {
		s = s[:len(s)+1]
		if s[len(s)-1] == nil {
			s[len(s)-1] = new(T)
		}
	} else {
		s = append(s, new(T))
	}
	return s, s[len(s)-1]
}

// sseOrNull appends raw, or null if it is empty.
func sseOrNull(dst []byte, raw string) []byte {
	if raw == "" {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// sseAppendCompact appends the valid JSON text s without its insignificant
// white space, as the APIs write a tool call's input.
func sseAppendCompact(dst []byte, s string) []byte {
	inString := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString:
			dst = append(dst, c)
			if c == '\\' && i+1 < len(s) {
				i++
				dst = append(dst, s[i])
			} else if c == '"' {
				inString = false
			}
		case sseSpace(c):
		default:
			if c == '"' {
				inString = true
			}
			dst = append(dst, c)
		}
	}
	return dst
}

// scanStream feeds every event of body to handle, stopping after the event
// handle calls terminal, and returns ErrNotStream (wrapped, naming api) when
// body is not a stream of the API: not SSE at all, or events but none that
// handle knew. handle gets the event's data parsed as JSON when it is JSON
// (parsed false otherwise). A terminal marker that is not the API's own
// JSON, such as OpenAI's [DONE], counts neither as known nor as foreign.
func scanStream(body []byte, api string, handle func(ev SSEEvent, root gjson.Result, parsed bool) (known, terminal bool)) (complete bool, err error) {
	var known, foreign int
	sc := newSSEScanner(body)
	for {
		ev, ok := sc.next()
		if !ok {
			break
		}
		root, parsed := sseParse(ev.Data)
		k, terminal := handle(ev, root, parsed)
		switch {
		case k:
			known++
		case terminal:
		case len(ev.Data) > 0:
			foreign++
		}
		if terminal {
			complete = true
			break
		}
	}
	return complete, sseStreamError(body, api, known, foreign)
}
