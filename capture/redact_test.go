package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestRedactorOptions(t *testing.T) {
	bad := []struct {
		name string
		o    RedactorOptions
		want string
	}{
		{"no secret", RedactorOptions{}, "secret is empty"},
		{"unknown detector", RedactorOptions{Secret: []byte("k"), Detectors: []string{"email", "passport"}}, `unknown detector "passport"`},
		{"empty path", RedactorOptions{Secret: []byte("k"), Paths: []string{""}}, `path "": empty path`},
		{"leading dot", RedactorOptions{Secret: []byte("k"), Paths: []string{".a"}}, `path ".a": unexpected '.' at offset 0`},
		{"double dot", RedactorOptions{Secret: []byte("k"), Paths: []string{"a..b"}}, `path "a..b": empty key at offset 2`},
		{"trailing dot", RedactorOptions{Secret: []byte("k"), Paths: []string{"a."}}, `path "a.": empty key`},
		{"unterminated index", RedactorOptions{Secret: []byte("k"), Paths: []string{"a[1"}}, `path "a[1": unterminated [`},
		{"bad index", RedactorOptions{Secret: []byte("k"), Paths: []string{"a[x]"}}, `path "a[x]": bad index "x"`},
		{"negative index", RedactorOptions{Secret: []byte("k"), Paths: []string{"a[-1]"}}, `bad index "-1"`},
		{"leading zero", RedactorOptions{Secret: []byte("k"), Paths: []string{"a[01]"}}, `bad index "01"`},
		{"bare star", RedactorOptions{Secret: []byte("k"), Paths: []string{"a.*"}}, `bare * at offset 2`},
		{"junk after index", RedactorOptions{Secret: []byte("k"), Paths: []string{"a[0]b"}}, `unexpected 'b' at offset 4`},
		{"unterminated quote", RedactorOptions{Secret: []byte("k"), Paths: []string{`a["b`}}, `unterminated quoted key`},
		{"bad quote", RedactorOptions{Secret: []byte("k"), Paths: []string{`["\q"]`}}, `bad quoted key`},
		{"space", RedactorOptions{Secret: []byte("k"), Paths: []string{"a b"}}, `unexpected ' '`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewRedactor(c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "new redactor: ") {
				t.Errorf("error %q does not say what failed", err)
			}
		})
	}

	for _, p := range []string{"a", "a.b", "messages[*].content", "[0]", "[*][*]", `["key with.dots"].x`, `a["\"q\""][3]`, "x-request-id", "$.a"} {
		if _, err := NewRedactor(RedactorOptions{Secret: []byte("k"), Paths: []string{p}}); err != nil {
			t.Errorf("path %q: %v", p, err)
		}
	}

	const text = "a@b.co 10.0.0.1"
	for _, c := range []struct {
		detectors []string
		want      int
	}{{nil, 2}, {[]string{}, 0}, {[]string{DetectIP}, 1}, {AllDetectors, 2}} {
		r, err := NewRedactor(RedactorOptions{Secret: []byte("k"), Detectors: c.detectors})
		if err != nil {
			t.Fatal(err)
		}
		out, reds := r.RedactString(nil, []byte(text), "w", nil)
		if len(reds) != c.want {
			t.Errorf("detectors %#v: %d redactions (%s), want %d", c.detectors, len(reds), out, c.want)
		}
	}
}

// redactTestDecode decodes a JSON string value.
func redactTestDecode(t *testing.T, js []byte) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(js, &s); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return s
}

