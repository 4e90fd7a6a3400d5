package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/auditgate/auditgate/bench"
)

// streamUpdate reports the -update flag, which another test file of the
// package may have registered first.
var streamUpdate = func() func() bool {
	if f := flag.Lookup("update"); f != nil {
		return func() bool { return f.Value.String() == "true" }
	}
	p := flag.Bool("update", false, "rewrite the golden files in testdata")
	return func() bool { return *p }
}()

type reassembleFunc func(dst, body []byte) ([]byte, bool, error)

var streamAPIs = []struct {
	name string
	fn   reassembleFunc
}{
	{"openai_chat", ReassembleOpenAIChat},
	{"openai_completion", ReassembleOpenAICompletion},
	{"openai_responses", ReassembleOpenAIResponses},
	{"anthropic", ReassembleAnthropic},
}

// streamFixture is a stream in testdata/streams, read by the function its
// name starts with. Fixtures named *_cut or *_error end without their
// terminal event.
type streamFixture struct {
	name     string
	body     []byte
	fn       reassembleFunc
	complete bool
}

func streamFixtures(t testing.TB) []streamFixture {
	t.Helper()
	paths, err := filepath.Glob("testdata/streams/*.sse")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 13 {
		t.Fatalf("found %d stream fixtures, want at least 13", len(paths))
	}
	var fs []streamFixture
	for _, p := range paths {
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".sse")
		fx := streamFixture{name: name, body: body, complete: !strings.HasSuffix(name, "_cut") && !strings.HasSuffix(name, "_error")}
		for _, api := range streamAPIs {
			if strings.HasPrefix(name, api.name) {
				fx.fn = api.fn
			}
		}
		if fx.fn == nil {
			t.Fatalf("no Reassemble function for fixture %s", name)
		}
		fs = append(fs, fx)
	}
	return fs
}

func TestReassembleGolden(t *testing.T) {
	for _, fx := range streamFixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			out, complete, err := fx.fn(nil, fx.body)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if complete != fx.complete {
				t.Errorf("complete = %v, want %v", complete, fx.complete)
			}
			if !json.Valid(out) {
				t.Fatalf("output is not valid JSON: %s", out)
			}
			golden := filepath.Join("testdata", "streams", fx.name+".golden.json")
			if streamUpdate() {
				if err := os.WriteFile(golden, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(append(out, '\n'), want) {
				t.Errorf("output differs from %s:\n got %s\nwant %s", golden, out, want)
			}

			// The same events with other line endings, and appended after
			// other bytes, give the same object.
			for _, eol := range []string{"\r\n", "\r"} {
				body := bytes.ReplaceAll(fx.body, []byte("\n"), []byte(eol))
				if got, _, _ := fx.fn(nil, body); !bytes.Equal(got, out) {
					t.Errorf("with %q line endings:\n got %s\nwant %s", eol, got, out)
				}
			}
			got, _, _ := fx.fn([]byte("prefix:"), fx.body)
			if !bytes.Equal(got, append([]byte("prefix:"), out...)) {
				t.Errorf("appending to dst: got %s", got)
			}
		})
	}
}

// streamRaw marks an expected value as raw JSON rather than a string's contents.
type streamRaw string

