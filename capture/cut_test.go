package capture

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// cutRecord is the part of a record the cut-body tests look at.
type cutRecord struct {
	Input, Output, Rationale json.RawMessage
	Truncated                bool
	Flags                    []string
	Redactions               []Redaction
}

func buildCut(t *testing.T, tc exchangeCase) (cutRecord, string) {
	t.Helper()
	s := tc.settings
	if s == nil {
		s = fullSettings(t)
	}
	line := newTestCapturer(t).AppendRecord(nil, tc.exchange(), &tc.route, s)
	if !utf8.Valid(line) || !json.Valid(line) {
		t.Fatalf("record is not valid UTF-8 JSON:\n%s", line)
	}
	var rec cutRecord
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Fatal(err)
	}
	return rec, string(line)
}

// TestCutJSONRedacted: a JSON body cut short — by the record's cap or
// because only its beginning was captured — is recorded as JSON, so that
// configured paths still find their values, and keeps its flags.
func TestCutJSONRedacted(t *testing.T) {
	explain := `{"explanations":[{"summary":"Applicant jane.roe@bank.example has debt-to-income 0.61","detail":"` +
		strings.Repeat("Debt weighs more than income. ", 20) + `"}]}`
	for _, tt := range []struct {
		name  string
		tc    exchangeCase
		part  func(cutRecord) json.RawMessage
		where string   // a redaction the record must list
		flags []string // flags the record must carry
		leak  string   // what must not reach the record
	}{
		{
			name: "input over the cap",
			tc: exchangeCase{method: "POST", uri: "/score", req: applicationJSON, resp: `{"ok":true}`,
				settings: settingsWith(1024, "applicant.name")},
			part: func(r cutRecord) json.RawMessage { return r.Input }, where: "input.applicant.name",
			flags: []string{FlagRequestTruncated}, leak: "Jane Roe",
		},
		{
			name: "input captured in part",
			tc: exchangeCase{method: "POST", uri: "/score", req: applicationJSON, reqCap: 300, resp: `{"ok":true}`,
				settings: settingsWith(0, "applicant.name")},
			part: func(r cutRecord) json.RawMessage { return r.Input }, where: "input.applicant.name",
			flags: []string{FlagRequestTruncated}, leak: "Jane Roe",
		},
		{
			name: "output over the cap",
			tc: exchangeCase{method: "POST", uri: "/score", req: `{"q":1}`, resp: applicationAnswer,
				settings: settingsWith(200, "applicant.name")},
			part: func(r cutRecord) json.RawMessage { return r.Output }, where: "output.applicant.name",
			flags: []string{FlagResponseTruncated}, leak: "Jane Roe",
		},
		{
			name: "output captured in part",
			tc: exchangeCase{method: "POST", uri: "/score", req: `{"q":1}`, resp: applicationAnswer, respCap: 180,
				settings: settingsWith(0, "applicant.name")},
			part: func(r cutRecord) json.RawMessage { return r.Output }, where: "output.applicant.name",
			flags: []string{FlagResponseTruncated}, leak: "Jane Roe",
		},
		{
			name: "output of a profile captured in part",
			tc: exchangeCase{method: "POST", uri: "/v1/models/loans:predict", req: `{"instances":[[1]]}`,
				resp: `{"predictions":[{"applicant":{"name":"Jane Roe"},"label":"deny"},{"applicant":{"name":"John Doe"},"label":"approve"}]}`, respCap: 90,
				settings: settingsWith(0, "[*].applicant.name")},
			part: func(r cutRecord) json.RawMessage { return r.Output }, where: "output[1].applicant.name",
			flags: []string{FlagResponseTruncated}, leak: "Doe",
		},
		{
			name: "rationale captured in part",
			tc: exchangeCase{method: "POST", uri: "/v1/models/loans:explain", req: `{"instances":[[1]]}`,
				resp: explain, respCap: 300},
			part: func(r cutRecord) json.RawMessage { return r.Rationale }, where: "rationale.explanations[0].summary",
			flags: []string{FlagResponseTruncated}, leak: "jane.roe@bank.example",
		},
		{
			name: "compressed body captured in part",
			tc: exchangeCase{method: "POST", uri: "/score", req: `{"q":1}`,
				respHeaders: [][2]string{jsonCT, {"Content-Encoding", "gzip"}},
				resp:        gzipString(applicationAnswer), respCap: len(gzipString(applicationAnswer)) - 20,
				settings: settingsWith(0, "applicant.name")},
			part: func(r cutRecord) json.RawMessage { return r.Output }, where: "output.applicant.name",
			flags: []string{FlagResponseTruncated, FlagDecodeError}, leak: "Jane Roe",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, line := buildCut(t, tt.tc)
			part := tt.part(rec)
			if len(part) == 0 || part[0] != '{' && part[0] != '[' {
				t.Errorf("cut JSON recorded as %.80s, want an object or array", part)
			}
			if strings.Contains(line, tt.leak) {
				t.Errorf("%q reached the record:\n%s", tt.leak, line)
			}
			if !slices.ContainsFunc(rec.Redactions, func(r Redaction) bool { return r.Where == tt.where }) {
				t.Errorf("redactions %+v, want one at %s", rec.Redactions, tt.where)
			}
			for _, f := range tt.flags {
				if !slices.Contains(rec.Flags, f) {
					t.Errorf("flags %v, want %s", rec.Flags, f)
				}
			}
			for _, f := range []string{FlagRequestNotJSON, FlagResponseNotJSON} {
				if slices.Contains(rec.Flags, f) {
					t.Errorf("flags %v: a cut JSON body is flagged %s", rec.Flags, f)
				}
			}
			if !rec.Truncated {
				t.Error("truncated is false")
			}
		})
	}
}