func TestRedactEscapes(t *testing.T) {
	r := detTestRedactor(t, nil)
	email := func(v string) string { return detTestTag(detTestSecret, DetectEmail, v) }
	cases := []struct {
		in, want string // want is the decoded output
	}{
		{`"a\u0040b.com"`, email("a@b.com")},
		{`"say \"hi\" to bob@example.com\\n"`, `say "hi" to ` + email("bob@example.com") + `\n`},
		{`"x\tbob@example.com\n\"q\""`, "x\t" + email("bob@example.com") + "\n\"q\""},
		{`"привет bob@example.com 😀 — ok"`, "привет " + email("bob@example.com") + " 😀 — ok"},
		{`"\u043f\u0440\u0438 bob@ex\u0061mple.com \ud83d\ude00 \u00e9"`, "при " + email("bob@example.com") + " 😀 é"},
		{`"\/\/ bob@example.com\b\f\r\u0001\u001f"`, "// " + email("bob@example.com") + "\b\f\r\x01\x1f"},
		{`"é@example.com bob@example.com"`, "é@example.com " + email("bob@example.com")}, // ASCII local parts only
		{`"lone \ud800 bob@example.com"`, "lone \ufffd " + email("bob@example.com")},
		{`"4111\u00201111 1111 1111"`, detTestTag(detTestSecret, DetectCard, "4111 1111 1111 1111")},
	}
	for _, c := range cases {
		out, reds := r.Redact(nil, []byte(c.in), "x", nil)
		if !json.Valid(out) {
			t.Errorf("%s: invalid output %s", c.in, out)
			continue
		}
		if got := redactTestDecode(t, out); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.in, got, c.want)
		}
		if len(reds) == 0 {
			t.Errorf("%s: no redactions", c.in)
		}
	}

	// Strings without escapes keep their bytes exactly; strings with escapes
	// are re-encoded only when something in them was replaced.
	for _, in := range []string{`{"a":"\u0041\/\n","b":"plain ü"}`, `["\ud83d\ude00 \"x\""]`} {
		out, _ := r.Redact(nil, []byte(in), "", nil)
		if string(out) != in {
			t.Errorf("clean %s changed to %s", in, out)
		}
	}
}

func TestRedactWhere(t *testing.T) {
	r := detTestRedactor(t, []string{DetectEmail})
	cases := []struct {
		in, root string
		want     []string
	}{
		{`"a@b.co"`, "input", []string{"input"}},
		{`"a@b.co"`, "", []string{""}},
		{`{"messages":[{"role":"user","content":"a@b.co"},{"content":"x"},{"content":["y","a@b.co"]}]}`, "input",
			[]string{"input.messages[0].content", "input.messages[2].content[1]"}},
		{`{"messages":[{"content":"a@b.co"}]}`, "", []string{"messages[0].content"}},
		{`[["a@b.co"]]`, "", []string{"[0][0]"}},
		{`[["a@b.co"]]`, "output", []string{"output[0][0]"}},
		{`{"key with.dots":{"x-y":"a@b.co","_ok9":"a@b.co","9x":"a@b.co","":"a@b.co"}}`, "attributes",
			[]string{`attributes["key with.dots"]["x-y"]`, `attributes["key with.dots"]._ok9`, `attributes["key with.dots"]["9x"]`, `attributes["key with.dots"][""]`}},
		{`{"q\"uote":{"back\\slash":"a@b.co"},"\u006bey":"a@b.co","ключ":"a@b.co","tab\t":"a@b.co"}`, "r",
			[]string{`r["q\"uote"]["back\\slash"]`, `r.key`, `r["ключ"]`, `r["tab\t"]`}},
		{` { "a" : [ 1 , true , null , { "b" : "two a@b.co and c@d.co" } ] } `, "in", []string{"in.a[3].b", "in.a[3].b"}},
		{`{"a@b.co":"no"}`, "k", nil},
	}
	for _, c := range cases {
		out, reds := r.Redact(nil, []byte(c.in), c.root, nil)
		var got []string
		for _, rd := range reds {
			got = append(got, rd.Where)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.in, got, c.want)
		}
		if !json.Valid(out) {
			t.Errorf("%s: invalid output %s", c.in, out)
		}
		// Every where must lead to the replaced value.
		for _, rd := range reds {
			if !redactTestReaches(t, out, c.root, rd.Where, "[REDACTED:email:") {
				t.Errorf("%s: where %q does not lead to a tag in %s", c.in, rd.Where, out)
			}
		}
	}
}

