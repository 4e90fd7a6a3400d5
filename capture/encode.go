package capture

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// timeLayout is RFC 3339 in UTC with exactly nine fractional digits, so
// that records sort as text and every time has the same width.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// AppendJSON appends the record as one line of JSON, without the newline.
// Keys come in a fixed order; docs/record.md lists them. Strings are
// escaped as JSON requires, and bytes that are not valid UTF-8 become
// U+FFFD, so the line is always valid UTF-8.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, Version, 10)
	b = append(b, `,"id":"`...)
	b = r.ID.AppendText(b)
	b = append(b, `","time":"`...)
	b = r.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","kind":`...)
	b = appendString(b, r.Kind)
	b = append(b, `,"stream":`...)
	b = appendString(b, r.Stream)
	b = append(b, `,"route":`...)
	b = appendString(b, r.Route)
	b = append(b, `,"method":`...)
	b = appendString(b, r.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, r.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendInt(b, r.Latency.Microseconds(), 10)
	b = append(b, `,"ttfb_us":`...)
	b = strconv.AppendInt(b, r.TTFB.Microseconds(), 10)
	b = append(b, `,"caller":`...)
	b = r.Caller.appendJSON(b)
	b = append(b, `,"model":`...)
	b = r.Model.appendJSON(b)
	b = append(b, `,"operation":`...)
	b = appendNullableString(b, r.Operation)
	b = append(b, `,"input":`...)
	b = appendRaw(b, r.Input, "null")
	b = append(b, `,"output":`...)
	b = appendRaw(b, r.Output, "null")
	b = append(b, `,"rationale":`...)
	b = appendRaw(b, r.Rationale, "null")
	b = append(b, `,"attributes":`...)
	b = appendRaw(b, r.Attributes, "null")
	b = append(b, `,"usage":`...)
	b = r.Usage.appendJSON(b)
	b = append(b, `,"request_sha256":"`...)
	b = hex.AppendEncode(b, r.RequestSHA256[:])
	b = append(b, `","response_sha256":`...)
	if r.Kind == KindRequest {
		// Written before forwarding: there is no response yet.
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = hex.AppendEncode(b, r.ResponseSHA256[:])
		b = append(b, '"')
	}
	b = append(b, `,"truncated":`...)
	b = strconv.AppendBool(b, r.Truncated)
	b = append(b, `,"flags":[`...)
	for i, f := range r.Flags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f)
	}
	b = append(b, `],"redactions":[`...)
	for i, rd := range r.Redactions {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"where":`...)
		b = appendString(b, rd.Where)
		b = append(b, `,"type":`...)
		b = appendString(b, rd.Type)
		b = append(b, '}')
	}
	b = append(b, `],"rules":`...)
	b = appendRaw(b, r.Rules, "[]")
	b = append(b, `,"error":`...)
	if r.Error == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"kind":`...)
		b = appendString(b, r.Error.Kind)
		b = append(b, `,"message":`...)
		b = appendString(b, r.Error.Message)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (c *Caller) appendJSON(b []byte) []byte {
	start := len(b)
	b = append(b, '{')
	field := func(name, v string) {
		if v == "" {
			return
		}
		if len(b) > start+1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = appendString(b, v)
	}
	field("key_id", c.KeyID)
	field("subject", c.Subject)
	field("issuer", c.Issuer)
	field("audience", c.Audience)
	if c.Subject != "" || c.Issuer != "" || c.Audience != "" || len(c.Claims) > 0 {
		if len(b) > start+1 {
			b = append(b, ',')
		}
		b = append(b, `"verified":`...)
		b = strconv.AppendBool(b, c.Verified)
	}
	if len(c.Claims) > 0 {
		if len(b) > start+1 {
			b = append(b, ',')
		}
		b = append(b, `"claims":`...)
		b = appendRaw(b, c.Claims, "null")
	}
	field("cert_subject", c.CertSubject)
	field("cert_fingerprint", c.CertFingerprint)
	if len(c.Headers) > 0 {
		if len(b) > start+1 {
			b = append(b, ',')
		}
		b = append(b, `"headers":{`...)
		for i, h := range c.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, h[0])
			b = append(b, ':')
			b = appendString(b, h[1])
		}
		b = append(b, '}')
	}
	field("ip", c.IP)
	return append(b, '}')
}

func (m *Model) appendJSON(b []byte) []byte {
	b = append(b, `{"provider":`...)
	b = appendNullableString(b, m.Provider)
	b = append(b, `,"requested":`...)
	b = appendNullableString(b, m.Requested)
	b = append(b, `,"served":`...)
	b = appendNullableString(b, m.Served)
	b = append(b, `,"version":`...)
	b = appendNullableString(b, m.Version)
	if m.Digest != "" {
		b = append(b, `,"digest":`...)
		b = appendString(b, m.Digest)
	}
	return append(b, '}')
}

func (u *Usage) appendJSON(b []byte) []byte {
	if *u == (Usage{}) {
		return append(b, "null"...)
	}
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, u.InputTokens, 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, u.OutputTokens, 10)
	if u.CachedTokens > 0 {
		b = append(b, `,"cached_tokens":`...)
		b = strconv.AppendInt(b, u.CachedTokens, 10)
	}
	if u.CacheCreationTokens > 0 {
		b = append(b, `,"cache_creation_tokens":`...)
		b = strconv.AppendInt(b, u.CacheCreationTokens, 10)
	}
	if u.ReasoningTokens > 0 {
		b = append(b, `,"reasoning_tokens":`...)
		b = strconv.AppendInt(b, u.ReasoningTokens, 10)
	}
	return append(b, '}')
}

// appendRaw appends a JSON value the record already holds encoded, or
// empty when there is none. Bytes that are not valid UTF-8 (JSON allows
// them inside strings) become U+FFFD, so a record line is always UTF-8.
func appendRaw(b, raw []byte, empty string) []byte {
	if len(raw) == 0 {
		return append(b, empty...)
	}
	if !utf8.Valid(raw) {
		return append(b, bytes.ToValidUTF8(raw, []byte("\uFFFD"))...)
	}
	return append(b, raw...)
}

func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Control characters are escaped,
// as are <, > and & (so a record pasted into HTML stays inert), and U+2028
// and U+2029 (which break JavaScript string literals). Invalid UTF-8
// becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
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
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendBytesString is appendString for bytes, without copying them into
// a string first.
func appendBytesString(b, s []byte) []byte {
	return appendString(b, unsafe.String(unsafe.SliceData(s), len(s)))
}
