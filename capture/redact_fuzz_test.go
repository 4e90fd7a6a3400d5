package capture

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var redactFuzzSeeds = []string{
	`{"model":"gpt-4o","messages":[{"role":"user","content":"mail a@b.co, call +1 (555) 123-4567"}]}`,
	`{"messages":[{"role":"user","name":"bob","content":[{"type":"text","text":"card 4111 1111 1111 1111, ssn 123-45-6789"}]}],"metadata":{"user_id":7}}`,
	`{"instances":[{"ssn":"078-05-1120","ip":"10.0.0.1"},{"iban":"DE89 3704 0044 0532 0130 00"}]}`,
	`{"SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","k":"AKIAIOSFODNN7EXAMPLE"}`,
	`"-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY----- and Bearer abcDEF123ghiJKL456mnoPQR789"`,
	`["a\u0040b.com","\ud83d\ude00 x@y.co \"q\"","\u00e9\\n2001:db8::1"]`,
	`{"k\u0065y with.dots":{"":"fe80::1ff:fe23:4567:890a","x-y":[null,true,false,-1.5e3]}}`,
	`{"v":"version 1.2.3.4.5 at 2026-11-27T18:00:00Z id 550e8400-e29b-41d4-a716-446655440000"}`,
	`{"a":"x@y.co","a":"z@w.co"}`,
	`{"a":"x@y.co"`, `[1,]`, `"\ud800 a@b.co"`, "\"\xff a@b.co\"", ` 0 `, `{}`,
}

// FuzzRedact checks, for arbitrary input, that Redact never panics, passes
// invalid JSON through unchanged, and for valid JSON writes valid JSON in
// which every value a detector found is gone and every Where leads to its
// tag.
func FuzzRedact(f *testing.F) {
	for _, name := range []string{"chat.json", "clean.json"} {
		f.Add(redactTestFixture(f, name))
	}
	for _, s := range redactFuzzSeeds {
		f.Add([]byte(s))
	}
	secret := []byte("fuzz secret")
	all, err := NewRedactor(RedactorOptions{Secret: secret})
	if err != nil {
		f.Fatal(err)
	}
	paths, err := NewRedactor(RedactorOptions{Secret: secret, Paths: []string{"messages[*].name", "metadata.user_id", "[1]", "a[*].b", `c["k"]`, "instances[*].ssn"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		prior := []Redaction{{Where: "prior", Type: "x"}}
		out, reds := all.Redact([]byte("<"), in, "input", prior[:1:1])
		if len(out) == 0 || out[0] != '<' || len(reds) == 0 || reds[0] != prior[0] {
			t.Fatalf("Redact lost what dst or reds held")
		}
		out, reds = out[1:], reds[1:]
		pout, preds := paths.Redact(nil, in, "input", nil)
		// The record takes what the walk accepts as JSON without another
		// validation pass, so it must accept nothing encoding/json refuses.
		if _, _, ok := all.redact(nil, in, "input", nil); ok && !json.Valid(in) {
			t.Fatalf("the walk accepted invalid JSON %q", in)
		}
		if !json.Valid(in) {
			if !bytes.Equal(out, in) || len(reds) != 0 || !bytes.Equal(pout, in) || len(preds) != 0 {
				t.Fatalf("invalid JSON was changed:\n in %q\nout %q", in, out)
			}
			return
		}
		if !json.Valid(out) || !json.Valid(pout) {
			t.Fatalf("invalid output:\n in %q\nout %q\npaths %q", in, out, pout)
		}
		redactFuzzCheckGone(t, in, out, reds)
		for _, c := range []struct {
			out  []byte
			reds []Redaction
		}{{out, reds}, {pout, preds}} {
			for _, rd := range c.reds {
				if !redactTestReaches(t, c.out, "input", rd.Where, "[REDACTED:"+rd.Type+":") {
					t.Fatalf("where %q (%s) does not lead to its tag in\n%s", rd.Where, rd.Type, c.out)
				}
			}
		}
	})
}

// redactFuzzCheckGone runs the detectors over the input's strings as
// encoding/json decodes them and checks that Redact reported the same
// matches and that no matched value is left in the output beyond the
// occurrences that were not matches.
func redactFuzzCheckGone(t *testing.T, in, out []byte, reds []Redaction) {
	tin, err := redactTestTree(json.NewDecoder(bytes.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	tout, err := redactTestTree(json.NewDecoder(bytes.NewReader(out)))
	if err != nil {
		t.Fatal(err)
	}
	var found []detMatch
	var values []string
	inStrings := redactFuzzStrings(tin, nil, func(s string, hint bool) {
		found = detect(1<<detCount-1, []byte(s), hint, found[:0])
		for _, m := range found {
			values = append(values, detNames[m.kind]+"\x00"+s[m.start:m.end])
		}
	})
	outStrings := redactFuzzStrings(tout, nil, func(string, bool) {})

	want := map[string]int{}
	for _, v := range values {
		want[v[:strings.IndexByte(v, 0)]]++
	}
	got := map[string]int{}
	for _, rd := range reds {
		got[rd.Type]++
	}
	if len(got) != len(want) {
		t.Fatalf("reported %v, found %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("reported %v, found %v", got, want)
		}
	}

	matched := map[string]int{}
	for _, v := range values {
		matched[v[strings.IndexByte(v, 0)+1:]]++
	}
	for v, n := range matched {
		before, after := 0, 0
		for _, s := range inStrings {
			before += strings.Count(s, v)
		}
		for _, s := range outStrings {
			after += strings.Count(s, v)
		}
		if after > before-n {
			t.Fatalf("%q matched %d times, in the input %d times, in the output %d times:\n%s", v, n, before, after, out)
		}
	}
}

// redactFuzzStrings appends the string values (not keys) in v to dst and
// calls visit with each and whether its key names an AWS secret.
func redactFuzzStrings(v any, dst []string, visit func(s string, hint bool)) []string {
	switch v := v.(type) {
	case string:
		visit(v, false)
		dst = append(dst, v)
	case []any:
		for _, e := range v {
			dst = redactFuzzStrings(e, dst, visit)
		}
	case redactTestObject:
		for _, m := range v {
			if s, ok := m.val.(string); ok {
				visit(s, detKeyNamesAWSSecret([]byte(m.key)))
				dst = append(dst, s)
				continue
			}
			dst = redactFuzzStrings(m.val, dst, visit)
		}
	}
	return dst
}