func TestRedactPaths(t *testing.T) {
	secret := []byte("path secret")
	tag := func(raw string) string { return `"` + detTestTag(secret, RedactionTypePath, raw) + `"` }
	cases := []struct {
		name, in string
		paths    []string
		want     string
		where    []string
	}{
		{"string", `{"metadata":{"user_id":"u-123","x":1}}`, []string{"metadata.user_id"},
			`{"metadata":{"user_id":` + tag(`"u-123"`) + `,"x":1}}`, []string{"in.metadata.user_id"}},
		{"number", `{"n":-12.5e3}`, []string{"n"}, `{"n":` + tag(`-12.5e3`) + `}`, []string{"in.n"}},
		{"object with spaces", `{"o":{ "a" : [1, 2] },"p":2}`, []string{"o"}, `{"o":` + tag(`{ "a" : [1, 2] }`) + `,"p":2}`, []string{"in.o"}},
		{"array", `{"a":[1,"x",{}]}`, []string{"a"}, `{"a":` + tag(`[1,"x",{}]`) + `}`, []string{"in.a"}},
		{"null and bools", `[null,true,false]`, []string{"[0]", "[2]"}, `[` + tag("null") + `,true,` + tag("false") + `]`, []string{"in[0]", "in[2]"}},
		{"wildcard", `{"messages":[{"content":"hi"},{"content":{"parts":[1]}},{"role":"x"}]}`, []string{"messages[*].content"},
			`{"messages":[{"content":` + tag(`"hi"`) + `},{"content":` + tag(`{"parts":[1]}`) + `},{"role":"x"}]}`,
			[]string{"in.messages[0].content", "in.messages[1].content"}},
		{"wildcard on an object", `{"m":{"a":1,"b":"2"}}`, []string{"m[*]"}, `{"m":{"a":` + tag("1") + `,"b":` + tag(`"2"`) + `}}`, []string{"in.m.a", "in.m.b"}},
		{"index", `{"instances":[{"ssn":"x"},{"ssn":"y"}]}`, []string{"instances[1].ssn"},
			`{"instances":[{"ssn":"x"},{"ssn":` + tag(`"y"`) + `}]}`, []string{"in.instances[1].ssn"}},
		{"quoted key", `{"key with.dots":{"v":1}}`, []string{`["key with.dots"].v`}, `{"key with.dots":{"v":` + tag("1") + `}}`, []string{`in["key with.dots"].v`}},
		{"escaped key", `{"k\u0065y":"v"}`, []string{`key`}, `{"k\u0065y":` + tag(`"v"`) + `}`, []string{`in.key`}},
		{"outer path wins", `{"a":{"b":"c"}}`, []string{"a.b", "a"}, `{"a":` + tag(`{"b":"c"}`) + `}`, []string{"in.a"}},
		{"no match", `{"a":[1,2],"b":{"c":3}}`, []string{"z", "a[5]", "a.x", "b[0]", "b.c.d", "[0]"}, `{"a":[1,2],"b":{"c":3}}`, nil},
		{"detectors not run inside", `{"user":{"email":"a@b.co"},"note":"c@d.co"}`, []string{"user"},
			`{"user":` + tag(`{"email":"a@b.co"}`) + `,"note":"` + detTestTag(secret, DetectEmail, "c@d.co") + `"}`, []string{"in.user", "in.note"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewRedactor(RedactorOptions{Secret: secret, Paths: c.paths})
			if err != nil {
				t.Fatal(err)
			}
			out, reds := r.Redact(nil, []byte(c.in), "in", nil)
			if string(out) != c.want {
				t.Errorf("\n got %s\nwant %s", out, c.want)
			}
			var where []string
			for _, rd := range reds {
				where = append(where, rd.Where)
				if rd.Type != RedactionTypePath && rd.Type != DetectEmail {
					t.Errorf("type %q", rd.Type)
				}
			}
			if !reflect.DeepEqual(where, c.where) {
				t.Errorf("where %q, want %q", where, c.where)
			}
		})
	}
}

