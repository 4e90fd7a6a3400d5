package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp keeps one goroutine per process to refresh its Date header.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// A fasthttp server's idle-worker cleaner sleeps out its 10 s period
		// before it sees that Serve stopped; it holds nothing and then exits.
		// A server that never stopped still shows up through its Serve
		// goroutine.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	)
}

// startMock serves a mock for one test and closes it when the test ends.
func startMock(t *testing.T, opts MockOptions) *MockServer {
	t.Helper()
	srv, err := StartMock(t.Context(), "127.0.0.1:0", opts)
	if err != nil {
		t.Fatalf("start mock: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close mock: %v", err)
		}
	})
	return srv
}

// httpClient returns a client with its own transport whose idle connections
// are closed when the test ends, so that goleak sees no stray goroutines.
func httpClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// call sends one request and returns the answer with its whole body.
func call(t *testing.T, hc *http.Client, method, url, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, url, err)
	}
	return resp, b
}

// sseEvent is one server-sent event and when the client read its end.
type sseEvent struct {
	data string
	at   time.Time
}

// readEvents reads server-sent events as they arrive.
func readEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var events []sseEvent
	var data strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			events = append(events, sseEvent{data: data.String(), at: time.Now()})
			data.Reset()
			continue
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data.WriteString(d)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read events: %v", err)
	}
	return events
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

