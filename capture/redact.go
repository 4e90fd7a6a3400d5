package capture

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// RedactionTypePath is the type of values replaced because a configured
// path selected them.
const RedactionTypePath = "path"

// RedactorOptions configure a Redactor.
type RedactorOptions struct {
	// Secret keys the HMAC of the tags that replace values, so that equal
	// values stay linkable across records without being revealed.
	// Required.
	Secret []byte
	// Detectors names the detectors to run on every string (see
	// AllDetectors). If nil, all of them; if empty but not nil, none.
	Detectors []string
	// Paths select values that are replaced whole, whatever their type,
	// relative to the root of each redacted value: dotted object keys,
	// ["quoted keys"], [n] array indices and [*] for every element of an
	// array (or every member of an object), as in messages[*].content.
	// Detectors do not run inside a selected value.
	Paths []string
}

// Redactor replaces sensitive values with tags of the form
// [REDACTED:<type>:<hmac8>], where hmac8 is the first 8 hex digits of
// HMAC-SHA256(secret, value). It is immutable after NewRedactor and safe
// for concurrent use.
type Redactor struct {
	set    detSet
	paths  [][]redactSeg
	secret []byte
	// states holds per-call scratch (decode buffers, the HMAC): Redact runs
	// for every record on the connection's goroutine and must not allocate
	// for a clean body.
	states sync.Pool
}

// redactSeg is one step of a path: an object key, an array index, or
// every element (wild).
type redactSeg struct {
	key   string
	index int // -1 for a key
	wild  bool
}

// NewRedactor checks o and returns its Redactor.
func NewRedactor(o RedactorOptions) (*Redactor, error) {
	if len(o.Secret) == 0 {
		return nil, errors.New("new redactor: secret is empty")
	}
	r := &Redactor{secret: append([]byte(nil), o.Secret...)}
	names := o.Detectors
	if names == nil {
		names = AllDetectors
	}
	for _, name := range names {
		k := redactDetectorIndex(name)
		if k < 0 {
			return nil, fmt.Errorf("new redactor: unknown detector %q (known: %s)", name, strings.Join(AllDetectors, ", "))
		}
		r.set |= 1 << k
	}
	for _, p := range o.Paths {
		segs, err := redactParsePath(p)
		if err != nil {
			return nil, fmt.Errorf("new redactor: path %q: %w", p, err)
		}
		r.paths = append(r.paths, segs)
	}
	r.states.New = func() any {
		return &redactState{r: r, mac: hmac.New(sha256.New, r.secret)}
	}
	return r, nil
}

func redactDetectorIndex(name string) int {
	for k, n := range detNames {
		if n == name {
			return k
		}
	}
	return -1
}

// redactParsePath parses one configured path.
func redactParsePath(p string) ([]redactSeg, error) {
	if p == "" {
		return nil, errors.New("empty path")
	}
	var segs []redactSeg
	for i := 0; i < len(p); {
		switch c := p[i]; {
		case c == '[' && i+1 < len(p) && p[i+1] == '"':
			k := i + 2
			for k < len(p) && p[k] != '"' {
				if p[k] == '\\' {
					k++
				}
				k++
			}
			if k+1 >= len(p) || p[k+1] != ']' {
				return nil, fmt.Errorf("unterminated quoted key at offset %d", i)
			}
			var key string
			if err := json.Unmarshal([]byte(p[i+1:k+1]), &key); err != nil {
				return nil, fmt.Errorf("bad quoted key at offset %d", i)
			}
			segs = append(segs, redactSeg{key: key, index: -1})
			i = k + 2
		case c == '[':
			k := strings.IndexByte(p[i:], ']')
			if k < 0 {
				return nil, fmt.Errorf("unterminated [ at offset %d", i)
			}
			inner := p[i+1 : i+k]
			if inner == "*" {
				segs = append(segs, redactSeg{wild: true})
			} else {
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 || inner != strconv.Itoa(n) {
					return nil, fmt.Errorf("bad index %q at offset %d", inner, i)
				}
				segs = append(segs, redactSeg{index: n})
			}
			i += k + 1
		case c == '.' && i > 0, c != '.' && i == 0:
			if c == '.' {
				i++
			}
			k := i
			for k < len(p) && !redactPathDelim(p[k]) {
				k++
			}
			switch key := p[i:k]; {
			case key == "":
				return nil, fmt.Errorf("empty key at offset %d", i)
			case key == "*":
				return nil, fmt.Errorf("bare * at offset %d (write [*])", i)
			default:
				segs = append(segs, redactSeg{key: key, index: -1})
			}
			i = k
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
		}
	}
	return segs, nil
}