// TestRedactKeyContext checks that an AWS secret key is found from the key
// of the member holding it, not only from text around it.
func TestRedactKeyContext(t *testing.T) {
	r := detTestRedactor(t, nil)
	const key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	tag := detTestTag(detTestSecret, DetectSecret, key)
	for _, c := range []struct {
		in, want string
	}{
		{`{"aws_secret_access_key":"` + key + `"}`, `{"aws_secret_access_key":"` + tag + `"}`},
		{`{"Credentials":{"SecretAccessKey":" ` + key + ` "}}`, `{"Credentials":{"SecretAccessKey":" ` + tag + ` "}}`},
		{`{"secret_access_k\u0065y":"` + key + `"}`, `{"secret_access_k\u0065y":"` + tag + `"}`},
		{`{"checksum":"` + key + `"}`, `{"checksum":"` + key + `"}`},
		{`{"SecretAccessKey":"` + key + `x"}`, `{"SecretAccessKey":"` + key + `x"}`},
		{`{"SecretAccessKey":["` + key + `"]}`, `{"SecretAccessKey":["` + key + `"]}`},
	} {
		out, _ := r.Redact(nil, []byte(c.in), "input", nil)
		if string(out) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, out, c.want)
		}
	}
}

func TestRedactTags(t *testing.T) {
	r1 := detTestRedactor(t, nil)
	r2, err := NewRedactor(RedactorOptions{Secret: []byte("another secret")})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r1.Redact(nil, []byte(`{"x":"mail bob@example.com"}`), "input", nil)
	b, _ := r1.Redact(nil, []byte(`["bob@example.com",{"y":"BOB@example.com"}]`), "output", nil)
	c, _ := r2.Redact(nil, []byte(`{"x":"mail bob@example.com"}`), "input", nil)
	tag := detTestTag(detTestSecret, DetectEmail, "bob@example.com")
	if bytes.Count(a, []byte(tag)) != 1 || bytes.Count(b, []byte(tag)) != 1 {
		t.Errorf("equal values got different tags: %s, %s (want %s)", a, b, tag)
	}
	if !bytes.Contains(b, []byte(detTestTag(detTestSecret, DetectEmail, "BOB@example.com"))) {
		t.Errorf("the tag is not of the exact matched bytes: %s", b)
	}
	if bytes.Equal(a, c) || bytes.Contains(c, []byte(tag)) {
		t.Errorf("different secrets gave the same tag: %s", c)
	}
	s, _ := r1.RedactString(nil, []byte("bob@example.com"), "h", nil)
	if string(s) != tag {
		t.Errorf("RedactString tag %s, want %s", s, tag)
	}
}

