package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startProxy serves a bare fasthttp reverse proxy to upstream that sleeps
// delay before each request, and an admin API whose counters move with the
// requests it proxied: 10 allocations and one 300-byte trail record each,
// plus 1,000 allocations per scrape, which the harness must take off.
func startProxy(t *testing.T, upstream string, delay time.Duration) (proxyURL, metricsURL string) {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	hc := &fasthttp.HostClient{
		Addr: u.Host,
		// fasthttp's default dialer starts a process-wide DNS cache
		// cleaner that never exits.
		Dial:                          func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, dialTimeout) },
		StreamResponseBody:            true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		MaxIdemponentCallAttempts:     1,
		// The client's connection cleaner sleeps this long before it
		// notices there is nothing left to clean; goleak waits for it.
		MaxIdleConnDuration: 100 * time.Millisecond,
	}
	var proxied, scrapes atomic.Int64
	srv := &fasthttp.Server{
		NoDefaultServerHeader: true, NoDefaultDate: true, NoDefaultContentType: true,
		DisableHeaderNamesNormalizing: true, CloseOnShutdown: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			time.Sleep(delay)
			proxied.Add(1)
			resp := fasthttp.AcquireResponse()
			if err := hc.Do(&ctx.Request, resp); err != nil {
				fasthttp.ReleaseResponse(resp)
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
				return
			}
			resp.Header.CopyTo(&ctx.Response.Header)
			ctx.SetBodyStream(&releasingBody{resp}, resp.Header.ContentLength())
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shut down proxy: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve proxy: %v", err)
		}
		hc.CloseIdleConnections()
	})
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, s := proxied.Load(), scrapes.Add(1)
		fmt.Fprintf(w, "# TYPE go_memstats_mallocs_total counter\ngo_memstats_mallocs_total %d\n", 10*n+1000*s)
		fmt.Fprintf(w, "auditgate_trail_records_total{stream=\"a\"} %d\nauditgate_trail_records_total{stream=\"b\"} 0\n", n)
		fmt.Fprintf(w, "auditgate_trail_record_bytes_total %d\n", 300*n)
	}))
	t.Cleanup(admin.Close)
	return "http://" + ln.Addr().String(), admin.URL + "/metrics"
}

// releasingBody streams an upstream answer's body and releases the answer
// when the server closes it after writing.
type releasingBody struct{ resp *fasthttp.Response }

func (b *releasingBody) Read(p []byte) (int, error) {
	if r := b.resp.BodyStream(); r != nil {
		return r.Read(p)
	}
	return 0, io.EOF
}

func (b *releasingBody) Close() error {
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	return err
}

