package capture

import (
	"strings"
	"testing"
)

// TestServedModel: model.served is what the answer names, and unknown when
// it names nothing; the path names only what was asked for.
func TestServedModel(t *testing.T) {
	c := newTestCapturer(t)
	for _, tt := range []struct {
		name, uri, resp        string
		respHeaders            [][2]string
		wantRequested, wantSrv string
	}{
		{"kserve predict", "/v1/models/loans:predict", `{"predictions":[1]}`, nil, "loans", ""},
		{"kserve version", "/v1/models/loans/versions/3:predict", `{"predictions":[1]}`, nil, "loans", ""},
		{"tf serving label", "/v1/models/fraud/labels/stable:classify", `{"results":[[["a",1]]]}`, nil, "fraud", ""},
		{"kserve explain", "/v1/models/loans:explain", `{"explanations":[]}`, nil, "loans", ""},
		{"triton names it", "/v2/models/fraud/infer", `{"model_name":"fraud-gpu","outputs":[]}`, nil, "fraud", "fraud-gpu"},
		{"triton does not", "/v2/models/fraud/infer", `{"outputs":[]}`, nil, "fraud", ""},
		{"sagemaker variant", "/endpoints/ep/invocations", `{}`, [][2]string{{"X-Amzn-Invoked-Production-Variant", "v-b"}}, "ep", "v-b"},
		{"sagemaker without", "/endpoints/ep/invocations", `{}`, nil, "ep", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := exchangeCase{method: "POST", uri: tt.uri, req: `{"instances":[[1]]}`, resp: tt.resp, respHeaders: tt.respHeaders}
			rec := c.Build(tc.exchange(), nil, fullSettings(t))
			if rec.Model.Requested != tt.wantRequested || rec.Model.Served != tt.wantSrv {
				t.Errorf("model %+v, want requested %q served %q", rec.Model, tt.wantRequested, tt.wantSrv)
			}
		})
	}
}

// TestUsagePerProvider: usage is recorded as each provider counts it.
func TestUsagePerProvider(t *testing.T) {
	c := newTestCapturer(t)
	anthropicStream := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":1800,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	for _, tt := range []struct {
		name, uri, resp string
		sse             bool
		want            Usage
		wantJSON        string
	}{
		{"openai chat: prompt tokens include cached ones", "/v1/chat/completions",
			`{"choices":[],"usage":{"prompt_tokens":412,"completion_tokens":131,"prompt_tokens_details":{"cached_tokens":256},"completion_tokens_details":{"reasoning_tokens":64}}}`, false,
			Usage{InputTokens: 412, OutputTokens: 131, CachedTokens: 256, ReasoningTokens: 64},
			`{"input_tokens":412,"output_tokens":131,"cached_tokens":256,"reasoning_tokens":64}`},
		{"openai responses", "/v1/responses",
			`{"output":[],"usage":{"input_tokens":20,"input_tokens_details":{"cached_tokens":8},"output_tokens":90,"output_tokens_details":{"reasoning_tokens":64}}}`, false,
			Usage{InputTokens: 20, OutputTokens: 90, CachedTokens: 8, ReasoningTokens: 64},
			`{"input_tokens":20,"output_tokens":90,"cached_tokens":8,"reasoning_tokens":64}`},
		{"anthropic: input tokens leave out the cache", "/v1/messages",
			`{"content":[],"stop_reason":"end_turn","usage":{"input_tokens":40,"cache_creation_input_tokens":30,"cache_read_input_tokens":12,"output_tokens":35}}`, false,
			Usage{InputTokens: 40, OutputTokens: 35, CachedTokens: 12, CacheCreationTokens: 30},
			`{"input_tokens":40,"output_tokens":35,"cached_tokens":12,"cache_creation_tokens":30}`},
		{"anthropic streamed", "/v1/messages", anthropicStream, true,
			Usage{InputTokens: 5, OutputTokens: 9, CacheCreationTokens: 1800},
			`{"input_tokens":5,"output_tokens":9,"cache_creation_tokens":1800}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := exchangeCase{method: "POST", uri: tt.uri, req: `{"model":"m"}`, resp: tt.resp}
			if tt.sse {
				tc.respHeaders = [][2]string{sseCT}
			}
			rec := c.Build(tc.exchange(), nil, fullSettings(t))
			if rec.Usage != tt.want {
				t.Errorf("usage %+v, want %+v", rec.Usage, tt.want)
			}
			if line := string(rec.AppendJSON(nil)); !strings.Contains(line, `"usage":`+tt.wantJSON) {
				t.Errorf("record %s\nwant usage %s", line, tt.wantJSON)
			}
		})
	}
}