// TestReassembleFields pins what matters in each fixture's output,
// independently of the golden files.
func TestReassembleFields(t *testing.T) {
	want := map[string]map[string]any{
		"openai_chat_content": {
			"object":                    "chat.completion",
			"id":                        "chatcmpl-C1x7rTgW2kVq9yLhN3aZ8bE5dF0sJ",
			"created":                   streamRaw("1754500000"),
			"system_fingerprint":        "fp_34a54ae93c",
			"service_tier":              "default",
			"choices.#":                 streamRaw("1"),
			"choices.0.message.role":    "assistant",
			"choices.0.message.content": "The café on rue Cler sells \"pain au chocolat\".\n\nOpen 7–19h \U0001F950",
			"choices.0.message.refusal": streamRaw(""),
			"choices.0.finish_reason":   "stop",
			"choices.0.logprobs":        streamRaw(""),
			"usage":                     streamRaw(""),
			"obfuscation":               streamRaw(""),
		},
		"openai_chat_tool_calls": {
			"choices.0.message.content":                         streamRaw("null"),
			"choices.0.message.tool_calls.#":                    streamRaw("2"),
			"choices.0.message.tool_calls.0.id":                 "call_Wm0dXg0Y4ar1nKfWc2Ux6mKd",
			"choices.0.message.tool_calls.0.type":               "function",
			"choices.0.message.tool_calls.0.function.name":      "get_weather",
			"choices.0.message.tool_calls.0.function.arguments": `{"location": "Paris, France"}`,
			"choices.0.message.tool_calls.1.id":                 "call_7tFJp9bBZQ2u8hXo1LrYcV3e",
			"choices.0.message.tool_calls.1.function.arguments": `{"location": "Bogotá, Colombia"}`,
			"choices.0.message.tool_calls.0.index":              streamRaw(""),
			"choices.0.finish_reason":                           "tool_calls",
		},
		"openai_chat_n2": {
			"choices.#":                 streamRaw("2"),
			"choices.0.index":           streamRaw("0"),
			"choices.0.message.content": "Blue sky at noon.",
			"choices.1.index":           streamRaw("1"),
			"choices.1.message.content": "Azure and cloudless.",
			"choices.1.finish_reason":   "stop",
		},
		"openai_chat_usage": {
			"choices.0.message.content":                        "4 + 4 = 8.",
			"usage.total_tokens":                               streamRaw("26"),
			"usage.completion_tokens_details.reasoning_tokens": streamRaw("0"),
		},
		"openai_chat_logprobs": {
			"choices.0.message.content":            "Yes, it is.",
			"choices.0.logprobs.content.#":         streamRaw("5"),
			"choices.0.logprobs.content.1.token":   ",",
			"choices.0.logprobs.content.4.logprob": streamRaw("-0.0009"),
			"choices.0.logprobs.refusal":           streamRaw("null"),
		},
		"openai_completion": {
			"object":                  "text_completion",
			"model":                   "gpt-3.5-turbo-instruct:20230824-v2",
			"choices.0.text":          "\n\nRoses are red,\nviolets are blue",
			"choices.0.finish_reason": "length",
			"choices.0.logprobs":      streamRaw("null"),
			"usage.total_tokens":      streamRaw("16"),
		},
		"openai_responses": {
			"object":                  "response",
			"status":                  "completed",
			"output.#":                streamRaw("2"),
			"output.0.content.0.text": "Let me check the weather in Paris for you.",
			"output.1.type":           "function_call",
			"output.1.arguments":      `{"location":"Paris, France"}`,
			"usage.total_tokens":      streamRaw("109"),
			"instructions":            "You are a concise travel assistant.",
		},
		"openai_responses_cut": {
			"id":                      "resp_68a3f0c1d2e4819a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e",
			"status":                  "in_progress",
			"output.#":                streamRaw("2"),
			"output.0.status":         "completed",
			"output.0.content.0.text": "Let me check the weather in Paris for you.",
			"output.1.status":         "in_progress",
			"output.1.call_id":        "call_pX3vR8nT2qW6yL1kZ9mB4cJd",
			"output.1.arguments":      `{"location":"Paris`,
			"usage":                   streamRaw("null"),
		},
		"anthropic_text": {
			"type":                "message",
			"role":                "assistant",
			"content.#":           streamRaw("1"),
			"content.0.type":      "text",
			"content.0.text":      "Hello! The capital of France is Paris—known as\n\"la Ville Lumière\".",
			"stop_reason":         "end_turn",
			"stop_sequence":       streamRaw("null"),
			"usage.input_tokens":  streamRaw("25"),
			"usage.output_tokens": streamRaw("19"),
			"usage.service_tier":  "standard",
		},
		"anthropic_tool_use": {
			"content.0.text":      "Okay, let's check the weather for San Francisco, CA:",
			"content.1.type":      "tool_use",
			"content.1.id":        "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
			"content.1.input":     streamRaw(`{"location":"San Francisco, CA","unit":"fahrenheit"}`),
			"stop_reason":         "tool_use",
			"usage.input_tokens":  streamRaw("472"),
			"usage.output_tokens": streamRaw("89"),
			"usage.cache_creation.ephemeral_5m_input_tokens": streamRaw("0"),
		},
		"anthropic_thinking": {
			"content.0.type":      "thinking",
			"content.0.thinking":  "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3\n3. 27 * 400 = 10,800\n4. 27 * 50 = 1,350\n5. 27 * 3 = 81\n6. 10,800 + 1,350 + 81 = 12,231",
			"content.0.signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds4UDE8TpSXpBcCM0oSPzGXLdG3lxYRr6eGBy5Y2lgvzy8SZMpkbmVbPCPL3lD1IxHYEB2ZjWgkvzjJBSiHqpZ8o9xt7mtbATNn79O8",
			"content.1.text":      "27 * 453 = 12,231.",
			"usage.output_tokens": streamRaw("158"),
		},
		"anthropic_citations": {
			"content.0.text":                         "the grass is green",
			"content.0.citations.#":                  streamRaw("1"),
			"content.0.citations.0.cited_text":       "The grass is green. ",
			"content.1.citations.0.start_char_index": streamRaw("20"),
		},
		"anthropic_error": {
			"content.0.text":      "Here is a long story about",
			"stop_reason":         streamRaw("null"),
			"usage.output_tokens": streamRaw("1"),
			"error.type":          "overloaded_error",
			"error.message":       "Overloaded",
		},
	}
	for _, fx := range streamFixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			fields, ok := want[fx.name]
			if !ok {
				t.Fatalf("no expected fields for %s", fx.name)
			}
			out, _, err := fx.fn(nil, fx.body)
			if err != nil {
				t.Fatal(err)
			}
			for path, w := range fields {
				got := gjson.GetBytes(out, path)
				switch w := w.(type) {
				case streamRaw:
					if got.Raw != string(w) {
						t.Errorf("%s = %s, want %s", path, got.Raw, w)
					}
				case string:
					if got.Type != gjson.String || got.Str != w {
						t.Errorf("%s = %s, want %q", path, got.Raw, w)
					}
				}
			}
		})
	}
}