// TestCutValueHidden: a value split by the cut, whose visible part the
// detectors cannot recognize, does not reach the record, in JSON or in
// text.
func TestCutValueHidden(t *testing.T) {
	form := "applicant=jane&note=" + strings.Repeat("please+review+", 6) + "card+4111+1111+1111+1111+exp+0929"
	formMax := strings.Index(form, "4111+1111+111") + len("4111+1111+111")
	for _, tt := range []struct {
		name string
		tc   exchangeCase
		leak []string
	}{
		{"JSON over the cap", exchangeCase{method: "POST", uri: "/v1/chat/completions", req: cardCutReq, resp: `{"choices":[]}`,
			settings: settingsWith(cardCutMax)}, []string{"4111"}},
		{"JSON captured in part", exchangeCase{method: "POST", uri: "/v1/chat/completions", req: cardCutReq, reqCap: cardCutMax,
			resp: `{"choices":[]}`}, []string{"4111"}},
		{"text over the cap", exchangeCase{method: "POST", uri: "/score", req: form, resp: `{"ok":true}`,
			settings: settingsWith(formMax)}, []string{"4111"}},
		{"text captured in part", exchangeCase{method: "POST", uri: "/score", req: form, reqCap: formMax, resp: `{"ok":true}`},
			[]string{"4111"}},
		{"email over the cap", exchangeCase{method: "POST", uri: "/score", req: `{"q":"` + strings.Repeat("word ", 20) + `write to jane.roe@bank.example"}`,
			resp: `{"ok":true}`, settings: settingsWith(120)}, []string{"jane"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, line := buildCut(t, tt.tc)
			for _, leak := range tt.leak {
				if strings.Contains(string(rec.Input), leak) {
					t.Errorf("%q reached the record:\n%s", leak, line)
				}
			}
			if !rec.Truncated || !slices.Contains(rec.Flags, FlagRequestTruncated) {
				t.Errorf("truncated %v, flags %v", rec.Truncated, rec.Flags)
			}
		})
	}
}

// TestCutTextStaysText: text cut inside a UTF-8 sequence is recorded as
// text, not as binary.
func TestCutTextStaysText(t *testing.T) {
	tc := exchangeCase{method: "POST", uri: "/score", req: strings.Repeat("\u00e9", 100), resp: `{"ok":true}`,
		settings: settingsWith(101)}
	rec, line := buildCut(t, tc)
	var s string
	if err := json.Unmarshal(rec.Input, &s); err != nil || s != strings.Repeat("\u00e9", 18) {
		t.Errorf("input %s, want 18 whole runes as text", rec.Input)
	}
	if slices.Contains(rec.Flags, FlagInvalidUTF8) {
		t.Errorf("cut text flagged invalid UTF-8:\n%s", line)
	}
}

// TestCutPartsKeptApart: without a redactor, a closed input is not
// overwritten by the closed output built after it.
func TestCutPartsKeptApart(t *testing.T) {
	tc := exchangeCase{method: "POST", uri: "/score", req: applicationJSON, resp: applicationAnswer,
		settings: &Settings{Input: true, Output: true, MaxBody: 150}}
	rec, _ := buildCut(t, tc)
	if !strings.Contains(string(rec.Input), "Income verified") || !strings.Contains(string(rec.Output), "debt-to-income") {
		t.Errorf("input %s\noutput %s", rec.Input, rec.Output)
	}
}

// TestCutNotPrefix: a body that is whole but not JSON is recorded as
// text, as it was sent, and flagged, even if it starts like JSON.
func TestCutNotPrefix(t *testing.T) {
	tc := exchangeCase{method: "POST", uri: "/score", req: `{"a":1,"b":"Jane Roe"`, resp: `{"ok":true}`}
	rec, _ := buildCut(t, tc)
	if string(rec.Input) != `"{\"a\":1,\"b\":\"Jane Roe\""` || !slices.Contains(rec.Flags, FlagRequestNotJSON) || rec.Truncated {
		t.Errorf("input %s, flags %v, truncated %v", rec.Input, rec.Flags, rec.Truncated)
	}
}