func redactPathDelim(c byte) bool {
	return c == '.' || c == '[' || c == ']' || c == '"' || c <= ' '
}

// redactMaxDepth is the deepest nesting Redact walks, the same limit as
// encoding/json's: deeper values count as invalid JSON and are passed
// through unchanged.
const redactMaxDepth = 10000

// redactState is the scratch of one Redact or RedactString call.
type redactState struct {
	r      *Redactor
	js     []byte
	dst    []byte
	copied int // js[:copied] is in dst already
	reds   []Redaction
	root   string
	frames []redactFrame // the path from the root to the current value
	act    []int32       // stacked ranges of the paths still matching
	ms     []detMatch
	dec    []byte // a decoded string
	key    []byte // a decoded key
	where  []byte
	mac    hash.Hash
	sum    []byte
}

// redactFrame is one step into js: an object member (its key is
// js[ks:ke], esc if it holds escapes) or an array element (ks < 0).
type redactFrame struct {
	ks, ke, idx int
	esc         bool
}

func (r *Redactor) getState() *redactState { return r.states.Get().(*redactState) }

func (r *Redactor) putState(st *redactState) {
	st.js, st.dst, st.reds = nil, nil, nil
	st.frames, st.act = st.frames[:0], st.act[:0]
	if cap(st.dec) > 64<<10 {
		st.dec = nil // don't keep one huge string's buffer alive
	}
	r.states.Put(st)
}

// Redact appends to dst the JSON value js with every match replaced, and
// appends to reds one Redaction per replaced value, Where being root plus
// the path inside js ("input.messages[1].content"). js must be a valid JSON
// value; if it is not, Redact returns it unchanged (the caller only passes
// valid JSON). The output is valid JSON. dst and js must not overlap.
func (r *Redactor) Redact(dst, js []byte, root string, reds []Redaction) ([]byte, []Redaction) {
	dst, reds, _ = r.redact(dst, js, root, reds)
	return dst, reds
}

// redact is Redact, and says whether it could walk js: if not (JSON
// nested deeper than redactMaxDepth, or not JSON), js was passed through
// unredacted.
func (r *Redactor) redact(dst, js []byte, root string, reds []Redaction) ([]byte, []Redaction, bool) {
	n0, r0 := len(dst), len(reds)
	st := r.getState()
	st.js, st.dst, st.reds, st.root, st.copied = js, dst, reds, root, 0
	for k := range r.paths {
		st.act = append(st.act, int32(k))
	}
	end, ok := st.value(redactSkipWS(js, 0), 0, len(st.act), false)
	ok = ok && redactSkipWS(js, end) == len(js)
	if ok {
		dst, reds = append(st.dst, js[st.copied:]...), st.reds
	} else {
		dst, reds = append(st.dst[:n0], js...), st.reds[:r0]
	}
	r.putState(st)
	return dst, reds, ok
}

// RedactString is Redact for one plain string (not JSON), such as a header
// value: it appends s with every detector match replaced to dst, and one
// Redaction per match, at where, to reds. Paths do not apply.
func (r *Redactor) RedactString(dst []byte, s []byte, where string, reds []Redaction) ([]byte, []Redaction) {
	if r.set == 0 {
		return append(dst, s...), reds
	}
	st := r.getState()
	st.ms = detect(r.set, s, false, st.ms[:0])
	prev := 0
	for _, m := range st.ms {
		dst = append(dst, s[prev:m.start]...)
		dst = st.appendTag(dst, detNames[m.kind], s[m.start:m.end])
		reds = append(reds, Redaction{Where: where, Type: detNames[m.kind]})
		prev = m.end
	}
	dst = append(dst, s[prev:]...)
	r.putState(st)
	return dst, reds
}