// streamTexts collects the streamed strings of an output, by path: content,
// text, thinking, arguments, refusal and signature members.
func streamTexts(t *testing.T, out []byte) map[string]string {
	t.Helper()
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("output does not parse: %v: %s", err, out)
	}
	texts := map[string]string{}
	var walk func(path, key string, v any)
	walk = func(path, key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(path+"."+k, k, e)
			}
		case []any:
			for i, e := range v {
				walk(path+"."+strconv.Itoa(i), key, e)
			}
		case string:
			switch key {
			case "content", "text", "thinking", "arguments", "refusal", "signature":
				texts[path] = v
			}
		}
	}
	walk("", "", v)
	return texts
}

// TestReassembleCutShort cuts every fixture at many bytes, every one near a
// line end and every 16th elsewhere (all of them take minutes under the race
// detector): the result is always valid JSON, complete only with the whole
// stream, and every streamed text in it is a prefix of the whole stream's.
func TestReassembleCutShort(t *testing.T) {
	for _, fx := range streamFixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			full, _, err := fx.fn(nil, fx.body)
			if err != nil {
				t.Fatal(err)
			}
			fullTexts := streamTexts(t, full)
			var out, prev []byte
			for i := 0; i <= len(fx.body); i++ {
				if i%16 != 0 && i != len(fx.body) && !bytes.ContainsAny(fx.body[max(0, i-2):min(len(fx.body), i+2)], "\r\n") {
					continue
				}
				var complete bool
				out, complete, err = fx.fn(out[:0], fx.body[:i])
				if err != nil {
					t.Fatalf("cut at %d: err = %v", i, err)
				}
				if want := fx.complete && i == len(fx.body); complete != want {
					t.Fatalf("cut at %d: complete = %v, want %v", i, complete, want)
				}
				// The output changes only where an event ends: check each
				// new one.
				if bytes.Equal(out, prev) {
					continue
				}
				prev = append(prev[:0], out...)
				if !json.Valid(out) {
					t.Fatalf("cut at %d: invalid JSON: %s", i, out)
				}
				for path, s := range streamTexts(t, out) {
					f, ok := fullTexts[path]
					if !ok || !strings.HasPrefix(f, s) {
						t.Fatalf("cut at %d: %s = %q, not a prefix of the whole stream's %q", i, path, s, f)
					}
				}
			}
		})
	}
}

