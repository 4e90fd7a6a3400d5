package capture

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCapture builds records from arbitrary bodies on every profile's
// paths, whole and captured in part, under the default cap and a small
// one: the record is always one valid JSON object, whatever arrives.
func FuzzCapture(f *testing.F) {
	for _, tc := range cases {
		f.Add(tc.uri, tc.req, tc.resp, false)
	}
	f.Add("/v1/chat/completions", `{"model":`, "data: {\"choices\":[{\"delta\":{\"content\":\"\\ud83d\"}}]}\n\n", true)
	f.Add("/v1/chat/completions", `{}`, strings.Repeat(`data: {"choices":[{"index":0,"delta":{"content":"caf\u00e9 \ud83d\ude00 \n\""}}]}`+"\n\n", 8), true)
	f.Add("/v1/messages", `{}`, strings.Repeat("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\u00e9\\ud83d\\ude00 x\"}}\n\n", 12), true)
	f.Add("/v2/models/x/infer", "\xff\xfe", "\x00\x01", false)
	c := newTestCapturer(f)
	settings := []*Settings{fullSettings(f), settingsWith(48, "a.b", "[*].name")}
	f.Fuzz(func(t *testing.T, uri, req, resp string, sse bool) {
		tc := exchangeCase{method: "POST", uri: "/" + uri, req: req, resp: resp}
		if sse {
			tc.respHeaders = [][2]string{sseCT}
		}
		whole := tc.exchange()
		tc.reqCap, tc.respCap = len(req)*2/3, len(resp)*2/3
		part := tc.exchange()
		for _, ex := range []*Exchange{whole, part} {
			for _, s := range settings {
				for _, ro := range []*RouteOptions{nil, {Extract: Extract{Model: "model", Output: "a.b", Decision: "x", Attributes: map[string]string{"g": "request.y"}}}} {
					line := c.AppendRecord(nil, ex, ro, s)
					if !utf8.Valid(line) {
						t.Fatalf("record is not valid UTF-8 for %q %q %q", uri, req, resp)
					}
					if !json.Valid(line) {
						t.Fatalf("invalid record for %q %q %q:\n%s", uri, req, resp, line)
					}
				}
			}
		}
	})
}