// value walks the JSON value at js[i] and returns its end. The paths
// act[lo:hi] matched every step to here.
func (st *redactState) value(i, lo, hi int, hint bool) (int, bool) {
	js := st.js
	if i >= len(js) {
		return 0, false
	}
	if lo < hi {
		depth := len(st.frames)
		for _, k := range st.act[lo:hi] {
			if len(st.r.paths[k]) == depth {
				return st.pathValue(i)
			}
		}
	}
	switch c := js[i]; {
	case (c == '{' || c == '[') && len(st.frames) >= redactMaxDepth:
		return 0, false
	case c == '{':
		return st.object(i, lo, hi)
	case c == '[':
		return st.array(i, lo, hi)
	case c == '"':
		return st.str(i, hint)
	default:
		return redactSkipScalar(js, i)
	}
}

func (st *redactState) object(i, lo, hi int) (int, bool) {
	js := st.js
	i = redactSkipWS(js, i+1)
	if i < len(js) && js[i] == '}' {
		return i + 1, true
	}
	depth := len(st.frames)
	secret := st.r.set.has(detSecret)
	for {
		if i >= len(js) || js[i] != '"' {
			return 0, false
		}
		end, esc, ok := redactScanString(js, i)
		if !ok {
			return 0, false
		}
		ks, ke := i+1, end-1
		i = redactSkipWS(js, end)
		if i >= len(js) || js[i] != ':' {
			return 0, false
		}
		i = redactSkipWS(js, i+1)
		clo := len(st.act)
		for _, k := range st.act[lo:hi] {
			seg := &st.r.paths[k][depth]
			if seg.wild || seg.index < 0 && st.keyIs(ks, ke, esc, seg.key) {
				st.act = append(st.act, k)
			}
		}
		hint := secret && ke-ks >= 15 && st.keyNamesAWSSecret(ks, ke, esc)
		st.frames = append(st.frames, redactFrame{ks: ks, ke: ke, esc: esc})
		i, ok = st.value(i, clo, len(st.act), hint)
		st.frames, st.act = st.frames[:depth], st.act[:clo]
		if !ok {
			return 0, false
		}
		i = redactSkipWS(js, i)
		if i >= len(js) {
			return 0, false
		}
		switch js[i] {
		case ',':
			i = redactSkipWS(js, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

func (st *redactState) array(i, lo, hi int) (int, bool) {
	js := st.js
	i = redactSkipWS(js, i+1)
	if i < len(js) && js[i] == ']' {
		return i + 1, true
	}
	depth := len(st.frames)
	for idx := 0; ; idx++ {
		clo := len(st.act)
		for _, k := range st.act[lo:hi] {
			if seg := &st.r.paths[k][depth]; seg.wild || seg.index == idx {
				st.act = append(st.act, k)
			}
		}
		st.frames = append(st.frames, redactFrame{ks: -1, idx: idx})
		var ok bool
		i, ok = st.value(i, clo, len(st.act), false)
		st.frames, st.act = st.frames[:depth], st.act[:clo]
		if !ok {
			return 0, false
		}
		i = redactSkipWS(js, i)
		if i >= len(js) {
			return 0, false
		}
		switch js[i] {
		case ',':
			i = redactSkipWS(js, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// str runs the detectors on the string at js[i] and rewrites it if they
// found anything.
func (st *redactState) str(i int, hint bool) (int, bool) {
	js := st.js
	end, esc, ok := redactScanString(js, i)
	if !ok || st.r.set == 0 {
		return end, ok
	}
	text := js[i+1 : end-1]
	if esc {
		st.dec = redactUnescape(st.dec[:0], text)
		text = st.dec
	}
	st.ms = detect(st.r.set, text, hint, st.ms[:0])
	if len(st.ms) == 0 {
		return end, true
	}
	where := st.whereString()
	dst := append(st.dst, js[st.copied:i]...)
	dst = append(dst, '"')
	prev := 0
	for _, m := range st.ms {
		dst = redactAppendText(dst, text[prev:m.start], esc)
		dst = st.appendTag(dst, detNames[m.kind], text[m.start:m.end])
		st.reds = append(st.reds, Redaction{Where: where, Type: detNames[m.kind]})
		prev = m.end
	}
	dst = redactAppendText(dst, text[prev:], esc)
	st.dst = append(dst, '"')
	st.copied = end
	return end, true
}

// pathValue replaces the whole value at js[i], which a path selected.
func (st *redactState) pathValue(i int) (int, bool) {
	end, ok := redactSkipValue(st.js, i, len(st.frames))
	if !ok {
		return 0, false
	}
	dst := append(st.dst, st.js[st.copied:i]...)
	dst = append(dst, '"')
	dst = st.appendTag(dst, RedactionTypePath, st.js[i:end])
	st.dst = append(dst, '"')
	st.copied = end
	st.reds = append(st.reds, Redaction{Where: st.whereString(), Type: RedactionTypePath})
	return end, true
}

// appendTag appends [REDACTED:typ:hmac8] for the value v.
func (st *redactState) appendTag(dst []byte, typ string, v []byte) []byte {
	st.mac.Reset()
	st.mac.Write(v)
	st.sum = st.mac.Sum(st.sum[:0])
	dst = append(dst, "[REDACTED:"...)
	dst = append(dst, typ...)
	dst = append(dst, ':')
	dst = hex.AppendEncode(dst, st.sum[:4])
	return append(dst, ']')
}

// keyIs says the key js[ks:ke] is want.
func (st *redactState) keyIs(ks, ke int, esc bool, want string) bool {
	if !esc {
		return string(st.js[ks:ke]) == want
	}
	st.key = redactUnescape(st.key[:0], st.js[ks:ke])
	return string(st.key) == want
}

// keyNamesAWSSecret says the key js[ks:ke] names an AWS secret access key.
func (st *redactState) keyNamesAWSSecret(ks, ke int, esc bool) bool {
	if !esc {
		return detKeyNamesAWSSecret(st.js[ks:ke])
	}
	st.key = redactUnescape(st.key[:0], st.js[ks:ke])
	return detKeyNamesAWSSecret(st.key)
}

// whereString returns the root and the path to the current value.
func (st *redactState) whereString() string {
	w := append(st.where[:0], st.root...)
	for _, f := range st.frames {
		if f.ks < 0 {
			w = append(w, '[')
			w = strconv.AppendInt(w, int64(f.idx), 10)
			w = append(w, ']')
			continue
		}
		key := st.js[f.ks:f.ke]
		if f.esc {
			st.key = redactUnescape(st.key[:0], key)
			key = st.key
		}
		w = redactAppendKey(w, key)
	}
	st.where = w
	return string(w)
}

// redactAppendKey appends .key for an identifier and ["key"] for anything
// else.
func redactAppendKey(w, key []byte) []byte {
	ident := len(key) > 0 && !detDigit(key[0])
	for _, c := range key {
		if !detIs(c, ccAlnum) && c != '_' {
			ident = false
			break
		}
	}
	if ident {
		if len(w) > 0 {
			w = append(w, '.')
		}
		return append(w, key...)
	}
	w = append(w, '[', '"')
	w = redactAppendEscaped(w, key)
	return append(w, '"', ']')
}

// redactAppendText appends text to a JSON string being written: as it is
// if it came from a string without escapes, escaped otherwise.
func redactAppendText(dst, text []byte, escape bool) []byte {
	if !escape {
		return append(dst, text...)
	}
	return redactAppendEscaped(dst, text)
}

// redactAppendEscaped appends s with the bytes JSON requires escaped
// escaped; other bytes, UTF-8 or not, are kept as they are.
func redactAppendEscaped(dst, s []byte) []byte {
	const hexd = "0123456789abcdef"
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// redactStrPlain marks the bytes a JSON string holds without escaping.
var redactStrPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// redactScanString checks the string at js[i] (a quote) and returns the
// index after its closing quote and whether it holds escapes.
func redactScanString(js []byte, i int) (end int, esc, ok bool) {
	j := i + 1
	for {
		for j < len(js) && redactStrPlain[js[j]] {
			j++
		}
		if j >= len(js) {
			return 0, false, false
		}
		switch js[j] {
		case '"':
			return j + 1, esc, true
		case '\\':
			esc = true
			if j+1 >= len(js) {
				return 0, false, false
			}
			switch js[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(js) || !redactHex4(js[j+2:j+6]) {
					return 0, false, false
				}
				j += 6
			default:
				return 0, false, false
			}
		default:
			return 0, false, false // a control character
		}
	}
}

func redactHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !detIs(c, ccHex) {
			return false
		}
	}
	return true
}

func redactHexVal(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// redactUnescape appends the decoded content of a checked JSON string
// (without its quotes) to dst. A lone surrogate becomes U+FFFD, as in
// encoding/json.
func redactUnescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := redactHexVal(s[i+2:])
			i += 6
			if redactHighSurrogate(r) && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				if r2 := redactHexVal(s[i+2:]); redactLowSurrogate(r2) {
					r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r) // surrogates left alone become U+FFFD
			continue
		default: // " \ /
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func redactHighSurrogate(r rune) bool { return 0xD800 <= r && r < 0xDC00 }
func redactLowSurrogate(r rune) bool  { return 0xDC00 <= r && r < 0xE000 }

func redactSkipWS(js []byte, i int) int {
	for i < len(js) {
		switch js[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// redactSkipValue checks the value at js[i], inside depth containers, and
// returns its end.
func redactSkipValue(js []byte, i, depth int) (int, bool) {
	if i >= len(js) {
		return 0, false
	}
	switch js[i] {
	case '"':
		end, _, ok := redactScanString(js, i)
		return end, ok
	case '{', '[':
		if depth >= redactMaxDepth {
			return 0, false
		}
		closer := byte('}')
		if js[i] == '[' {
			closer = ']'
		}
		obj := closer == '}'
		i = redactSkipWS(js, i+1)
		if i < len(js) && js[i] == closer {
			return i + 1, true
		}
		for {
			var ok bool
			if obj {
				if i >= len(js) || js[i] != '"' {
					return 0, false
				}
				if i, _, ok = redactScanString(js, i); !ok {
					return 0, false
				}
				if i = redactSkipWS(js, i); i >= len(js) || js[i] != ':' {
					return 0, false
				}
				i = redactSkipWS(js, i+1)
			}
			if i, ok = redactSkipValue(js, i, depth+1); !ok {
				return 0, false
			}
			if i = redactSkipWS(js, i); i >= len(js) {
				return 0, false
			}
			switch js[i] {
			case ',':
				i = redactSkipWS(js, i+1)
			case closer:
				return i + 1, true
			default:
				return 0, false
			}
		}
	default:
		return redactSkipScalar(js, i)
	}
}

// redactSkipScalar checks the number or literal at js[i] and returns its end.
func redactSkipScalar(js []byte, i int) (int, bool) {
	for _, lit := range [...]string{"true", "false", "null"} {
		if js[i] == lit[0] {
			if len(js)-i >= len(lit) && string(js[i:i+len(lit)]) == lit {
				return i + len(lit), true
			}
			return 0, false
		}
	}
	j := i
	if js[j] == '-' {
		j++
	}
	switch {
	case j >= len(js):
		return 0, false
	case js[j] == '0':
		j++
	case '1' <= js[j] && js[j] <= '9':
		j = detRun(js, j, ccDigit)
	default:
		return 0, false
	}
	if j < len(js) && js[j] == '.' {
		k := detRun(js, j+1, ccDigit)
		if k == j+1 {
			return 0, false
		}
		j = k
	}
	if j < len(js) && (js[j] == 'e' || js[j] == 'E') {
		j++
		if j < len(js) && (js[j] == '+' || js[j] == '-') {
			j++
		}
		k := detRun(js, j, ccDigit)
		if k == j {
			return 0, false
		}
		j = k
	}
	return j, true
}