// TestAddedLatency puts a proxy that sleeps 1 ms beside the direct path to
// the same upstream: the harness must see about 1 ms added at the median,
// in plain and streamed answers alike.
func TestAddedLatency(t *testing.T) {
	mock := startMock(t, MockOptions{ResponseSize: DefaultResponseSize, StreamChunks: 5, ChunkDelay: 5 * time.Millisecond})
	proxyURL, metricsURL := startProxy(t, mock.URL(), time.Millisecond)
	var progress bytes.Buffer
	rep, err := Run(t.Context(), Options{
		Targets: []Target{
			{Name: "direct", URL: mock.URL()},
			{Name: "proxy", URL: proxyURL, PID: os.Getpid(), Metrics: metricsURL},
		},
		Rates:          []int{100},
		Duration:       2 * time.Second,
		Slice:          500 * time.Millisecond,
		Warmup:         200 * time.Millisecond,
		Saturation:     300 * time.Millisecond,
		Concurrency:    4,
		StreamDuration: time.Second,
		Progress:       &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\n%s", progress.String(), text.String())

	direct, proxy := rep.Steps[0].Results[0], rep.Steps[0].Results[1]
	for _, r := range []Result{direct, proxy} {
		if r.Sent != 200 || r.OK != 200 || r.Errors != 0 {
			t.Errorf("%s: sent %d, %d ok, %d errors (%s), want 200 ok", r.Target, r.Sent, r.OK, r.Errors, r.Error)
		}
		if r.Achieved < 80 || r.Achieved > 105 {
			t.Errorf("%s: achieved %.1f requests/s at 100/s", r.Target, r.Achieved)
		}
	}
	if added := proxy.Latency.P50 - direct.Latency.P50; added < 700*time.Microsecond || added > 2500*time.Microsecond {
		t.Errorf("added p50 %v (direct %v, proxy %v), want about 1ms", added, direct.Latency.P50, proxy.Latency.P50)
	}

	if direct.CPUPer1000 != 0 || direct.AllocsPerRequest != 0 || direct.TrailRecordsPerSec != 0 {
		t.Errorf("direct has no PID or metrics, yet CPU %v, allocs %v, records %v", direct.CPUPer1000, direct.AllocsPerRequest, direct.TrailRecordsPerSec)
	}
	if proxy.CPUPer1000 <= 0 {
		t.Errorf("proxy CPU s/1000 %v, want the test process's share", proxy.CPUPer1000)
	}
	if proxy.AllocsPerRequest < 9.5 || proxy.AllocsPerRequest > 10.5 {
		t.Errorf("proxy allocs/request %v, want 10 (the scrapes' own taken off)", proxy.AllocsPerRequest)
	}
	if proxy.TrailBytesPerRecord != 300 {
		t.Errorf("proxy bytes/record %v, want 300", proxy.TrailBytesPerRecord)
	}
	if proxy.TrailRecordsPerSec < 70 || proxy.TrailRecordsPerSec > 105 {
		t.Errorf("proxy trail records/s %v, want about 100", proxy.TrailRecordsPerSec)
	}

	if len(rep.Saturation) != 2 || rep.Saturation[0].OK == 0 || rep.Saturation[1].OK == 0 {
		t.Errorf("saturation %+v, want both targets answered", rep.Saturation)
	}

	if len(rep.Stream) != 2 {
		t.Fatalf("%d stream results, want 2", len(rep.Stream))
	}
	sd, sp := rep.Stream[0], rep.Stream[1]
	for _, s := range rep.Stream {
		// 5 content chunks, a role and a final chunk and [DONE]: 7 gaps,
		// 4 of them the chunk delay.
		if s.OK != 20 || s.Gaps != 7*s.OK {
			t.Errorf("%s: %d streams ok, %d gaps (%s), want 20 and 140", s.Target, s.OK, s.Gaps, s.Error)
		}
	}
	if added := sp.TTFB.P50 - sd.TTFB.P50; added < 500*time.Microsecond || added > 5*time.Millisecond {
		t.Errorf("added TTFB p50 %v (direct %v, proxy %v), want about 1ms", added, sd.TTFB.P50, sp.TTFB.P50)
	}
	if d := sp.MeanGap - sd.MeanGap; d < -time.Millisecond || d > time.Millisecond || sd.MeanGap < 2*time.Millisecond {
		t.Errorf("mean gap direct %v, proxy %v, want both about 20ms/7", sd.MeanGap, sp.MeanGap)
	}

	for _, want := range []string{"warmup     direct  20 ok", "100/s      proxy   p50 ", "saturation direct  ", "streaming  proxy   TTFB"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Target{Name: "direct", URL: "http://127.0.0.1:1"}
	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{"zero targets", Options{}, []string{"Targets: at least one target is needed"}},
		{"targets", Options{Targets: []Target{
			{URL: "http://a:1"},
			ok,
			{Name: "direct", URL: "ftp://x"},
			{Name: "c", URL: "http://h:1/p?q=1", PID: -1, Metrics: "h:9/metrics"},
		}}, []string{
			"Targets[0].Name: must not be empty",
			`Targets[2].Name: "direct" is also the name of Targets[1]`,
			`Targets[2].URL: "ftp://x" is not an http or https URL`,
			`Targets[3].URL: "http://h:1/p?q=1" is not a base URL such as http://127.0.0.1:8080`,
			"Targets[3].PID: must not be negative",
			`Targets[3].Metrics: "h:9/metrics" is not an http or https URL`,
		}},
		{"mix", Options{Targets: []Target{ok}, Mix: []Request{{Path: "v1"}, {Name: "b", Path: "/", Weight: -1}}}, []string{
			"Mix[0].Name: must not be empty",
			`Mix[0].Path: "v1" does not start with /`,
			"Mix[1].Weight: must not be negative",
			"Mix: no request has a positive Weight",
		}},
		{"numbers", Options{Targets: []Target{ok}, Rates: []int{10, 0}, Duration: -1, Slice: -1, Saturation: -1, Timeout: -1,
			Concurrency: -1, Connections: -1, StreamRate: -1}, []string{
			"Rates[1]: 0 is not a positive rate",
			"Duration: -1ns must not be negative",
			"Slice: -1ns must not be negative",
			"Saturation: -1ns must not be negative",
			"Timeout: -1ns must not be negative",
			"Concurrency: -1 must not be negative",
			"Connections: -1 must not be negative",
			"StreamRate: -1 must not be negative",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Validate: %v, want ErrInvalidOptions", err)
			}
			got := strings.Split(strings.TrimPrefix(err.Error(), ErrInvalidOptions.Error()+": "), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	if err := (Options{Targets: []Target{ok}}).Validate(); err != nil {
		t.Errorf("zero options with a target: %v", err)
	}
	if _, err := Run(t.Context(), Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("Run with zero options: %v, want ErrInvalidOptions", err)
	}
}

func TestChatBody(t *testing.T) {
	srv := startMock(t, MockOptions{})
	hc := httpClient(t)
	for _, size := range []int{0, 100, 2048, 2049, 5000} {
		for _, stream := range []bool{false, true} {
			b := makeChatBody(size, stream)
			var v struct {
				Model    string `json:"model"`
				Stream   bool   `json:"stream"`
				Messages []struct{ Role, Content string }
			}
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("size %d: %v: %s", size, err, b)
			}
			if len(b) != size && size > 200 {
				t.Errorf("size %d, stream %v: %d bytes", size, stream, len(b))
			}
			if v.Stream != stream || len(v.Messages) != 2 {
				t.Errorf("size %d: %+v", size, v)
			}
			resp, _ := call(t, hc, "POST", srv.URL()+"/v1/chat/completions", string(b), nil)
			if resp.StatusCode != 200 {
				t.Errorf("size %d: the mock answered %d", size, resp.StatusCode)
			}
		}
	}
}

func TestSchedule(t *testing.T) {
	mix := []Request{{Name: "a", Weight: 3}, {Name: "s", Stream: true}, {Name: "b", Weight: 1}, {Name: "t", Stream: true, Weight: 2}}
	open := schedule(mix, false)
	counts := map[string]int{}
	for _, i := range open {
		counts[mix[i].Name]++
	}
	if len(open) != 6 || counts["a"] != 3 || counts["b"] != 1 || counts["t"] != 2 {
		t.Errorf("open-loop schedule %v, want a×3, b×1, t×2", open)
	}
	// Smooth: the heaviest request is never sent three times in a row.
	for i := range open {
		if open[i] == 0 && open[(i+1)%6] == 0 && open[(i+2)%6] == 0 {
			t.Errorf("schedule %v bunches a", open)
		}
	}
	if got := fmt.Sprint(schedule(mix, true)); got != "[3 1 3]" {
		t.Errorf("stream schedule %s, want [3 1 3]", got)
	}
	if s := schedule([]Request{{Name: "a"}}, true); s != nil {
		t.Errorf("stream schedule without stream requests: %v", s)
	}
	lopsided := schedule([]Request{{Name: "a", Weight: 1e6}, {Name: "b", Weight: 1}}, false)
	if n := strings.Count(fmt.Sprint(lopsided), "1"); len(lopsided) != 1000 || n != 1 {
		t.Errorf("schedule of a lopsided mix has %d entries, %d of b; want 999 of a and 1 of b", len(lopsided), n)
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		err        bool
	}{
		{"plain", "1234 (auditgate) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 8 0 100 0 0", 3 * time.Second, false},
		{"spaces and parens in name", "7 (a) b) (c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond, false},
		{"short", "7 (a) R 1 2", 0, true},
		{"no name", "7 a R", 0, true},
		{"bad ticks", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 4 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestProcessCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 50*time.Millisecond {
		t.Errorf("100ms of spinning counted as %v of CPU", d)
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func TestParseProm(t *testing.T) {
	in := `# HELP go_memstats_mallocs_total Total number of mallocs.
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 1.5e+06
go_memstats_mallocs_total_other 7
auditgate_trail_records_total{stream="a",note="x}y \"z\" {"} 10
auditgate_trail_records_total{stream="b"} 5 1700000000000
auditgate_trail_records_total{stream="c" 9
auditgate_trail_records_total{stream="d"}
auditgate_trail_records_total NaNx
  auditgate_trail_records_total{} 1
`
	got, err := parseProm(strings.NewReader(in), scrapedMetrics)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{metricMallocs: 1.5e6, metricRecords: 16}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// FuzzParseProm checks that no input makes the parser fail or invent a
// metric it was not asked for.
func FuzzParseProm(f *testing.F) {
	f.Add("auditgate_trail_records_total{a=\"\\\"}\"} 3\n")
	f.Add("go_memstats_mallocs_total +Inf\n#\n{")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseProm(strings.NewReader(in), []string{metricRecords})
		if err != nil && !strings.Contains(err.Error(), "token too long") {
			t.Fatalf("parse: %v", err)
		}
		for k := range got {
			if k != metricRecords {
				t.Errorf("unasked metric %q", k)
			}
		}
	})
}

func TestPrepare(t *testing.T) {
	tests := []struct {
		name   string
		q      Request
		header map[string]string
	}{
		{"defaults", Request{Path: "/v1/embeddings", Body: []byte(`{}`)},
			map[string]string{"User-Agent": "auditgate-bench", "Content-Type": "application/json"}},
		{"given", Request{Method: "PUT", Path: "/x", Body: []byte("a=1"), Header: map[string]string{"user-agent": "me", "content-type": "text/plain"}},
			map[string]string{"User-Agent": "me", "Content-Type": "text/plain"}},
		{"no body", Request{Method: "GET", Path: "/v1/models"},
			map[string]string{"User-Agent": "auditgate-bench", "Content-Type": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prepare(tt.q, "http://h:1/prefix")
			var req fasthttp.Request
			p.fill(&req)
			if want := orDefault(tt.q.Method, "POST"); string(req.Header.Method()) != want {
				t.Errorf("method %s, want %s", req.Header.Method(), want)
			}
			if got := req.URI().String(); got != "http://h:1/prefix"+tt.q.Path {
				t.Errorf("URI %s", got)
			}
			for k, v := range tt.header {
				if got := string(req.Header.Peek(k)); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}
