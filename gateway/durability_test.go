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
		"strict":      {{Level: policy.LevelFull, Durability: policy.DurabilityStrict}},
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
	for _, name := range []string{"strict", "strict-open", "closed", "open"} {
		opts.Routes = append(opts.Routes, Route{Name: name, PathPrefix: "/" + name + "/", StripPrefix: "/" + name,
			Upstream: up.URL, Policy: name, MaxCapture: maxCapture})
	}
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
		resp, text := d.post(t, c.route, strings.NewReader(chatBody), int64(len(chatBody)))
		seen, _, _ := d.upstreamSaw(resp.Header.Get("X-Audit-Id"))
		if seen != c.forward {
			t.Errorf("%s: forwarded %v, want %v", c.route, seen, c.forward)
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
