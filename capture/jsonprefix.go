package capture

import "unicode/utf8"

// cutHold is how many bytes are dropped from the end of a string or text
// cut short before the detectors see it. Detectors recognize whole values:
// the visible front of a value split by the cut ("4111 1111 111", "jane.do")
// matches nothing and would reach the record in clear. 64 bytes is longer
// than a card number, an SSN, an IBAN, a phone number or a cloud access
// key id, and than nearly every email address.
const cutHold = 64

// closeJSONPrefix appends to dst the JSON object or array p, cut short,
// made whole again, so that redaction paths and detectors can walk it:
// everything up to the end of the last complete value (or the last opened
// container) is kept; a string cut in value position is kept and closed,
// less its last cutHold bytes and any escape or UTF-8 sequence those would
// split; a cut key, a key without a complete value and a number or literal
// that reaches the cut are dropped; then the open containers are closed.
// The result is at most len(p) plus one quote plus one closer per open
// container long. It returns false when p does not begin a JSON object or
// array, or nests deeper than Redact walks.
func closeJSONPrefix(dst, p []byte) ([]byte, bool) {
	if len(p) == 0 || (p[0] != '{' && p[0] != '[') {
		return dst, false
	}
	const (
		wantValue      = iota // after ':' or an array's ','
		wantValueOrEnd        // after '['
		wantKey               // after an object's ','
		wantKeyOrEnd          // after '{'
		wantColon             // after a key
		wantNext              // after a value: ',' or the closer
	)
	var buf [32]byte
	closers := buf[:0] // the open containers' closers, innermost last
	keep := 0          // p[:keep] is kept as it is
	cutStr := -1       // the opening quote of a string cut in value position
	state := wantValue
scan:
	for i := 0; ; {
		i = redactSkipWS(p, i)
		if i >= len(p) {
			break
		}
		c := p[i]
		switch state {
		case wantValue, wantValueOrEnd:
			switch {
			case c == ']' && state == wantValueOrEnd:
				closers, keep, i = closers[:len(closers)-1], i+1, i+1
				state = wantNext
			case c == '{' || c == '[':
				if len(closers) >= redactMaxDepth {
					return dst, false
				}
				state = wantKeyOrEnd
				if c == '[' {
					state = wantValueOrEnd
				}
				closers = append(closers, c+2) // '{'+2 is '}', '['+2 is ']'
				keep, i = i+1, i+1
			case len(closers) == 0:
				return dst, false
			case c == '"':
				end, cut, ok := prefixString(p, i)
				if !ok {
					return dst, false
				}
				if cut {
					cutStr = i
					break scan
				}
				keep, i, state = end, end, wantNext
			default:
				end, cut, ok := prefixScalar(p, i)
				if !ok {
					return dst, false
				}
				if cut {
					break scan
				}
				keep, i, state = end, end, wantNext
			}
		case wantKey, wantKeyOrEnd:
			if c == '}' && state == wantKeyOrEnd {
				closers, keep, i = closers[:len(closers)-1], i+1, i+1
				state = wantNext
				break
			}
			if c != '"' {
				return dst, false
			}
			end, cut, ok := prefixString(p, i)
			if !ok {
				return dst, false
			}
			if cut {
				break scan
			}
			i, state = end, wantColon
		case wantColon:
			if c != ':' {
				return dst, false
			}
			i, state = i+1, wantValue
		case wantNext:
			switch {
			case len(closers) == 0:
				return dst, false // something after the whole value
			case c == ',':
				i, state = i+1, wantValue
				if closers[len(closers)-1] == '}' {
					state = wantKey
				}
			case c == closers[len(closers)-1]:
				closers, keep, i = closers[:len(closers)-1], i+1, i+1
			default:
				return dst, false
			}
		}
	}
	if cutStr >= 0 {
		dst = append(dst, p[:cutStringEnd(p, cutStr)]...)
		dst = append(dst, '"')
	} else {
		dst = append(dst, p[:keep]...)
	}
	for k := len(closers) - 1; k >= 0; k-- {
		dst = append(dst, closers[k])
	}
	return dst, true
}

// prefixString checks the string at p[i] (a quote) and returns the index
// after its closing quote, or cut when p ends first. It is
// redactScanString made tolerant of an end inside the string; that one
// stays separate, being on every record's path, where sharing this cost it
// 10 to 20%.
func prefixString(p []byte, i int) (end int, cut, ok bool) {
	j := i + 1
	for {
		for j < len(p) && redactStrPlain[p[j]] {
			j++
		}
		if j >= len(p) {
			return 0, true, true
		}
		switch p[j] {
		case '"':
			return j + 1, false, true
		case '\\':
			if j+1 >= len(p) {
				return 0, true, true
			}
			switch p[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				for k := j + 2; k < j+6; k++ {
					if k >= len(p) {
						return 0, true, true
					}
					if !detIs(p[k], ccHex) {
						return 0, false, false
					}
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

// prefixScalar checks the number or literal at p[i] and returns its end,
// or cut when it reaches the end of p: a number there may have lost
// digits, a literal letters.
func prefixScalar(p []byte, i int) (end int, cut, ok bool) {
	j := i
	for j < len(p) && (detIs(p[j], ccAlnum) || p[j] == '-' || p[j] == '+' || p[j] == '.') {
		j++
	}
	if j == i {
		return 0, false, false
	}
	if j < len(p) {
		end, ok := redactSkipScalar(p[:j], i)
		return end, false, ok && end == j
	}
	tok := string(p[i:j])
	for _, lit := range [...]string{"true", "false", "null"} {
		if tok == lit {
			return j, false, true
		}
		if len(tok) < len(lit) && lit[:len(tok)] == tok {
			return 0, true, true
		}
	}
	if tok[0] == '-' || detDigit(tok[0]) {
		return 0, true, true
	}
	return 0, false, false
}

// cutStringEnd returns where the content of the string cut short at p[q]
// (its opening quote; -1 when p holds only the content) ends once its last
// cutHold bytes are dropped: never inside an escape, a UTF-8 sequence, or
// after the first half of a UTF-16 surrogate pair.
func cutStringEnd(p []byte, q int) int {
	start, limit := q+1, len(p)-cutHold
	if limit <= start {
		return start
	}
	j, lastU := start, -1
	for j < limit {
		n := 1
		if p[j] == '\\' {
			n = 2
			if p[j+1] == 'u' {
				n = 6
			}
		}
		if j+n > limit {
			break
		}
		lastU = -1
		if n == 6 {
			lastU = j
		}
		j += n
	}
	if lastU >= 0 {
		if r := redactHexVal(p[lastU+2:]); redactHighSurrogate(r) {
			return lastU
		}
	}
	return runeEnd(p[:j], start)
}

// runeEnd returns len(b), or less if b ends inside a UTF-8 sequence that
// begins at or after start.
func runeEnd(b []byte, start int) int {
	for k := len(b) - 1; k >= start && k > len(b)-utf8.UTFMax; k-- {
		if utf8.RuneStart(b[k]) {
			if !utf8.FullRune(b[k:]) {
				return k
			}
			break
		}
	}
	return len(b)
}

// cutText returns text cut short without its last cutHold bytes, ending
// on a whole UTF-8 sequence.
func cutText(text []byte) []byte {
	n := len(text) - cutHold
	if n <= 0 {
		return text[:0]
	}
	return text[:runeEnd(text[:n], 0)]
}