func TestStreamIsIncremental(t *testing.T) {
	const chunkDelay = 200 * time.Millisecond
	tests := []struct {
		name    string
		opts    MockOptions
		path    string
		body    string
		header  map[string]string
		content string // marks a content event
	}{
		{"chat", MockOptions{StreamChunks: 3, ChunkDelay: chunkDelay}, "/v1/chat/completions",
			`{"model":"gpt-4o-mini","stream":true,"messages":[]}`, nil, `"delta":{"content":`},
		{"messages", MockOptions{StreamChunks: 3, ChunkDelay: chunkDelay}, "/v1/messages",
			`{"model":"claude-haiku-4-5","stream":true,"max_tokens":9,"messages":[]}`, nil, `"content_block_delta"`},
		{"chunk delay hook", MockOptions{StreamChunks: 3}, "/v1/chat/completions",
			`{"model":"gpt-4o-mini","stream":true,"messages":[]}`, map[string]string{"X-Mock-Chunk-Delay": chunkDelay.String()}, `"delta":{"content":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startMock(t, tt.opts)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := httpClient(t).Do(req)
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
				t.Errorf("Content-Type %q, Content-Length %d, Transfer-Encoding %v; want an unsized event stream", ct, resp.ContentLength, resp.TransferEncoding)
			}
			events := readEvents(t, resp.Body)
			var content []sseEvent
			for _, e := range events {
				if strings.Contains(e.data, tt.content) {
					content = append(content, e)
				}
			}
			if len(content) != 3 {
				t.Fatalf("%d content events, want 3", len(content))
			}
			// The server sleeps chunkDelay between content events. Had it
			// buffered the stream, they would all arrive together, with the
			// first event.
			if gap := content[2].at.Sub(events[0].at); gap < 2*chunkDelay*3/4 {
				t.Errorf("last content event came %v after the first event, want about %v", gap, 2*chunkDelay)
			}
			for i := 1; i < len(content); i++ {
				if gap := content[i].at.Sub(content[i-1].at); gap < chunkDelay/2 {
					t.Errorf("content event %d came %v after the one before, want about %v", i, gap, chunkDelay)
				}
			}
		})
	}
}

func TestOIPInfer(t *testing.T) {
	srv := startMock(t, MockOptions{})
	hc := httpClient(t)
	type output struct {
		Name     string    `json:"name"`
		Shape    []int     `json:"shape"`
		Datatype string    `json:"datatype"`
		Data     []float64 `json:"data"`
	}
	type inferResponse struct {
		ModelName    string   `json:"model_name"`
		ModelVersion string   `json:"model_version"`
		ID           *string  `json:"id"`
		Outputs      []output `json:"outputs"`
	}
	tests := []struct {
		name, path, body   string
		wantName, wantVers string
		wantID             string // "" means absent
		wantK              int
	}{
		{"latest", "/v2/models/iris/infer",
			`{"id":"42","inputs":[{"name":"input0","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`, "iris", "1", "42", 4},
		{"versioned", "/v2/models/iris/versions/3/infer",
			`{"id":"a\"b","inputs":[{"name":"input0","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]}`, "iris", "3", "a\"b", 4},
		{"no id", "/v2/models/fraud-v2/infer",
			`{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["txn"]}]}`, "fraud-v2", "1", "", 1},
		{"empty data", "/v2/models/m/infer",
			`{"inputs":[{"name":"x","shape":[0],"datatype":"FP32","data":[]}]}`, "m", "1", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, hc, http.MethodPost, srv.URL()+tt.path, tt.body, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var got inferResponse
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if got.ModelName != tt.wantName || got.ModelVersion != tt.wantVers {
				t.Errorf("model %q version %q, want %q %q", got.ModelName, got.ModelVersion, tt.wantName, tt.wantVers)
			}
			if (got.ID == nil) != (tt.wantID == "") || got.ID != nil && *got.ID != tt.wantID {
				t.Errorf("id = %v, want %q", got.ID, tt.wantID)
			}
			if len(got.Outputs) != 1 {
				t.Fatalf("%d outputs, want 1", len(got.Outputs))
			}
			o := got.Outputs[0]
			if o.Name != "output0" || o.Datatype != "FP32" || len(o.Shape) != 2 || o.Shape[0] != 1 || o.Shape[1] != tt.wantK || len(o.Data) != tt.wantK {
				t.Errorf("output = %+v, want output0 FP32 [1,%d]", o, tt.wantK)
			}
			for _, v := range o.Data {
				if v < 0 || v >= 1 {
					t.Errorf("score %v outside [0, 1)", v)
				}
			}
			_, again := call(t, hc, http.MethodPost, srv.URL()+tt.path, tt.body, nil)
			if !bytes.Equal(body, again) {
				t.Errorf("same request, different answers:\n%s\n%s", body, again)
			}
		})
	}
}

func TestErrorAnswers(t *testing.T) {
	srv := startMock(t, MockOptions{})
	hc := httpClient(t)
	const messagesBody = `{"model":"claude-haiku-4-5","max_tokens":9,"messages":[]}`
	const inferBody = `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		wantStatus               int
		// want maps gjson paths to their raw JSON in the answer.
		want map[string]string
	}{
		{"unknown path", "POST", "/v1/nope", chatBody, nil, 404,
			map[string]string{"error.message": `"Invalid URL (POST /v1/nope)"`, "error.type": `"invalid_request_error"`, "error.param": "null", "error.code": "null"}},
		{"wrong method", "GET", "/v1/chat/completions", "", nil, 404,
			map[string]string{"error.type": `"invalid_request_error"`}},
		{"malformed chat", "POST", "/v1/chat/completions", `{"model":`, nil, 400,
			map[string]string{"error.type": `"invalid_request_error"`, "error.param": "null", "error.code": "null"}},
		{"chat body not an object", "POST", "/v1/chat/completions", `["gpt-4o-mini"]`, nil, 400,
			map[string]string{"error.type": `"invalid_request_error"`}},
		{"empty embeddings body", "POST", "/v1/embeddings", ``, nil, 400,
			map[string]string{"error.type": `"invalid_request_error"`}},
		{"no model", "POST", "/v1/chat/completions", `{"messages":[]}`, nil, 400,
			map[string]string{"error.param": `"model"`}},
		{"no embeddings input", "POST", "/v1/embeddings", `{"model":"text-embedding-3-small"}`, nil, 400,
			map[string]string{"error.param": `"input"`}},
		{"malformed messages", "POST", "/v1/messages", `{"model"`, nil, 400,
			map[string]string{"type": `"error"`, "error.type": `"invalid_request_error"`}},
		{"malformed infer", "POST", "/v2/models/iris/infer", `{`, nil, 400,
			map[string]string{"error": `"We could not parse the JSON body of your request: it must be a JSON object."`}},
		{"infer without inputs", "POST", "/v2/models/iris/infer", `{"id":"1"}`, nil, 400,
			map[string]string{"error": `"inputs must be a non-empty array of tensors"`}},
		{"infer without model name", "POST", "/v2/models//infer", inferBody, nil, 404,
			map[string]string{"error": `"Invalid URL (POST /v2/models/infer)"`}},
		{"status hook, chat", "POST", "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Status": "503"}, 503,
			map[string]string{"error.message": `"Service Unavailable"`, "error.type": `"server_error"`}},
		{"status hook, rate limit", "POST", "/v1/embeddings", `{"model":"m","input":"x"}`, map[string]string{"X-Mock-Status": "429"}, 429,
			map[string]string{"error.type": `"requests"`, "error.code": `"rate_limit_exceeded"`}},
		{"status hook, messages", "POST", "/v1/messages", messagesBody, map[string]string{"X-Mock-Status": "529"}, 529,
			map[string]string{"type": `"error"`, "error.type": `"overloaded_error"`}},
		{"status hook, infer", "POST", "/v2/models/iris/infer", inferBody, map[string]string{"X-Mock-Status": "500"}, 500,
			map[string]string{"error": `"Internal Server Error"`}},
		{"status hook before streaming", "POST", "/v1/chat/completions", `{"model":"m","stream":true}`, map[string]string{"X-Mock-Status": "502"}, 502,
			map[string]string{"error.type": `"server_error"`}},
		{"status hook on unknown path", "GET", "/nope", "", map[string]string{"X-Mock-Status": "401"}, 401,
			map[string]string{"error.code": `"invalid_api_key"`}},
		{"bad status hook", "POST", "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Status": "abc"}, 400,
			map[string]string{"error.message": `"X-Mock-Status must be a status code from 400 to 599"`}},
		{"status hook out of range", "POST", "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Status": "200"}, 400,
			map[string]string{"error.type": `"invalid_request_error"`}},
		{"bad delay hook", "POST", "/v1/messages", messagesBody, map[string]string{"X-Mock-Delay": "soon"}, 400,
			map[string]string{"error.message": `"X-Mock-Delay must be a duration such as 50ms"`}},
		{"models", "GET", "/v1/models", "", nil, 200,
			map[string]string{"object": `"list"`, "data.#": "1", "data.0.object": `"model"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, hc, tt.method, srv.URL()+tt.path, tt.body, tt.header)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" || !json.Valid(body) {
				t.Fatalf("Content-Type %q, body %s; want JSON", ct, body)
			}
			for path, want := range tt.want {
				if got := gjsonRaw(body, path); got != want {
					t.Errorf("%s = %s, want %s in %s", path, got, want, body)
				}
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	srv := startMock(t, MockOptions{})
	resp, body := call(t, httpClient(t), http.MethodGet, srv.URL()+"/healthz", "", nil)
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("healthz: %d %q, want 200 ok", resp.StatusCode, body)
	}
}

func TestDelay(t *testing.T) {
	srv := startMock(t, MockOptions{Delay: 2 * time.Second})
	hc := httpClient(t)
	tests := []struct {
		name     string
		header   string
		atLeast  time.Duration
		lessThan time.Duration
	}{
		{"hook", "50ms", 50 * time.Millisecond, 2 * time.Second},
		{"hook turns the delay off", "0s", 0, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			resp, body := call(t, hc, http.MethodPost, srv.URL()+"/v1/chat/completions", chatBody, map[string]string{"X-Mock-Delay": tt.header})
			took := time.Since(start)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if took < tt.atLeast || took >= tt.lessThan {
				t.Errorf("answer took %v, want at least %v and under %v", took, tt.atLeast, tt.lessThan)
			}
		})
	}
}

func TestRequestsAndIDs(t *testing.T) {
	srv := startMock(t, MockOptions{})
	hc := httpClient(t)
	for i, path := range []string{"/v1/chat/completions", "/nope", "/v1/chat/completions"} {
		resp, body := call(t, hc, http.MethodPost, srv.URL()+path, chatBody, nil)
		seq := strconv.Itoa(i + 1)
		if got := resp.Header.Get("X-Request-Id"); got != "req_mock"+seq {
			t.Errorf("request %d: X-Request-Id %q, want req_mock%s", i, got, seq)
		}
		if resp.StatusCode == 200 && gjsonRaw(body, "id") != `"chatcmpl-mock`+seq+`"` {
			t.Errorf("request %d: id %s, want chatcmpl-mock%s", i, gjsonRaw(body, "id"), seq)
		}
	}
	if got := srv.Mock().Requests(); got != 3 {
		t.Errorf("Requests() = %d, want 3", got)
	}
}

// TestCloseEndsStreams checks that Close does not wait for a slow stream to
// finish, and that a cancelled context stops the server too.
func TestCloseEndsStreams(t *testing.T) {
	for _, viaContext := range []bool{false, true} {
		name := map[bool]string{false: "close", true: "context"}[viaContext]
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			srv, err := StartMock(ctx, "", MockOptions{ChunkDelay: time.Hour})
			if err != nil {
				t.Fatalf("start mock: %v", err)
			}
			hc := httpClient(t)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/v1/chat/completions",
				strings.NewReader(`{"model":"m","stream":true}`))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			defer resp.Body.Close()
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatalf("read first event: %v", err)
			}

			start := time.Now()
			if viaContext {
				cancel()
			}
			if err := srv.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			if took := time.Since(start); took > mockShutdownTimeout/2 {
				t.Errorf("close took %v with a stream open", took)
			}
			if _, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
				t.Errorf("server still accepts connections after close")
			}
			if err := srv.Close(); err != nil {
				t.Errorf("second close: %v", err)
			}
		})
	}
}