func TestReassembleNotStream(t *testing.T) {
	chat, _ := os.ReadFile("testdata/streams/openai_chat_content.sse")
	anthropic, _ := os.ReadFile("testdata/streams/anthropic_text.sse")
	responses, _ := os.ReadFile("testdata/streams/openai_responses.sse")
	tests := []struct {
		name string
		fn   reassembleFunc
		body string
	}{
		{"json error answer", ReassembleOpenAIChat, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
		{"anthropic json error", ReassembleAnthropic, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
		{"html", ReassembleOpenAIResponses, "<html><body><h1>502 Bad Gateway</h1></body></html>\n"},
		{"anthropic stream as chat", ReassembleOpenAIChat, string(anthropic)},
		{"chat stream as anthropic", ReassembleAnthropic, string(chat)},
		{"chat stream as completion", ReassembleOpenAICompletion, string(chat)},
		{"chat stream as responses", ReassembleOpenAIResponses, string(chat)},
		{"responses stream as chat", ReassembleOpenAIChat, string(responses)},
		{"text events", ReassembleOpenAIChat, "data: hello\n\ndata: world\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, complete, err := tt.fn([]byte("dst"), []byte(tt.body))
			if !errors.Is(err, ErrNotStream) || complete || string(out) != "dst" {
				t.Errorf("= %q, %v, %v; want dst untouched, false, ErrNotStream", out, complete, err)
			}
		})
	}
}

func TestReassembleEmptyStreams(t *testing.T) {
	for _, api := range streamAPIs {
		for _, body := range []string{"", "da", "\n", ": keep-alive\n\n", "data: {\"id\":"} {
			out, complete, err := api.fn(nil, []byte(body))
			if err != nil || complete || !json.Valid(out) {
				t.Errorf("%s(%q) = %s, %v, %v; want valid JSON, incomplete, no error", api.name, body, out, complete, err)
			}
		}
	}
	out, complete, err := ReassembleOpenAIChat(nil, []byte("data: [DONE]\n\n"))
	if err != nil || !complete || string(out) != `{"id":null,"object":"chat.completion","created":null,"model":null,"choices":[]}` {
		t.Errorf("only [DONE]: %s, %v, %v", out, complete, err)
	}
}

func TestReassembleOpenAIChatCases(t *testing.T) {
	const head = `"object":"chat.completion.chunk","created":1,"model":"m"`
	tests := []struct {
		name, body, want string
		complete         bool
	}{
		{
			name: "not JSON lines skipped",
			body: "data: {\"id\":\"a\"," + head + ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n" +
				"data: not json\n\ndata: {\"truncated\":\n\n" +
				"data: {\"id\":\"a\"," + head + ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
			want:     `{"id":"a","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}`,
			complete: true,
		},
		{
			name: "choices out of order",
			body: "data: {\"id\":\"a\"," + head + ",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"B\"}}]}\n\n" +
				"data: {\"id\":\"a\"," + head + ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}},{\"index\":1,\"delta\":{\"content\":\"b\"}}]}\n\n",
			want: `{"id":"a","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"A"},"finish_reason":null},{"index":1,"message":{"role":"assistant","content":"Bb"},"finish_reason":null}]}`,
		},
		{
			name: "error chunk",
			body: "data: {\"id\":\"a\"," + head + ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n" +
				"data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
			want: `{"id":"a","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":null}],"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`,
		},
		{
			name: "azure filter chunk first, refusal, legacy function_call",
			body: "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[]}\n\n" +
				"data: {\"id\":\"a\"," + head + ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"refusal\":\"I can't\"}}]}\n\n" +
				"data: {\"id\":\"a\"," + head + ",\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\" help.\",\"function_call\":{\"name\":\"f\",\"arguments\":\"{}\"}}}]}\n\n",
			want: `{"id":"a","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help.","function_call":{"name":"f","arguments":"{}"}},"finish_reason":null}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, complete, err := ReassembleOpenAIChat(nil, []byte(tt.body))
			if err != nil || string(out) != tt.want || complete != tt.complete {
				t.Errorf("got %s, %v, %v\nwant %s, %v", out, complete, err, tt.want, tt.complete)
			}
		})
	}
}

func TestReassembleAnthropicCases(t *testing.T) {
	const start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
	tests := []struct{ name, body, want string }{
		{
			name: "input cut short stays a string",
			body: start + "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n" +
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Par\"}}\n\n",
			want: `{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"tool_use","id":"t","name":"f","input":"{\"city\": \"Par"}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}`,
		},
		{
			name: "blocks out of order, deltas without a start",
			body: start + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"second\"}}\n\n" +
				"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"first\"}}\n\n",
			want: `{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"first"},{"type":"text","text":"second"}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}`,
		},
		{
			name: "message_delta merges usage and keeps other keys",
			body: start + "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null,\"container\":{\"id\":\"c1\"},\"stop_details\":null},\"usage\":{\"input_tokens\":null,\"output_tokens\":7,\"server_tool_use\":{\"web_search_requests\":1}}}\n\n" +
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			want: `{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":7,"server_tool_use":{"web_search_requests":1}},"container":{"id":"c1"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := ReassembleAnthropic(nil, []byte(tt.body))
			if err != nil || string(out) != tt.want {
				t.Errorf("got %s, %v\nwant %s", out, err, tt.want)
			}
		})
	}
}

