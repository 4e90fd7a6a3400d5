package capture

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden records in testdata/golden")

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// exchangeCase is one realistic exchange and how its route is configured.
type exchangeCase struct {
	name        string
	method, uri string
	reqHeaders  [][2]string
	req         string
	status      int
	respHeaders [][2]string
	resp        string
	route       RouteOptions
	settings    *Settings // nil: full capture with every detector
	// reqCap and respCap are how many bytes of each body were captured,
	// as the gateway's capture cap keeps a body's beginning; 0: all.
	reqCap, respCap int
}

func (c exchangeCase) exchange() *Exchange {
	start := time.Date(2026, 11, 27, 18, 0, 0, 123456789, time.UTC)
	ex := &Exchange{
		AuditID:    ID{0x01, 0x93, 0xa5, 0xe2, 0x7c, 0x1d, 0x7c, 0x3e, 0x9a, 0x4b, 0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a},
		Route:      "r",
		Method:     []byte(c.method),
		Host:       []byte("gateway.test"),
		URI:        []byte(c.uri),
		ClientAddr: netip.MustParseAddrPort("10.0.4.7:51000"),
		Status:     c.status,
		Start:      start, UpstreamStart: start.Add(50 * time.Microsecond),
		FirstByte: start.Add(910 * time.Microsecond), End: start.Add(48211 * time.Microsecond),
	}
	if ex.Status == 0 {
		ex.Status = 200
	}
	for _, h := range c.reqHeaders {
		ex.RequestHeaders.Fields = append(ex.RequestHeaders.Fields, Header{[]byte(h[0]), []byte(h[1])})
	}
	for _, h := range c.respHeaders {
		ex.ResponseHeaders.Fields = append(ex.ResponseHeaders.Fields, Header{[]byte(h[0]), []byte(h[1])})
	}
	body := func(s string, n int) Body {
		b := Body{Data: []byte(s), Size: int64(len(s)), SHA256: sha256.Sum256([]byte(s)), Complete: true}
		if n > 0 && n < len(s) {
			b.Data, b.Truncated = b.Data[:n], true
		}
		return b
	}
	ex.RequestBody, ex.ResponseBody = body(c.req, c.reqCap), body(c.resp, c.respCap)
	return ex
}

// settingsWith is full capture with every detector, the paths, and a
// body cap of max bytes (0: the default).
func settingsWith(max int, paths ...string) *Settings {
	r, err := NewRedactor(RedactorOptions{Secret: testSecret, Paths: paths})
	if err != nil {
		panic(err)
	}
	return &Settings{Input: true, Output: true, MaxBody: max, Redactor: r}
}