// TestCaptureAllocs pins the allocations of a record: making cut bodies
// whole costs the whole body nothing, and an answer's fields are read in one
// pass.
func TestCaptureAllocs(t *testing.T) {
	if !redactTestPoolKeeps() {
		t.Skip("sync.Pool drops items in this build (race detector)")
	}
	c := newTestCapturer(t)
	s := fullSettings(t)
	ex := cases[0].exchange()
	buf := c.AppendRecord(nil, ex, nil, s)
	n := testing.AllocsPerRun(100, func() { buf = c.AppendRecord(buf[:0], ex, nil, s) })
	if n > 7 {
		t.Errorf("%v allocations per record, want at most 7", n)
	}
}

// TestCutStreamHoldsTails: a streamed answer captured only in part is
// reassembled from the events captured; the text still being streamed at
// the cut loses its last cutHold bytes, so the front of a card number split
// by the cut does not reach the record, while text finished before the cut
// is kept whole.
func TestCutStreamHoldsTails(t *testing.T) {
	const text = "Thank you for your order of three books and a reading lamp. I will charge the card 4111 1111 1111 1111 today."
	var pieces []string
	for i := 0; i < len(text); i += 3 {
		pieces = append(pieces, text[i:min(i+3, len(text))])
	}
	for _, tt := range []struct {
		uri, head, tail string
		event           func(piece string) string
		finished        string // a text finished before the cut, kept whole
	}{
		{
			uri:  "/v1/chat/completions",
			head: `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":1,"delta":{"content":"Done."},"finish_reason":"stop"}]}` + "\n\n",
			event: func(p string) string {
				return `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"` + p + `"}}]}` + "\n\n"
			},
			tail:     "data: [DONE]\n\n",
			finished: `"content":"Done."`,
		},
		{
			uri: "/v1/messages",
			head: "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[]}}\n\n" +
				"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"pay\",\"input\":{}}}\n\n" +
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"to\\\": \\\"acct-9\\\"}\"}}\n\n" +
				"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
				"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
			event: func(p string) string {
				return "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + p + "\"}}\n\n"
			},
			finished: `"input":{"to":"acct-9"}`,
			tail:     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		},
		{
			uri: "/v1/responses",
			head: "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"function_call\",\"name\":\"pay\",\"arguments\":\"\"}}\n\n" +
				"event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"output_index\":0,\"delta\":\"{\\\"to\\\":\\\"acct-9\\\"}\"}\n\n" +
				"event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"function_call\",\"name\":\"pay\",\"arguments\":\"{\\\"to\\\":\\\"acct-9\\\"}\"}}\n\n" +
				"event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":1,\"item\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[]}}\n\n" +
				"event: response.content_part.added\ndata: {\"type\":\"response.content_part.added\",\"output_index\":1,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}}\n\n",
			event: func(p string) string {
				return "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"output_index\":1,\"content_index\":0,\"delta\":\"" + p + "\"}\n\n"
			},
			finished: `"arguments":"{\"to\":\"acct-9\"}"`,
			tail: "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r1\",\"status\":\"completed\",\"output\":[" +
				"{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"" + text + "\",\"annotations\":[]}]}]}}\n\n",
		},
	} {
		t.Run(tt.uri, func(t *testing.T) {
			// The capture ends with the event that brings "4111 1".
			var sse strings.Builder
			sse.WriteString(tt.head)
			captured, got := 0, ""
			for _, p := range pieces {
				sse.WriteString(tt.event(p))
				if got += p; captured == 0 && strings.Contains(got, "4111 1") {
					captured = sse.Len()
				}
			}
			sse.WriteString(tt.tail)
			tc := exchangeCase{method: "POST", uri: tt.uri, req: `{"model":"m","stream":true}`,
				respHeaders: [][2]string{sseCT}, resp: sse.String(), respCap: captured}
			rec, line := buildCut(t, tc)
			if strings.Contains(line, "4111") || strings.Contains(line, "REDACTED") || !strings.Contains(string(rec.Output), "Thank you for your") {
				t.Errorf("want the text before the cut less its last %d bytes:\n%s", cutHold, rec.Output)
			}
			if !slices.Contains(rec.Flags, FlagResponseTruncated) || !slices.Contains(rec.Flags, FlagStreamIncomplete) {
				t.Errorf("flags %v", rec.Flags)
			}
			if !strings.Contains(string(rec.Output), tt.finished) {
				t.Errorf("what finished before the cut is not whole (%s):\n%s", tt.finished, rec.Output)
			}

			// Captured whole, the card is found and redacted.
			tc.respCap = 0
			rec, line = buildCut(t, tc)
			if strings.Contains(line, "4111") || !strings.Contains(string(rec.Output), "charge the card [REDACTED:card:") {
				t.Errorf("whole stream:\n%s", rec.Output)
			}
		})
	}
}
