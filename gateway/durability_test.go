package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/policy"
)

// durabilityGateway serves one route per policy of the durability tests,
// in front of an upstream that notes, for every request it receives,
// whether the trail already held its request record.
type durabilityGateway struct {
	*testGateway
	sink *memSink

	mu      sync.Mutex
	seen    []string // X-Audit-Id of each request the upstream received
	bodies  map[string][]byte
	hadReqs map[string]bool // whether the request record came first
}

func startDurabilityGateway(t *testing.T, maxCapture int) *durabilityGateway {
	d := &durabilityGateway{sink: newMemSink(), bodies: map[string][]byte{}, hadReqs: map[string]bool{}}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Audit-Id")
		body, _ := io.ReadAll(r.Body)
		had := false
		d.sink.mu.Lock()
		for _, l := range d.sink.lines {
			if bytes.Contains(l, []byte(`"id":"`+id+`"`)) && bytes.Contains(l, []byte(`"kind":"request"`)) {
				had = true
			}
		}
		d.sink.mu.Unlock()
		d.mu.Lock()
		d.seen = append(d.seen, id)
		d.bodies[id] = body
		d.hadReqs[id] = had
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
	}))
	t.Cleanup(up.Close)
	set, err := policy.Compile(map[string][]policy.Rule{
		"strict": {{Level: policy.LevelFull, Durability: policy.DurabilityStrict}},
		"by-model": {{Match: policy.Match{Models: []string{"secret-*"}}, Level: policy.LevelFull, Durability: policy.DurabilityStrict},
			{Level: policy.LevelFull, OnTrailFailure: policy.FailOpen}},
		"strict-open": {{Level: policy.LevelFull, Durability: policy.DurabilityStrict, OnTrailFailure: policy.FailOpen}},
		"closed":      {{Level: policy.LevelFull}},
		"open":        {{Level: policy.LevelFull, OnTrailFailure: policy.FailOpen}},
	})
	if err != nil {
		t.Fatal(err)
	}
	capt, err := capture.NewCapturer(capture.CapturerOptions{Stream: "t",
		Identity: capture.IdentityOptions{Secret: []byte("0123456789abcdef0123456789abcdef")}})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Forwarded: DefaultForwarded}
	for _, name := range []string{"strict", "strict-open", "closed", "open", "by-model"} {
		opts.Routes = append(opts.Routes, Route{Name: name, PathPrefix: "/" + name + "/", StripPrefix: "/" + name,
			Upstream: up.URL, Policy: name, MaxCapture: maxCapture})
	}
	// Strict, with no limit on the request body but the capture limit.
	opts.Routes = append(opts.Routes, Route{Name: "unlimited", PathPrefix: "/unlimited/", StripPrefix: "/unlimited",
		Upstream: up.URL, Policy: "strict", MaxCapture: maxCapture, MaxRequestBody: -1})
	opts.Audit = &AuditOptions{Capturer: capt, Policies: set, Trail: d.sink}
	d.testGateway = startGateway(t, opts)
	return d
}

func (d *durabilityGateway) post(t *testing.T, route string, body io.Reader, size int64) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.URL+"/"+route+"/v1/chat/completions", body)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Audit-Id", "forged-by-the-client")
	resp, err := rawClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (d *durabilityGateway) upstreamSaw(id string) (seen, hadRequestRecord bool, body []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.seen {
		if s == id {
			return true, d.hadReqs[id], d.bodies[id]
		}
	}
	return false, false, nil
}

const chatBody = `{"model":"m","messages":[{"role":"user","content":"Approve the loan of applicant 17?"}]}`

func TestStrictRecordsTheRequestBeforeForwarding(t *testing.T) {
	d := startDurabilityGateway(t, 64<<10)
	// A small body, and a chunked one over the 64 KiB read before
	// forwarding but within the route's capture limit.
	big := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("a", 60<<10) + `"}]}`
	for _, c := range []struct {
		name string
		body string
		size int64
	}{{"declared", chatBody, int64(len(chatBody))}, {"chunked", big, -1}} {
		t.Run(c.name, func(t *testing.T) {
			resp, _ := d.post(t, "strict", strings.NewReader(c.body), c.size)
			id := resp.Header.Get("X-Audit-Id")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			seen, had, body := d.upstreamSaw(id)
			if !seen {
				t.Fatalf("the upstream did not see audit id %s (the client's forged id must be replaced)", id)
			}
			if !had {
				t.Error("the upstream got the request before its request record was in the trail")
			}
			if string(body) != c.body {
				t.Errorf("the upstream got %d bytes, the client sent %d", len(body), len(c.body))
			}
			req, _ := d.sink.next(t)
			inf, _ := d.sink.next(t)
			if req["kind"] != "request" || inf["kind"] != "inference" || req["id"] != id || inf["id"] != id {
				t.Fatalf("records %v then %v, want request then inference with id %s", req["kind"], inf["kind"], id)
			}
			if req["output"] != nil || req["response_sha256"] != nil || req["input"] == nil {
				t.Errorf("request record: input %v output %v response_sha256 %v", req["input"] != nil, req["output"], req["response_sha256"])
			}
			if req["request_sha256"] != inf["request_sha256"] {
				t.Errorf("request hash %v in the request record, %v in the inference record", req["request_sha256"], inf["request_sha256"])
			}
		})
	}
}

