package capture

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

func TestCloseJSONPrefix(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	for _, tt := range []struct {
		name, in, want string
	}{
		{"opened object", `{`, `{}`},
		{"opened array", `[`, `[]`},
		{"whole", `{"a":[1,{"b":null}],"c":"d"}`, `{"a":[1,{"b":null}],"c":"d"}`},
		{"whole with space", "{\"a\":1}\n ", `{"a":1}`},
		{"after a comma", `{"a":1,`, `{"a":1}`},
		{"cut key", `{"a":1,"bc`, `{"a":1}`},
		{"key without colon", `{"a":1,"b"`, `{"a":1}`},
		{"key without value", `{"a":1,"b":`, `{"a":1}`},
		{"key without value, space", `{"a":1,"b": `, `{"a":1}`},
		{"cut number", `{"a":12`, `{}`},
		{"number ended by space", `{"a":12 `, `{"a":12}`},
		{"cut fraction", `[1,2.`, `[1]`},
		{"cut exponent", `[1,2e`, `[1]`},
		{"cut negative", `[1,-`, `[1]`},
		{"cut literal", `[true,fal`, `[true]`},
		{"whole literal at the cut", `[true,null`, `[true,null]`},
		{"opened value kept", `{"a":{"b":1},"c":[`, `{"a":{"b":1},"c":[]}`},
		{"opened object in array", `{"a":[1,{"b":`, `{"a":[1,{}]}`},
		{"closed inner", `{"a":{"b":"x"}`, `{"a":{"b":"x"}}`},
		{"deep", `[[[[{"a":[[`, `[[[[{"a":[[]]}]]]]`},
		{"short cut string", `{"a":"Jane Ro`, `{"a":""}`},
		{"cut string", `{"a":"` + x(70), `{"a":"` + x(6) + `"}`},
		{"cut string in array", `["ok","` + x(64), `["ok",""]`},
		{"cut string, 65 bytes", `["` + x(65), `["x"]`},
		{"escape kept whole", `["\"` + x(64), `["\""]`},
		{"two-byte escape at the end", `["x\n` + x(63), `["x"]`},
		{"unicode escape at the end", `["xy\u00e9` + x(62), `["xy"]`},
		{"escape cut by the input", `["` + x(70) + `\u00`, `["` + x(6) + `xxxx"]`},
		{"surrogate pair kept", `["\ud83d\ude00` + x(64), `["\ud83d\ude00"]`},
		{"half a surrogate pair", `["x\ud83d\ude00` + x(58), `["x"]`},
		{"UTF-8 rune at the end", "[\"aa\u00e9" + x(63), `["aa"]`},
		{"UTF-8 rune kept", "[\"a\u00e9" + x(64), "[\"a\u00e9\"]"},
		{"four-byte rune at the end", "[\"a\U0001F600" + x(61), `["a"]`},
		{"invalid byte kept", "[\"a\xff" + x(64), "[\"a\xff\"]"},
		{"string value after key", `{"k":"v","m":[{"c":"` + x(100), `{"k":"v","m":[{"c":"` + x(36) + `"}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := closeJSONPrefix([]byte("prev"), []byte(tt.in))
			if !ok || string(got) != "prev"+tt.want {
				t.Errorf("closeJSONPrefix(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
			if !gjson.ValidBytes(got[4:]) {
				t.Errorf("%q is not valid JSON", got[4:])
			}
		})
	}
}

func TestCloseJSONPrefixRefuses(t *testing.T) {
	for _, in := range []string{
		"", " {", `"str`, `12`, `x`, `{]`, `[}`, `{"a" 1`, `{1:2}`, `{"a":1 "b"`, `[1,,`, `[1 2`,
		`{"a":1}x`, `[1]]`, `[1],`, `{"a":1}{`, "[\"\x01", `["\q`, `["\u12g`, `[tx`, `[12a,`, `[01,`, `{"a":-}`,
		strings.Repeat("[", redactMaxDepth+1),
	} {
		if got, ok := closeJSONPrefix(nil, []byte(in)); ok {
			t.Errorf("closeJSONPrefix(%q) = %q, want a refusal", in, got)
		}
	}
	if got, ok := closeJSONPrefix(nil, []byte(strings.Repeat("[", redactMaxDepth))); !ok || !json.Valid(got) {
		t.Errorf("the deepest nesting Redact walks was refused")
	}
}

func TestCutText(t *testing.T) {
	x := strings.Repeat("x", 64)
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"short", ""},
		{"card 4111 1111 111" + x[:50], "card"},
		{"ab\u00e9" + x[:63], "ab"},
		{"ab\u00e9" + x, "ab\u00e9"},
		{"ab\U0001F600" + x[:62], "ab"},
	} {
		if got := cutText([]byte(tt.in)); string(got) != tt.want {
			t.Errorf("cutText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzCloseJSONPrefix: every beginning of a JSON object or array is made
// valid JSON, from its own bytes and the closers only; and whatever the
// input, a result that is not refused is valid JSON.
func FuzzCloseJSONPrefix(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,{"b":null}],"c":"d"}`,
		`[true,false,null,-1.5e+3,"x\"y\\z\u00e9\ud83d\ude00"]`,
		`{"messages":[{"role":"user","content":"` + strings.Repeat("card 4111 1111 1111 1111 ", 6) + `"}]}`,
		"[\"caf\u00e9 \U0001F600 \xff\"]",
		`[[[[[[]]]]],{},{"":""}]`,
	} {
		f.Add([]byte(s), uint(len(s)/2))
	}
	for _, tc := range cases {
		f.Add([]byte(tc.req), uint(len(tc.req)*2/3))
	}
	f.Fuzz(func(t *testing.T, doc []byte, cut uint) {
		if got, ok := closeJSONPrefix(nil, doc); ok && (!json.Valid(got) || !gjson.ValidBytes(got)) {
			t.Fatalf("closeJSONPrefix(%q) = %q, not valid JSON", doc, got)
		}
		doc = bytes.TrimSpace(doc)
		if len(doc) == 0 || doc[0] != '{' && doc[0] != '[' || !json.Valid(doc) || !gjson.ValidBytes(doc) {
			if doc = fuzzJSONDoc(doc); !json.Valid(doc) {
				t.Fatalf("fuzzJSONDoc built invalid JSON: %q", doc)
			}
		}
		p := doc[:1+int(cut%uint(len(doc)))]
		got, ok := closeJSONPrefix(nil, p)
		if !ok {
			t.Fatalf("closeJSONPrefix(%q) refused a beginning of %q", p, doc)
		}
		if !json.Valid(got) || !gjson.ValidBytes(got) {
			t.Fatalf("closeJSONPrefix(%q) = %q, not valid JSON", p, got)
		}
		if len(p) == len(doc) && !bytes.Equal(got, doc) {
			t.Fatalf("closeJSONPrefix(%q) = %q, want it unchanged", doc, got)
		}
		if max := len(p) + 1 + openContainers(p); len(got) > max {
			t.Fatalf("closeJSONPrefix(%q) = %q: %d bytes, more than %d", p, got, len(got), max)
		}
		// Only the input's own bytes, then a quote and closers.
		kept := bytes.TrimRight(got, "]}")
		if !bytes.HasPrefix(p, kept) && !(bytes.HasSuffix(kept, []byte(`"`)) && bytes.HasPrefix(p, kept[:len(kept)-1])) {
			t.Fatalf("closeJSONPrefix(%q) = %q: not the input's beginning and closers", p, got)
		}
		if utf8.Valid(p) && !utf8.Valid(got) {
			t.Fatalf("closeJSONPrefix(%q) = %q split a UTF-8 sequence", p, got)
		}
	})
}