func TestRedactInvalidJSON(t *testing.T) {
	r, err := NewRedactor(RedactorOptions{Secret: []byte("k"), Paths: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	prior := []Redaction{{Where: "before", Type: "email"}}
	for _, in := range []string{
		``, ` `, `{`, `{"a":"x@y.co"`, `{"b":"x@y.co",}`, `["x@y.co" "z"]`, `"x@y.co`, `"a\qb"`, `"a\u12"`,
		"\"tab\tin string x@y.co\"", `{"b":"x@y.co"} {}`, `01`, `-`, `1.`, `1e`, `tru`, `nul`, `{"a":1,"b":x@y.co}`,
		`{"a" 1}`, `[1,]`, `{a:1}`, `"x@y.co"]`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		`{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		strings.Repeat("[", 10001) + `"x@y.co"` + strings.Repeat("]", 10001),
	} {
		out, reds := r.Redact([]byte("prefix:"), []byte(in), "input", prior)
		if string(out) != "prefix:"+in || !reflect.DeepEqual(reds, prior) {
			t.Errorf("%.40q: got %.60q, %v", in, out, reds)
		}
		if json.Valid([]byte(in)) {
			t.Errorf("%.40q is valid JSON after all", in)
		}
	}
	deep := strings.Repeat("[", 10000) + `"x@y.co"` + strings.Repeat("]", 10000)
	out, reds := r.Redact(nil, []byte(deep), "d", nil)
	if !json.Valid(out) || len(reds) != 1 || bytes.Contains(out, []byte("x@y.co")) {
		t.Errorf("nesting at encoding/json's limit: %d redactions", len(reds))
	}
}

func TestRedactAppends(t *testing.T) {
	r := detTestRedactor(t, nil)
	dst := []byte("head|")
	prior := []Redaction{{Where: "before", Type: "x"}}
	out, reds := r.Redact(dst, []byte(`{"a":"a@b.co"}`), "input", prior)
	if !bytes.HasPrefix(out, []byte("head|{")) || len(reds) != 2 || reds[0] != prior[0] || reds[1].Where != "input.a" {
		t.Errorf("got %s, %v", out, reds)
	}
	out, reds = r.RedactString([]byte("h:"), []byte("ip 10.1.2.3 and x"), "caller.headers.X-Real-Ip", nil)
	want := "h:ip " + detTestTag(detTestSecret, DetectIP, "10.1.2.3") + " and x"
	if string(out) != want || len(reds) != 1 || reds[0] != (Redaction{Where: "caller.headers.X-Real-Ip", Type: DetectIP}) {
		t.Errorf("got %s, %v", out, reds)
	}
	none, err := NewRedactor(RedactorOptions{Secret: []byte("k"), Detectors: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	out, reds = none.RedactString(nil, []byte("a@b.co"), "w", nil)
	if string(out) != "a@b.co" || len(reds) != 0 {
		t.Errorf("no detectors: got %s, %v", out, reds)
	}
}

func redactTestFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "redact", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

func TestRedactFixtures(t *testing.T) {
	r := detTestRedactor(t, nil)
	clean := redactTestFixture(t, "clean.json")
	out, reds := r.Redact(nil, clean, "input", nil)
	if !bytes.Equal(out, clean) || len(reds) != 0 {
		t.Errorf("clean body redacted: %v", reds)
	}

	chat := redactTestFixture(t, "chat.json")
	out, reds = r.Redact(nil, chat, "input", nil)
	want := []Redaction{
		{"input.metadata.ssn", DetectSSN},
		{"input.messages[0].content", DetectEmail},
		{"input.messages[3].content", DetectEmail},
		{"input.messages[3].content", DetectPhone},
		{"input.messages[3].content", DetectIBAN},
		{"input.messages[3].content", DetectCard},
		{"input.messages[3].content", DetectIP},
	}
	if !reflect.DeepEqual(reds, want) {
		t.Errorf("redactions\n got %v\nwant %v", reds, want)
	}
	if !json.Valid(out) {
		t.Fatalf("invalid output")
	}
	for _, v := range []string{"123-45-6789", "loans-desk@bank.example", "jane.roe+loans@example.com", "+44 20 7946 0958",
		"GB82 WEST 1234 5698 7654 32", "4111 1111 1111 1111", "203.0.113.42"} {
		if bytes.Contains(out, []byte(v)) {
			t.Errorf("%s survived", v)
		}
	}
	for _, v := range []string{"1.2.3.4.5", "550e8400-e29b-41d4-a716-446655440000", "2026-11-27", "18:00:00", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"} {
		if !bytes.Contains(out, []byte(v)) {
			t.Errorf("%s was redacted", v)
		}
	}
}

// redactTestPoolKeeps says a sync.Pool gives back what was put in it, which
// it does not always under the race detector.
func redactTestPoolKeeps() bool {
	var p sync.Pool
	for i := 0; i < 100; i++ {
		x := new(int)
		p.Put(x)
		if p.Get() != x {
			return false
		}
	}
	return true
}

func TestRedactAllocs(t *testing.T) {
	if !redactTestPoolKeeps() {
		t.Skip("sync.Pool drops items in this build (race detector)")
	}
	r := detTestRedactor(t, nil)
	clean := redactTestFixture(t, "clean.json")
	dst := make([]byte, 0, 4096)
	reds := make([]Redaction, 0, 16)
	if n := testing.AllocsPerRun(100, func() { r.Redact(dst[:0], clean, "input", reds[:0]) }); n != 0 {
		t.Errorf("a clean body costs %v allocations", n)
	}
	paths, err := NewRedactor(RedactorOptions{Secret: []byte("k"), Paths: []string{"messages[*].name", "metadata.user_id"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { paths.Redact(dst[:0], clean, "input", reds[:0]) }); n != 0 {
		t.Errorf("a clean body with paths costs %v allocations", n)
	}
	// A match costs its Where string.
	chat := redactTestFixture(t, "chat.json")
	if n := testing.AllocsPerRun(100, func() { r.Redact(dst[:0], chat, "input", reds[:0]) }); n > 3 {
		t.Errorf("a body with 7 matches in 3 strings costs %v allocations", n)
	}
}

func TestRedactConcurrent(t *testing.T) {
	r := detTestRedactor(t, nil)
	chat := redactTestFixture(t, "chat.json")
	want, _ := r.Redact(nil, chat, "input", nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				out, _ := r.Redact(nil, chat, "input", nil)
				if !bytes.Equal(out, want) {
					t.Error("concurrent Redact disagrees")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkRedactChat2KB(b *testing.B) {
	redactBench(b, "chat.json")
}

func BenchmarkRedactClean2KB(b *testing.B) {
	redactBench(b, "clean.json")
}

func redactBench(b *testing.B, name string) {
	r := detTestRedactor(b, nil)
	body := redactTestFixture(b, name)
	dst := make([]byte, 0, 2*len(body))
	reds := make([]Redaction, 0, 16)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dst, reds = r.Redact(dst[:0], body, "input", reds[:0])
	}
}

// redactTestReaches says where (written below root) leads, in the JSON
// value js, to a string containing want. An object with a repeated key
// leads to each of its members.
func redactTestReaches(t *testing.T, js []byte, root, where, want string) bool {
	t.Helper()
	if !strings.HasPrefix(where, root) {
		return false
	}
	var segs []redactSeg
	if where != root {
		var err error
		segs, err = redactParsePath(strings.TrimPrefix(strings.TrimPrefix(where, root), "."))
		if err != nil {
			t.Errorf("where %q does not parse: %v", where, err)
			return false
		}
	}
	v, err := redactTestTree(json.NewDecoder(bytes.NewReader(js)))
	if err != nil {
		t.Fatalf("decode output: %v", err)
	}
	return redactTestWalk(v, segs, want)
}

func redactTestWalk(v any, segs []redactSeg, want string) bool {
	if len(segs) == 0 {
		s, ok := v.(string)
		return ok && strings.Contains(s, want)
	}
	switch v := v.(type) {
	case redactTestObject:
		for _, m := range v {
			if segs[0].index < 0 && m.key == segs[0].key && redactTestWalk(m.val, segs[1:], want) {
				return true
			}
		}
	case []any:
		if i := segs[0].index; i >= 0 && i < len(v) {
			return redactTestWalk(v[i], segs[1:], want)
		}
	}
	return false
}

// redactTestObject is a decoded JSON object that keeps repeated keys.
type redactTestObject []struct {
	key string
	val any
}

// redactTestTree decodes one JSON value into strings, json.Numbers, bools,
// nils, []any and redactTestObjects.
func redactTestTree(d *json.Decoder) (any, error) {
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		var o redactTestObject
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return nil, err
			}
			v, err := redactTestTree(d)
			if err != nil {
				return nil, err
			}
			o = append(o, struct {
				key string
				val any
			}{k.(string), v})
		}
		_, err = d.Token()
		return o, err
	case json.Delim('['):
		a := []any{}
		for d.More() {
			v, err := redactTestTree(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err = d.Token()
		return a, err
	}
	return tok, nil
}

func ExampleRedactor_Redact() {
	r, _ := NewRedactor(RedactorOptions{
		Secret: []byte("example secret"),
		Paths:  []string{"metadata.user_id"},
	})
	body := []byte(`{"metadata":{"user_id":42},"messages":[{"role":"user","content":"I am bob@example.com"}]}`)
	out, reds := r.Redact(nil, body, "input", nil)
	fmt.Println(string(out))
	for _, rd := range reds {
		fmt.Println(rd.Where, rd.Type)
	}
	// Output:
	// {"metadata":{"user_id":"[REDACTED:path:ca2751dd]"},"messages":[{"role":"user","content":"I am [REDACTED:email:9c2210ae]"}]}
	// input.metadata.user_id path
	// input.messages[0].content email
}