// TestReassembleMatchesMock streams answers from the project's mock
// upstream and checks that they reassemble to what the same request
// answers without streaming. The plain and the streamed request bodies have
// the same length ("stream":false against "stream":true plus a space), since
// the mock's prompt token count follows the body's length.
func TestReassembleMatchesMock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := bench.StartMock(ctx, "127.0.0.1:0", bench.MockOptions{ResponseSize: 900, StreamChunks: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	post := func(path, body string) []byte {
		t.Helper()
		resp, err := client.Post(srv.URL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %v: %s", path, resp.StatusCode, err, b)
		}
		return b
	}
	tests := []struct {
		name, path, body string
		fn               reassembleFunc
		fields           []string
	}{
		{
			name: "chat with usage", path: "/v1/chat/completions", fn: ReassembleOpenAIChat,
			body:   `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"stream":STREAM,"stream_options":{"include_usage":true}}`,
			fields: []string{"object", "model", "system_fingerprint", "choices.#", "choices.0.index", "choices.0.message.role", "choices.0.message.content", "choices.0.finish_reason", "usage"},
		},
		{
			name: "chat", path: "/v1/chat/completions", fn: ReassembleOpenAIChat,
			body:   `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"stream":STREAM}`,
			fields: []string{"object", "model", "system_fingerprint", "choices.0.message.content", "choices.0.finish_reason"},
		},
		{
			name: "completion with usage", path: "/v1/completions", fn: ReassembleOpenAICompletion,
			body:   `{"model":"gpt-3.5-turbo-instruct","prompt":"Say hi","stream":STREAM,"stream_options":{"include_usage":true}}`,
			fields: []string{"object", "model", "system_fingerprint", "choices.#", "choices.0.text", "choices.0.index", "choices.0.finish_reason", "choices.0.logprobs", "usage"},
		},
		{
			name: "messages", path: "/v1/messages", fn: ReassembleAnthropic,
			body:   `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hi"}],"stream":STREAM}`,
			fields: []string{"type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain := post(tt.path, strings.Replace(tt.body, "STREAM", "false", 1))
			streamed := post(tt.path, strings.Replace(tt.body, "STREAM", "true ", 1))
			out, complete, err := tt.fn(nil, streamed)
			if err != nil || !complete {
				t.Fatalf("complete = %v, err = %v", complete, err)
			}
			if gjson.GetBytes(out, "id").Str == "" {
				t.Errorf("no id in %s", out)
			}
			for _, f := range tt.fields {
				g, w := gjson.GetBytes(out, f), gjson.GetBytes(plain, f)
				if !w.Exists() || !reflect.DeepEqual(g.Value(), w.Value()) {
					t.Errorf("%s: streamed %s, plain %s", f, g.Raw, w.Raw)
				}
			}
		})
	}
}

// streamChat20 is a chat stream of 20 content chunks with a usage chunk, as
// OpenAI sends it with stream_options.include_usage.
func streamChat20() []byte {
	const head = `data: {"id":"chatcmpl-C1xAb7Hn2Kq0Vw5Xr8Tz1Ly4Mc6Pd","object":"chat.completion.chunk","created":1754500300,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_34a54ae93c","choices":[`
	var b []byte
	b = append(b, head+`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n"...)
	for i := range 20 {
		b = append(b, head+`{"index":0,"delta":{"content":" token`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `"},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n"...)
	}
	b = append(b, head+`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`+"\n\n"...)
	b = append(b, head+`],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`+"\n\n"...)
	return append(b, "data: [DONE]\n\n"...)
}

func BenchmarkReassembleOpenAIChat20Chunks(b *testing.B) {
	body := streamChat20()
	out, complete, err := ReassembleOpenAIChat(nil, body)
	if err != nil || !complete || gjson.GetBytes(out, "choices.0.message.content").Str == "" {
		b.Fatalf("%s, %v, %v", out, complete, err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		out, _, _ = ReassembleOpenAIChat(out[:0], body)
	}
}

func BenchmarkReassembleAnthropic(b *testing.B) {
	body, err := os.ReadFile("testdata/streams/anthropic_tool_use.sse")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		out, _, _ = ReassembleAnthropic(out[:0], body)
	}
}

func FuzzReassemble(f *testing.F) {
	paths, _ := filepath.Glob("testdata/streams/*.sse")
	for _, p := range paths {
		if body, err := os.ReadFile(p); err == nil {
			f.Add(body)
		}
	}
	for _, s := range []string{
		"", "data: [DONE]\n\n", "data: {}\n\n", "data: {\"choices\":[{\"index\":-1,\"delta\":{\"tool_calls\":[{\"index\":1e9}]}}]}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"[1, \\\"\\\\ud83d\"}}\n\n",
		"data: {\"type\":\"response.output_text.delta\",\"output_index\":2,\"content_index\":1,\"delta\":\"x\"}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, api := range streamAPIs {
			dst := []byte("dst")
			out, complete, err := api.fn(dst, body)
			if !bytes.HasPrefix(out, dst) {
				t.Fatalf("%s: dst not kept: %q", api.name, out)
			}
			if err != nil {
				if len(out) != len(dst) || complete {
					t.Fatalf("%s: err %v with output %q, complete %v", api.name, err, out, complete)
				}
				continue
			}
			if !json.Valid(out[len(dst):]) {
				t.Fatalf("%s: invalid JSON for %q: %s", api.name, body, out[len(dst):])
			}
			again, complete2, _ := api.fn(nil, body)
			if !bytes.Equal(again, out[len(dst):]) || complete2 != complete {
				t.Fatalf("%s: not deterministic: %s then %s", api.name, out[len(dst):], again)
			}
		}
	})
}