// TestStrictByModelReadsStreamedBodies: a strict rule that matches on the
// model applies to a chunked body too, which is read for its model first;
// with the trail down, the model's closed rule refuses it.
func TestStrictByModelReadsStreamedBodies(t *testing.T) {
	d := startDurabilityGateway(t, 0)
	body := `{"model":"secret-7","messages":[{"role":"user","content":"` + strings.Repeat("b", 100<<10) + `"}]}`
	resp, _ := d.post(t, "by-model", strings.NewReader(body), -1)
	seen, had, got := d.upstreamSaw(resp.Header.Get("X-Audit-Id"))
	if resp.StatusCode != 200 || !seen || !had || string(got) != body {
		t.Fatalf("chunked body for a strict model: status %d, forwarded %v, request record first %v, body intact %v", resp.StatusCode, seen, had, string(got) == body)
	}
	// Another model falls to the async, open rule: no request record.
	other := strings.Replace(body, "secret-7", "public-1", 1)
	resp, _ = d.post(t, "by-model", strings.NewReader(other), -1)
	if seen, had, _ := d.upstreamSaw(resp.Header.Get("X-Audit-Id")); !seen || had {
		t.Errorf("chunked body for an async model: forwarded %v, request record %v", seen, had)
	}
	d.sink.mu.Lock()
	d.sink.down = errors.New("trail cannot write its spool")
	d.sink.mu.Unlock()
	resp, _ = d.post(t, "by-model", strings.NewReader(body), -1)
	if seen, _, _ := d.upstreamSaw(resp.Header.Get("X-Audit-Id")); resp.StatusCode != http.StatusServiceUnavailable || seen {
		t.Errorf("strict closed model with the trail down: status %d, forwarded %v", resp.StatusCode, seen)
	}
	resp, _ = d.post(t, "by-model", strings.NewReader(other), -1)
	if resp.StatusCode != 200 {
		t.Errorf("open model with the trail down: status %d", resp.StatusCode)
	}
}

// TestStrictUnlimitedRoute: a route without a body limit still takes a
// streamed strict body up to the capture limit.
func TestStrictUnlimitedRoute(t *testing.T) {
	d := startDurabilityGateway(t, 64<<10)
	resp, _ := d.post(t, "unlimited", strings.NewReader(chatBody), -1)
	if seen, had, _ := d.upstreamSaw(resp.Header.Get("X-Audit-Id")); resp.StatusCode != 200 || !seen || !had {
		t.Errorf("chunked strict body on an unlimited route: status %d, forwarded %v, request record first %v", resp.StatusCode, seen, had)
	}
}

func TestStrictRefusesABodyOverTheCaptureLimit(t *testing.T) {
	d := startDurabilityGateway(t, 8<<10)
	for _, size := range []int64{20 << 10, -1} {
		body := strings.Repeat("x", 20<<10)
		resp, text := d.post(t, "strict", strings.NewReader(body), size)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text, "max_capture") {
			t.Errorf("size %d: status %d %s, want 413 naming max_capture", size, resp.StatusCode, text)
		}
		if seen, _, _ := d.upstreamSaw(resp.Header.Get("X-Audit-Id")); seen {
			t.Errorf("size %d: forwarded a body strict durability could not record", size)
		}
	}
	// Async routes are not limited by the capture cap.
	if resp, _ := d.post(t, "closed", strings.NewReader(strings.Repeat("x", 20<<10)), 20<<10); resp.StatusCode != 200 {
		t.Errorf("async route: status %d", resp.StatusCode)
	}
}

func TestTrailFailureClosedAndOpen(t *testing.T) {
	d := startDurabilityGateway(t, 0)
	d.sink.mu.Lock()
	d.sink.down = errors.New("trail cannot write its spool: no space left on device")
	d.sink.mu.Unlock()
	for _, c := range []struct {
		route   string
		forward bool
	}{{"closed", false}, {"strict", false}, {"open", true}, {"strict-open", true}} {
		before := testutil.ToFloat64(d.m.strictErrors)
		resp, text := d.post(t, c.route, strings.NewReader(chatBody), int64(len(chatBody)))
		seen, _, _ := d.upstreamSaw(resp.Header.Get("X-Audit-Id"))
		if seen != c.forward {
			t.Errorf("%s: forwarded %v, want %v", c.route, seen, c.forward)
		}
		if n := testutil.ToFloat64(d.m.strictErrors) - before; strings.HasPrefix(c.route, "strict") != (n == 1) {
			t.Errorf("%s: strict record errors counted %v", c.route, n)
		}
		if c.forward {
			if resp.StatusCode != 200 {
				t.Errorf("%s: status %d", c.route, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(text, "audit trail") {
			t.Errorf("%s: status %d Retry-After %q body %s, want 503 with Retry-After", c.route, resp.StatusCode, resp.Header.Get("Retry-After"), text)
		}
		if strings.Contains(text, "no space left") {
			t.Errorf("%s: the client reads the gateway's internal error: %s", c.route, text)
		}
	}
}