func gjsonRaw(body []byte, path string) string {
	return gjson.GetBytes(body, path).Raw
}

// newCtx returns a request context for calling Handler directly.
func newCtx(method, path, body string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.SetBodyString(body)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	return &ctx
}

func TestHandlerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled buffers on purpose")
	}
	m := NewMock(MockOptions{ResponseSize: 2000})
	ctx := newCtx("POST", "/v1/chat/completions", chatBody)
	allocs := testing.AllocsPerRun(200, func() {
		ctx.Response.Reset()
		m.Handler(ctx)
	})
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if allocs > 0 {
		t.Errorf("a plain chat answer costs %v allocations, want 0", allocs)
	}
}

// FuzzHandler checks that whatever the request, the answer is well-formed:
// JSON bodies and every data line of a stream parse as JSON.
func FuzzHandler(f *testing.F) {
	f.Add("POST", "/v1/chat/completions", chatBody)
	f.Add("POST", "/v1/chat/completions", `{"model":"a\u0000\"\\\n\udc00","stream":true,"stream_options":{"include_usage":true}}`)
	f.Add("POST", "/v1/completions", `{"model":"m","stream":true}`)
	f.Add("POST", "/v1/messages", `{"model":"claude","stream":true}`)
	f.Add("POST", "/v1/messages", "{\"model\":\"\xff\xfe\"}")
	f.Add("POST", "/v1/embeddings", `{"model":"e","input":["a",[1,2]],"encoding_format":"base64"}`)
	f.Add("POST", "/v1/embeddings", `{"model":"e","input":{"a":1}}`)
	f.Add("POST", "/v2/models/\x01/versions/\"/infer", `{"id":7,"inputs":[{"data":[[1,[2]],"x",null,{}]}]}`)
	f.Add("GET", "/v1/models", "")
	f.Add("DELETE", "/%ff", "[")
	m := NewMock(MockOptions{StreamChunks: 3})
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if method == "" || strings.ContainsAny(method, " \r\n") {
			return
		}
		ctx := newCtx(method, path, body)
		m.Handler(ctx)
		out := ctx.Response.Body() // drains a stream
		switch ct := string(ctx.Response.Header.ContentType()); ct {
		case "application/json":
			if !json.Valid(out) {
				t.Errorf("invalid JSON answer: %q", out)
			}
		case "text/event-stream":
			for line := range strings.SplitSeq(string(out), "\n") {
				data, ok := strings.CutPrefix(line, "data: ")
				if ok && data != "[DONE]" && !json.Valid([]byte(data)) {
					t.Errorf("invalid JSON event: %q", data)
				}
			}
		case "text/plain; charset=utf-8":
		default:
			t.Errorf("unexpected Content-Type %q", ct)
		}
	})
}