func readFixture(name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// A loan application whose applicant's name only a configured path finds,
// followed by notes long enough to be cut.
var (
	applicationJSON = `{"applicant":{"name":"Jane Roe","id":"a-1742","group":"B"},"notes":"` +
		strings.Repeat("Income verified against payslips. ", 40) + `"}`
	applicationAnswer = `{"result":{"approved":false,"reasons":["debt-to-income 0.61"]},"applicant":{"name":"Jane Roe","id":"a-1742"},"notes":"` +
		strings.Repeat("Reviewed by the scoring model. ", 20) + `"}`
)

// cardCutReq holds a card number that a cap of cardCutMax bytes splits,
// leaving "4111 1111 111" before the cut.
var (
	cardCutReq = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("Please review my application. ", 8) +
		`Card 4111 1111 1111 1111, expiry 09/29."}]}`
	cardCutMax = strings.Index(cardCutReq, "4111 1111 111") + len("4111 1111 111")
)

var jsonCT = [2]string{"Content-Type", "application/json"}
var sseCT = [2]string{"Content-Type", "text/event-stream"}
var bearer = [2]string{"Authorization", "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"}

func gzipString(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

var cases = []exchangeCase{
	{
		name: "openai_chat", method: "POST", uri: "/v1/chat/completions",
		reqHeaders:  [][2]string{bearer, jsonCT},
		req:         `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You review loan applications."},{"role":"user","content":"Applicant jane.doe@example.com, card 4111 1111 1111 1111, income 52k, debt 32k. Approve?"}],"temperature":0}`,
		respHeaders: [][2]string{jsonCT, {"Openai-Processing-Ms", "412"}},
		resp:        `{"id":"chatcmpl-AbC123","object":"chat.completion","created":1764266400,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Declined: debt-to-income 0.61 exceeds 0.45.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":412,"completion_tokens":131,"total_tokens":543,"prompt_tokens_details":{"cached_tokens":256,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},"service_tier":"default","system_fingerprint":"fp_0f03d4f0ee"}`,
	},
	{
		name: "openai_chat_stream_tools", method: "POST", uri: "/v1/chat/completions",
		reqHeaders:  [][2]string{bearer, jsonCT},
		req:         `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"What is the credit score of applicant 1742?"}],"tools":[{"type":"function","function":{"name":"get_score","parameters":{"type":"object","properties":{"id":{"type":"string"}}}}}]}`,
		respHeaders: [][2]string{sseCT},
		resp: "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1764266400,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_score\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n" +
			"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1764266400,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"id\\\":\"}}]},\"finish_reason\":null}]}\n\n" +
			"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1764266400,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"1742\\\"}\"}}]},\"finish_reason\":null}]}\n\n" +
			"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1764266400,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" +
			"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1764266400,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[],\"usage\":{\"prompt_tokens\":60,\"completion_tokens\":17,\"total_tokens\":77}}\n\n" +
			"data: [DONE]\n\n",
	},
	{
		name: "openai_chat_stream_cut", method: "POST", uri: "/v1/chat/completions",
		req:         `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		respHeaders: [][2]string{sseCT},
		resp: "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n" +
			"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\n\n",
	},
	{
		name: "openai_completion", method: "POST", uri: "/v1/completions",
		req:  `{"model":"gpt-3.5-turbo-instruct","prompt":"Score: 720. Decision:","max_tokens":5}`,
		resp: `{"id":"cmpl-1","object":"text_completion","created":1764266400,"model":"gpt-3.5-turbo-instruct","choices":[{"text":" approve","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":6,"completion_tokens":1,"total_tokens":7}}`,
	},
	{
		name: "openai_responses_reasoning", method: "POST", uri: "/v1/responses",
		req:  `{"model":"o4-mini","input":"Is a debt-to-income ratio of 0.61 acceptable?","reasoning":{"effort":"low","summary":"auto"}}`,
		resp: `{"id":"resp_1","object":"response","created_at":1764266400,"status":"completed","model":"o4-mini-2025-04-16","output":[{"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"Ratio is above common 0.43-0.45 limits."}]},{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"No; it exceeds typical limits.","annotations":[]}]}],"usage":{"input_tokens":20,"input_tokens_details":{"cached_tokens":0},"output_tokens":90,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":110}}`,
	},
	{
		name: "openai_embeddings", method: "POST", uri: "/v1/embeddings",
		req:  `{"model":"text-embedding-3-small","input":["approve","deny"]}`,
		resp: `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023,-0.0091]},{"object":"embedding","index":1,"embedding":[0.0101,0.0042]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}}`,
	},
	{
		name: "anthropic_messages_thinking", method: "POST", uri: "/v1/messages",
		reqHeaders: [][2]string{{"x-api-key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"}, {"anthropic-version", "2023-06-01"}},
		req:        `{"model":"claude-sonnet-4-5","max_tokens":1024,"thinking":{"type":"enabled","budget_tokens":512},"messages":[{"role":"user","content":"Call me at (555) 123-4567 about loan 1742."}]}`,
		resp:       `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"thinking","thinking":"The user wants a call; I cannot call.","signature":"sig"},{"type":"text","text":"I can't place calls, but loan 1742 was declined."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":12,"output_tokens":35}}`,
	},
	{
		name: "anthropic_stream", method: "POST", uri: "/v1/messages",
		req:         `{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"My SSN is 123-45-6789, approve me"}]}`,
		respHeaders: [][2]string{sseCT},
		resp: "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5-20251001\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n" +
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
			"event: ping\ndata: {\"type\":\"ping\"}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"I won't use 123-45\"}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"-6789; approval needs review.\"}}\n\n" +
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":14}}\n\n" +
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	},
	{
		name: "kserve_predict", method: "POST", uri: "/v1/models/loan-approval:predict",
		req:   `{"instances":[{"income":52000,"debt":32000,"group":"B"}]}`,
		resp:  `{"predictions":[{"label":"deny","score":0.87}]}`,
		route: RouteOptions{Labels: Labels{Version: "2026-11-01", Digest: "sha256:9c1e"}, Extract: Extract{Decision: "predictions.0.label", Attributes: map[string]string{"applicant_group": "request.instances.0.group"}}},
	},
	{
		name: "kserve_explain", method: "POST", uri: "/v1/models/loan-approval/versions/3:explain",
		req:  `{"instances":[{"income":52000,"debt":32000}]}`,
		resp: `{"explanations":[{"feature_attributions":{"debt":-0.42,"income":0.11}}]}`,
	},
	{
		name: "tfserving_classify_label", method: "POST", uri: "/v1/models/fraud/labels/stable:classify",
		req:  `{"examples":[{"amount":912.5}]}`,
		resp: `{"results":[[["fraud",0.91],["ok",0.09]]]}`,
	},
	{
		name: "triton_infer", method: "POST", uri: "/v2/models/fraud/versions/2/infer",
		req:  `{"id":"42","inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[0.1,0.2,0.3]}]}`,
		resp: `{"id":"42","model_name":"fraud","model_version":"2","outputs":[{"name":"p","shape":[1,1],"datatype":"FP32","data":[0.93]}]}`,
	},
	{
		name: "sagemaker", method: "POST", uri: "/endpoints/loan-ep/invocations",
		req:         `{"features":[52000,32000]}`,
		respHeaders: [][2]string{jsonCT, {"X-Amzn-Invoked-Production-Variant", "variant-b"}},
		resp:        `{"decision":"deny"}`,
		route:       RouteOptions{VersionHeaders: []string{"X-Model-Version"}},
	},
	{
		name: "mlflow_version_header", method: "POST", uri: "/invocations",
		req:         `{"dataframe_split":{"columns":["income","debt"],"data":[[52000,32000]]}}`,
		respHeaders: [][2]string{jsonCT, {"X-Model-Version", "17"}},
		resp:        `{"predictions":[0]}`,
		route:       RouteOptions{Provider: "mlflow", VersionHeaders: []string{"X-Model-Version"}, Labels: Labels{Model: "credit-risk", Version: "16"}},
	},
	{
		name: "generic_extract", method: "POST", uri: "/score",
		req:   `{"applicant":{"id":"a-1742","email":"jane@bank.example","group":"B"},"model":"credit-v9"}`,
		resp:  `{"result":{"approved":false,"reasons":["high debt"]},"meta":{"model_version":"9.4.1"}}`,
		route: RouteOptions{Extract: Extract{Model: "request.model", Version: "response.meta.model_version", Input: "request.applicant", Output: "response.result", Decision: "response.result.approved", Rationale: "response.result.reasons", Attributes: map[string]string{"group": "request.applicant.group"}}},
	},
	{
		name: "gzip_response", method: "POST", uri: "/v1/chat/completions",
		req:         `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		respHeaders: [][2]string{jsonCT, {"Content-Encoding", "gzip"}},
		resp:        gzipString(`{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello."},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}`),
	},
	{
		name: "not_json", method: "POST", uri: "/v1/chat/completions",
		req:         `model=gpt&prompt=hi`,
		status:      502,
		respHeaders: [][2]string{{"Content-Type", "text/html"}},
		resp:        "<html>Bad Gateway</html>",
	},
	{
		name: "binary_response", method: "POST", uri: "/predict",
		req:  `{"x":1}`,
		resp: "\x89PNG\r\n\x1a\n\x00\x00\xff",
	},
	{
		name: "metadata_level", method: "POST", uri: "/v1/chat/completions",
		reqHeaders: [][2]string{bearer},
		req:        `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"secret plans"}]}`,
		resp:       `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}`,
		settings:   &Settings{},
	},
	{
		name: "openai_responses_stream", method: "POST", uri: "/v1/responses",
		reqHeaders:  [][2]string{bearer, jsonCT},
		req:         `{"model":"gpt-4.1","stream":true,"instructions":"You are a concise travel assistant.","input":"Weather in Paris? Reply to jane.doe@example.com.","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"],"additionalProperties":false},"strict":true}]}`,
		respHeaders: [][2]string{sseCT},
		resp:        readFixture("streams/openai_responses.sse"),
	},
	{
		name: "openai_completion_stream", method: "POST", uri: "/v1/completions",
		req:         `{"model":"gpt-3.5-turbo-instruct","prompt":"Write a poem for 555-123-4567.","max_tokens":10,"stream":true,"stream_options":{"include_usage":true}}`,
		respHeaders: [][2]string{sseCT},
		resp:        readFixture("streams/openai_completion.sse"),
	},
	{
		// The cap cuts the notes: the input is still JSON, so the path
		// finds the name.
		name: "redact_path_over_max", method: "POST", uri: "/score",
		req:      applicationJSON,
		resp:     `{"result":{"approved":false}}`,
		settings: settingsWith(1024, "applicant.name"),
	},
	{
		// The gateway captured only the beginning of both bodies.
		name: "redact_path_captured_prefix", method: "POST", uri: "/score",
		req: applicationJSON, reqCap: 400,
		resp: applicationAnswer, respCap: strings.Index(applicationAnswer, `"id":"a-1742"`) + 5,
		settings: settingsWith(0, "applicant.name"),
	},
	{
		name: "card_straddles_cut", method: "POST", uri: "/v1/chat/completions",
		req:      cardCutReq,
		resp:     `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":80,"completion_tokens":0,"total_tokens":80}}`,
		settings: settingsWith(cardCutMax),
	},
	{
		name: "request_level_capped", method: "POST", uri: "/v1/chat/completions",
		req:      `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("long ", 40) + `"}]}`,
		resp:     `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}`,
		settings: &Settings{Input: true, MaxBody: 64},
	},
}

func newTestCapturer(t testing.TB) *Capturer {
	t.Helper()
	c, err := NewCapturer(CapturerOptions{Stream: "gw-test-7f3a", Identity: IdentityOptions{Secret: testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fullSettings(t testing.TB) *Settings {
	r, err := NewRedactor(RedactorOptions{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	return &Settings{Input: true, Output: true, Redactor: r}
}

// TestGoldenRecords builds the record of each case and compares it with
// testdata/golden/NAME.json byte for byte (go test -update rewrites them).
func TestGoldenRecords(t *testing.T) {
	c := newTestCapturer(t)
	full := fullSettings(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.settings
			if s == nil {
				s = full
			}
			ro := tc.route
			line := c.AppendRecord(nil, tc.exchange(), &ro, s)
			if !json.Valid(line) {
				t.Fatalf("record is not valid JSON:\n%s", line)
			}
			var pretty bytes.Buffer
			json.Indent(&pretty, line, "", "  ")
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", "golden", tc.name+".json")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("record differs from %s:\n%s", golden, pretty.Bytes())
			}
			// Secrets never reach a record.
			for _, h := range tc.reqHeaders {
				if strings.HasPrefix(h[1], "Bearer ") || strings.HasPrefix(h[1], "sk-") {
					key := strings.TrimPrefix(h[1], "Bearer ")
					if bytes.Contains(line, []byte(key)) {
						t.Errorf("the API key reached the record")
					}
				}
			}
		})
	}
}

// TestRecordKeyOrder pins the order of the top-level keys.
func TestRecordKeyOrder(t *testing.T) {
	c := newTestCapturer(t)
	line := c.AppendRecord(nil, cases[0].exchange(), &RouteOptions{}, fullSettings(t))
	want := []string{"v", "id", "time", "kind", "stream", "route", "method", "path", "status", "latency_us", "ttfb_us",
		"caller", "model", "operation", "input", "output", "rationale", "attributes", "usage", "request_sha256",
		"response_sha256", "truncated", "flags", "redactions", "rules", "error"}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.Token() // {
	var got []string
	for dec.More() {
		k, _ := dec.Token()
		got = append(got, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("keys %v\nwant %v", got, want)
	}
}

// TestStreamedEqualsPlain: a streamed answer's record holds the same
// output and usage as the non-streamed answer's.
func TestStreamedEqualsPlain(t *testing.T) {
	c := newTestCapturer(t)
	s := fullSettings(t)
	plain := exchangeCase{method: "POST", uri: "/v1/chat/completions", req: `{"model":"m"}`,
		resp: `{"id":"c","object":"chat.completion","created":1,"model":"m-1","system_fingerprint":"fp","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`}
	streamed := plain
	streamed.respHeaders = [][2]string{sseCT}
	streamed.resp = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m-1\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n" +
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m-1\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there.\"},\"finish_reason\":\"stop\"}]}\n\n" +
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n" +
		"data: [DONE]\n\n"
	a := c.Build(plain.exchange(), nil, s)
	b := c.Build(streamed.exchange(), nil, s)
	var oa, ob any
	json.Unmarshal(a.Output, &oa)
	json.Unmarshal(b.Output, &ob)
	ja, _ := json.Marshal(oa)
	jb, _ := json.Marshal(ob)
	if string(ja) != string(jb) || a.Usage != b.Usage || a.Model != b.Model {
		t.Errorf("plain   %s %+v %+v\nstreamed %s %+v %+v", ja, a.Usage, a.Model, jb, b.Usage, b.Model)
	}
}

// TestRedactionAcrossSSEChunks: a value split over two streamed events is
// redacted in the reassembled output, whichever detector finds it.
func TestRedactionAcrossSSEChunks(t *testing.T) {
	const pemKey = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n" +
		"aFDrBz9vFqU4yTz7wq0qXEuh4nbVrhQvn2kY+0Y1nXr0QnQ==\n-----END RSA PRIVATE KEY-----"
	c := newTestCapturer(t)
	for _, tt := range []struct {
		typ, value string
		split      int      // the value's bytes in the first event
		visible    []string // pieces of the value no record may show either
	}{
		{DetectEmail, "jane.doe@example.com", 7, nil},
		{DetectPhone, "+1 415 555 0132", 11, []string{"555 0132"}},
		{DetectCard, "5555 5555 5555 4444", 10, []string{"5555 4444"}},
		{DetectSSN, "123-45-6789", 6, []string{"45-6789"}},
		{DetectIBAN, "DE89 3704 0044 0532 0130 00", 12, []string{"0532 0130"}},
		{DetectIP, "203.0.113.195", 6, []string{"113.195"}},
		{DetectSecret, "AKIAIOSFODNN7EXAMPLE", 8, []string{"ODNN7EXAMPLE"}},
		{DetectSecret, pemKey, 60, []string{"MIIEowIBAAKCAQEA", "aFDrBz9vFqU4"}},
	} {
		t.Run(tt.typ+"/"+tt.value[:min(len(tt.value), 12)], func(t *testing.T) {
			chunk := func(content, finish string) string {
				var b []byte
				b = append(b, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":`...)
				b = appendString(b, content)
				b = append(b, `},"finish_reason":`...)
				b = append(b, finish...)
				return string(append(b, "}]}\n\n"...))
			}
			tc := exchangeCase{method: "POST", uri: "/v1/chat/completions", req: `{"model":"m","stream":true}`,
				respHeaders: [][2]string{sseCT},
				resp: chunk("Found this: "+tt.value[:tt.split], "null") +
					chunk(tt.value[tt.split:]+" in the file.", `"stop"`) +
					"data: [DONE]\n\n"}
			line := c.AppendRecord(nil, tc.exchange(), nil, fullSettings(t))
			if !json.Valid(line) {
				t.Fatalf("record is not valid JSON:\n%s", line)
			}
			var rec struct {
				Output []struct {
					Message struct{ Content string }
				}
				Redactions []Redaction
			}
			if err := json.Unmarshal(line, &rec); err != nil || len(rec.Output) != 1 {
				t.Fatalf("output not reassembled (%v):\n%s", err, line)
			}
			got := rec.Output[0].Message.Content
			if !strings.HasPrefix(got, "Found this: [REDACTED:"+tt.typ+":") || !strings.HasSuffix(got, "] in the file.") {
				t.Errorf("content %q, want the whole value replaced by a %s tag", got, tt.typ)
			}
			for _, leak := range append([]string{tt.value, tt.value[:tt.split], tt.value[tt.split:]}, tt.visible...) {
				if strings.Contains(got, leak) {
					t.Errorf("%q survived redaction: %q", leak, got)
				}
			}
			want := Redaction{Where: "output[0].message.content", Type: tt.typ}
			if len(rec.Redactions) != 1 || rec.Redactions[0] != want {
				t.Errorf("redactions %+v, want [%+v]", rec.Redactions, want)
			}
		})
	}
}

func BenchmarkCaptureChat2KB(b *testing.B) {
	c := newTestCapturer(b)
	s := fullSettings(b)
	tc := cases[0]
	tc.req = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You review loan applications."},{"role":"user","content":"` + strings.Repeat("Applicant income and debt history follows. ", 40) + `"}]}`
	ex := tc.exchange()
	b.SetBytes(ex.RequestBody.Size + ex.ResponseBody.Size)
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = c.AppendRecord(buf[:0], ex, nil, s)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkCaptureStream20Chunks(b *testing.B) {
	c := newTestCapturer(b)
	s := fullSettings(b)
	var sse strings.Builder
	for i := 0; i < 20; i++ {
		sse.WriteString("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token text \"},\"finish_reason\":null}]}\n\n")
	}
	sse.WriteString("data: [DONE]\n\n")
	tc := exchangeCase{method: "POST", uri: "/v1/chat/completions", req: `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}]}`,
		respHeaders: [][2]string{sseCT}, resp: sse.String()}
	ex := tc.exchange()
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = c.AppendRecord(buf[:0], ex, nil, s)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// TestUnrecognizedAnswersKept: an answer the profile does not recognize (an
// API error object, an HTML error page) is recorded whole, not lost.
func TestUnrecognizedAnswersKept(t *testing.T) {
	c := newTestCapturer(t)
	for _, tc := range []exchangeCase{
		{method: "POST", uri: "/v1/chat/completions", req: `{"model":"gpt-4o"}`, status: 401,
			resp: `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`},
		{method: "POST", uri: "/v1/messages", req: `{"model":"claude"}`, status: 529,
			resp: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
		{method: "POST", uri: "/v1/chat/completions", req: `{"model":"gpt-4o"}`, status: 502, resp: `<html>Bad Gateway</html>`},
	} {
		rec := c.Build(tc.exchange(), nil, fullSettings(t))
		if !bytes.Contains(rec.Output, []byte("rror")) && !bytes.Contains(rec.Output, []byte("Bad Gateway")) && !bytes.Contains(rec.Output, []byte("Overloaded")) {
			t.Errorf("%s %d: output %s, want the answer", tc.uri, tc.status, rec.Output)
		}
	}
}

// TestInvalidUTF8InsideJSON: JSON whose strings hold invalid UTF-8 is
// recorded as JSON with U+FFFD in their place, and flagged.
func TestInvalidUTF8InsideJSON(t *testing.T) {
	c := newTestCapturer(t)
	tc := exchangeCase{method: "POST", uri: "/v1/chat/completions",
		req:  "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"caf\xe9 \xff\"}]}",
		resp: `{"choices":[]}`}
	line := c.AppendRecord(nil, tc.exchange(), nil, &Settings{Input: true, Output: true})
	if !utf8.Valid(line) || !json.Valid(line) {
		t.Fatalf("record is not valid UTF-8 JSON:\n%q", line)
	}
	if !bytes.Contains(line, []byte(`"caf\ufffd \ufffd"`)) && !bytes.Contains(line, []byte("caf\uFFFD \uFFFD")) {
		t.Errorf("invalid bytes not replaced:\n%s", line)
	}
	if !bytes.Contains(line, []byte(`"invalid_utf8"`)) {
		t.Errorf("no invalid_utf8 flag:\n%s", line)
	}

	// Redacted, the repaired JSON is redacted once: one redaction each.
	tc.req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"caf\xe9 a@b.co\"}]}"
	rec := c.Build(tc.exchange(), nil, fullSettings(t))
	line = rec.AppendJSON(nil)
	if !utf8.Valid(line) || !json.Valid(line) || !slices.Contains(rec.Flags, FlagInvalidUTF8) {
		t.Fatalf("record is not valid UTF-8 JSON with the flag:\n%q", line)
	}
	if len(rec.Redactions) != 1 || bytes.Contains(line, []byte("a@b.co")) || !bytes.Contains(line, []byte("caf\uFFFD [REDACTED:email:")) {
		t.Errorf("redactions %v, want one email, replaced:\n%s", rec.Redactions, line)
	}
}

// TestDeepJSONRedacted: JSON nested deeper than the redactor walks is
// still redacted, as text, rather than recorded in clear.
func TestDeepJSONRedacted(t *testing.T) {
	deep := strings.Repeat("[", redactMaxDepth+1) + strings.Repeat("]", redactMaxDepth+1)
	tc := exchangeCase{method: "POST", uri: "/score",
		req:   `{"q":"card 4111 1111 1111 1111","group":{"x":` + deep + `},"deep":` + deep + `}`,
		resp:  `{"ok":true}`,
		route: RouteOptions{Extract: Extract{Attributes: map[string]string{"group": "request.group"}}}}
	rec := newTestCapturer(t).Build(tc.exchange(), &tc.route, fullSettings(t))
	line := rec.AppendJSON(nil)
	if !json.Valid(line) {
		t.Fatalf("record is not valid JSON:\n%.300s", line)
	}
	if bytes.Contains(line, []byte("4111 1111 1111 1111")) {
		t.Errorf("the card number reached the record")
	}
	if len(rec.Input) == 0 || rec.Input[0] != '"' || rec.Attributes != nil {
		t.Errorf("input %.40s, attributes %.40s; want text and none", rec.Input, rec.Attributes)
	}
}