// fuzzJSONDoc builds a valid JSON array from arbitrary bytes, each byte
// choosing the next token, so that random input reaches every shape of
// JSON and so every shape of prefix.
func fuzzJSONDoc(b []byte) []byte {
	out, closers, first := []byte{'['}, []byte{']'}, true
	for len(b) > 0 && len(closers) > 0 {
		op := b[0]
		b = b[1:]
		if op&0x80 != 0 {
			out = append(out, " \n\t"[:1+op%3]...)
		}
		top := closers[len(closers)-1]
		if op%8 == 7 {
			out, closers, first = append(out, top), closers[:len(closers)-1], false
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		if top == '}' {
			key, _ := json.Marshal(string(b[:min(len(b), int(op>>5))]))
			out = append(append(out, key...), ':')
		}
		switch op % 8 {
		case 0, 1:
			out, closers, first = append(out, "{["[op%2]), append(closers, "}]"[op%2]), true
		case 2, 3:
			n := min(len(b), int(op>>3)*4)
			str, _ := json.Marshal(string(b[:n]))
			out, b = append(out, str...), b[n:]
		case 4:
			out = strconv.AppendInt(out, int64(op)-100, 10)
		case 5:
			out = strconv.AppendFloat(out, float64(op)*1.25e-7, 'g', -1, 64)
		case 6:
			out = append(out, [...]string{"true", "false", "null"}[op%3]...)
		}
	}
	for k := len(closers) - 1; k >= 0; k-- {
		out = append(out, closers[k])
	}
	return out
}

// openContainers counts the objects and arrays still open at the end of
// p, a beginning of valid JSON.
func openContainers(p []byte) int {
	n, inStr, esc := 0, false, false
	for _, c := range p {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			n++
		case c == '}' || c == ']':
			n--
		}
	}
	return n
}