func BenchmarkHandlerChat(b *testing.B) {
	for _, size := range []int{0, 2000} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			m := NewMock(MockOptions{ResponseSize: size})
			ctx := newCtx("POST", "/v1/chat/completions", chatBody)
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Reset()
				m.Handler(ctx)
			}
		})
	}
}

// BenchmarkMockServerChat measures whole requests through a fasthttp server
// and client on an in-memory listener.
func BenchmarkMockServerChat(b *testing.B) {
	m := NewMock(MockOptions{})
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: m.Handler}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	client := &fasthttp.HostClient{
		Addr: "mock",
		Dial: func(string) (net.Conn, error) { return ln.Dial() },
		// The client's connection cleaner sleeps this long before it notices
		// there is nothing left to clean; goleak waits for it to exit.
		MaxIdleConnDuration: 100 * time.Millisecond,
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod("POST")
		req.SetRequestURI("http://mock/v1/chat/completions")
		req.SetBodyString(chatBody)
		for pb.Next() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("chat: %v, status %d", err, resp.StatusCode())
				return
			}
		}
	})
	b.StopTimer()
	client.CloseIdleConnections()
	if err := srv.Shutdown(); err != nil {
		b.Errorf("shut down: %v", err)
	}
	if err := <-served; err != nil {
		b.Errorf("serve: %v", err)
	}
}
