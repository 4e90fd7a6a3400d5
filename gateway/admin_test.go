package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/auditgate/auditgate/worm"
)

var testTokens = []AdminToken{
	{Name: "ops", Token: "op-secret", Roles: []string{RoleOperator}},
	{Name: "audit", Token: "audit-secret", Roles: []string{RoleAuditor}},
	{Name: "root", Token: "admin-secret", Roles: []string{RoleAdmin}},
}

// startAdmin serves the admin API for g on a loopback port until the test
// ends, and returns its base URL.
func startAdmin(t *testing.T, opts AdminOptions, g *Gateway, gatherer prometheus.Gatherer) (*Admin, string) {
	t.Helper()
	a := NewAdmin(opts, g, gatherer, zaptest.NewLogger(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("admin Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("admin Serve: %v", err)
		}
	})
	return a, "http://" + ln.Addr().String()
}

func adminGet(t *testing.T, c *http.Client, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestAdminHealthAndReadiness(t *testing.T) {
	gw := startGateway(t, oneRoute(namedUpstream(t, "A").URL))
	_, base := startAdmin(t, AdminOptions{Tokens: testTokens}, gw.Gateway, gw.reg)
	c := rawClient(t)
	getString(t, c, gw.URL+"/x") // Serve is running

	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := adminGet(t, c, base+path, ""); resp.StatusCode != 200 || body != "ok\n" {
			t.Errorf("%s without a token: status %d body %q", path, resp.StatusCode, body)
		}
	}
	if err := gw.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := adminGet(t, c, base+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz after the gateway's shutdown: status %d, want 503", resp.StatusCode)
	}
	if resp, _ := adminGet(t, c, base+"/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("/healthz after the gateway's shutdown: status %d, want 200 (alive, not ready)", resp.StatusCode)
	}
}

func TestAdminReadyzDuringDrain(t *testing.T) {
	up := newHeldStream(t)
	gw := serveByHand(t, oneRoute(up.URL), newTestRecorder())
	_, base := startAdmin(t, AdminOptions{}, gw.Gateway, prometheus.NewRegistry())
	c := rawClient(t)

	resp, br := openStream(t, c, "http://"+gw.addr+"/v1/chat/completions")
	defer resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- gw.Shutdown(ctx) }()
	waitFor(t, gw.ln.closed, "the listener to close")
	if r, _ := adminGet(t, c, base+"/readyz", ""); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: status %d, want 503", r.StatusCode)
	}
	close(up.release)
	io.ReadAll(br)
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	<-gw.served
}

func TestAdminMetrics(t *testing.T) {
	const n = 3
	reqBody, respBody := `{"model":"m","input":"hello"}`, "answer"
	up := namedUpstream(t, respBody)
	gw := startGateway(t, oneRoute(up.URL))
	_, base := startAdmin(t, AdminOptions{Tokens: testTokens}, gw.Gateway, gw.reg)
	c := rawClient(t)
	for i := 0; i < n; i++ {
		resp, err := c.Post(gw.URL+"/v1/embeddings", "application/json", strings.NewReader(reqBody))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	gw.rec.wait(t, n) // every exchange finished

	resp, text := adminGet(t, c, base+"/metrics", "")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics without a token: status %d", resp.StatusCode)
	}
	want := []string{
		fmt.Sprintf(`auditgate_requests_total{code="200",route="test"} %d`, n),
		`auditgate_in_flight_requests 0`,
		fmt.Sprintf(`auditgate_upstream_duration_seconds_count{route="test"} %d`, n),
		fmt.Sprintf(`auditgate_added_latency_seconds_count{route="test"} %d`, n),
		fmt.Sprintf(`auditgate_request_bytes_total{route="test"} %d`, n*len(reqBody)),
		fmt.Sprintf(`auditgate_response_bytes_total{route="test"} %d`, n*len(respBody)),
		fmt.Sprintf(`auditgate_outcomes_total{outcome="ok",route="test"} %d`, n),
	}
	lines := strings.Split(text, "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			if l == w {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("/metrics lacks the line %q", w)
		}
	}
	// The histograms have buckets, and all n observations fall in one.
	for _, h := range []string{"auditgate_upstream_duration_seconds", "auditgate_added_latency_seconds"} {
		inf := regexp.MustCompile(h + `_bucket\{(?:le="\+Inf",route="test"|route="test",le="\+Inf")\} (\d+)`).FindStringSubmatch(text)
		if inf == nil || inf[1] != fmt.Sprint(n) {
			t.Errorf("%s +Inf bucket: %v", h, inf)
		}
		if !strings.Contains(text, "# TYPE "+h+" histogram") {
			t.Errorf("%s is not a histogram", h)
		}
	}
}

func TestAdminMetricsCountErrors(t *testing.T) {
	gw := startGateway(t, Options{Routes: []Route{{Name: "api", Host: "api.example.com", Upstream: closedPortURL(t)}}})
	c := rawClient(t)
	getBody(t, c, gw.URL+"/v1/models") // no route
	req, _ := http.NewRequest("GET", gw.URL+"/v1/models", nil)
	req.Host = "api.example.com"
	resp, err := c.Do(req) // 502
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	gw.rec.wait(t, 2)
	for _, m := range []struct {
		labels map[string]string
		name   string
	}{
		{map[string]string{"route": noRoute, "code": "404"}, "auditgate_requests_total"},
		{map[string]string{"route": noRoute, "outcome": "no_route"}, "auditgate_outcomes_total"},
		{map[string]string{"route": "api", "code": "502"}, "auditgate_requests_total"},
		{map[string]string{"route": "api", "outcome": "upstream_unavailable"}, "auditgate_outcomes_total"},
	} {
		if got := gathered(t, gw.reg, m.name, m.labels); got != 1 {
			t.Errorf("%s%v = %v, want 1", m.name, m.labels, got)
		}
	}
	if got := gathered(t, gw.reg, "auditgate_in_flight_requests", nil); got != 0 {
		t.Errorf("in flight %v after every exchange finished", got)
	}
}

func TestAdminRoutesAuth(t *testing.T) {
	gw := startGateway(t, Options{Routes: []Route{
		{Name: "openai", PathPrefix: "/v1", Upstream: "http://127.0.0.1:1/openai", Protocol: ProtocolOpenAI, Policy: "full"},
		{Name: "rest", Upstream: "http://127.0.0.1:2"},
	}})
	_, base := startAdmin(t, AdminOptions{Tokens: testTokens}, gw.Gateway, gw.reg)
	c := rawClient(t)
	url := base + "/api/v1/routes"

	tests := []struct {
		name, auth string
		status     int
		challenge  bool
	}{
		{"no token", "", 401, true},
		{"empty bearer", "Bearer ", 401, true},
		{"other scheme", "Basic b3A6b3Atc2VjcmV0", 401, true},
		{"unknown token", "Bearer nope", 401, true},
		{"token prefix", "Bearer op-secre", 401, true},
		{"auditor only", "Bearer audit-secret", 403, false},
		{"operator", "Bearer op-secret", 200, false},
		{"admin", "Bearer admin-secret", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := adminGet(t, c, url, tt.auth)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if ch := resp.Header.Get("WWW-Authenticate"); tt.challenge != strings.HasPrefix(ch, "Bearer") {
				t.Errorf("WWW-Authenticate %q", ch)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, secret := range []string{"op-secret", "audit-secret", "admin-secret"} {
				if strings.Contains(body, secret) {
					t.Errorf("body leaks a token: %s", body)
				}
			}
			if tt.status != 200 {
				var e struct{ Error struct{ Message string } }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Message == "" {
					t.Errorf("error body %q (%v)", body, err)
				}
				return
			}
			var got struct {
				Uptime string
				Routes []struct {
					Name       string `json:"name"`
					PathPrefix string `json:"path_prefix"`
					Upstream   string `json:"upstream"`
					Protocol   string `json:"protocol"`
					Policy     string `json:"policy"`
				}
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if len(got.Routes) != 2 || got.Routes[0].Name != "openai" || got.Routes[0].PathPrefix != "/v1" ||
				got.Routes[0].Upstream != "http://127.0.0.1:1/openai" || got.Routes[0].Protocol != "openai" ||
				got.Routes[0].Policy != "full" || got.Routes[1].Name != "rest" {
				t.Errorf("routes %+v", got.Routes)
			}
			if got.Uptime == "" {
				t.Error("no uptime")
			}
		})
	}

	// The listing follows reloads.
	if err := gw.Reload(oneRoute("http://127.0.0.1:3")); err != nil {
		t.Fatal(err)
	}
	_, body := adminGet(t, c, url, "Bearer op-secret")
	if !strings.Contains(body, `"name":"test"`) || strings.Contains(body, `"openai"`) {
		t.Errorf("routes after reload: %s", body)
	}
}

func TestAdminSetTokens(t *testing.T) {
	gw := startGateway(t, oneRoute("http://127.0.0.1:1"))
	a, base := startAdmin(t, AdminOptions{Tokens: testTokens}, gw.Gateway, gw.reg)
	c := rawClient(t)
	url := base + "/api/v1/routes"
	status := func(auth string) int {
		resp, _ := adminGet(t, c, url, auth)
		return resp.StatusCode
	}
	if s := status("Bearer op-secret"); s != 200 {
		t.Fatalf("before SetTokens: %d", s)
	}
	a.SetTokens([]AdminToken{{Name: "new", Token: "new-secret", Roles: []string{RoleOperator, RoleAuditor}}})
	for _, tt := range []struct {
		auth   string
		status int
	}{
		{"Bearer op-secret", 401},
		{"Bearer admin-secret", 401},
		{"Bearer new-secret", 200},
	} {
		if s := status(tt.auth); s != tt.status {
			t.Errorf("%s after SetTokens: %d, want %d", tt.auth, s, tt.status)
		}
	}
	a.SetTokens(nil)
	if s := status("Bearer new-secret"); s != 401 {
		t.Errorf("with no tokens: %d, want 401", s)
	}
	if resp, _ := adminGet(t, c, base+"/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("/healthz with no tokens: %d", resp.StatusCode)
	}
}

func TestAdminCustomHandlerRole(t *testing.T) {
	a, base := startAdmin(t, AdminOptions{Tokens: testTokens}, nil, prometheus.NewRegistry())
	a.Handle("GET /api/v1/trail", RoleAuditor, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "trail")
	}))
	c := rawClient(t)
	for _, tt := range []struct {
		auth   string
		status int
	}{
		{"", 401},
		{"Bearer op-secret", 403},
		{"Bearer audit-secret", 200},
		{"Bearer admin-secret", 200},
	} {
		if resp, body := adminGet(t, c, base+"/api/v1/trail", tt.auth); resp.StatusCode != tt.status {
			t.Errorf("%q: status %d body %s, want %d", tt.auth, resp.StatusCode, body, tt.status)
		}
	}
	// Without a gateway the admin API still answers.
	if resp, body := adminGet(t, c, base+"/api/v1/routes", "Bearer op-secret"); resp.StatusCode != 200 || !strings.Contains(body, `"routes":null`) {
		t.Errorf("routes without a gateway: %d %s", resp.StatusCode, body)
	}
	if resp, _ := adminGet(t, c, base+"/readyz", ""); resp.StatusCode != 200 {
		t.Errorf("/readyz without a gateway: %d", resp.StatusCode)
	}
}

// TestAdminReadinessFollowsTheTrail: /readyz answers 503 with the trail's
// failure while it lasts; /healthz stays 200.
func TestAdminReadinessFollowsTheTrail(t *testing.T) {
	gw := startGateway(t, oneRoute(namedUpstream(t, "A").URL))
	var down atomic.Pointer[error]
	ready := func() error {
		if p := down.Load(); p != nil {
			return *p
		}
		return nil
	}
	_, base := startAdmin(t, AdminOptions{Tokens: testTokens, Ready: ready}, gw.Gateway, gw.reg)
	c := rawClient(t)
	getString(t, c, gw.URL+"/x")
	if resp, _ := adminGet(t, c, base+"/readyz", ""); resp.StatusCode != 200 {
		t.Fatalf("/readyz with a working trail: %d", resp.StatusCode)
	}
	err := errors.New("trail cannot write its spool: no space left on device")
	down.Store(&err)
	if resp, body := adminGet(t, c, base+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "no space left") {
		t.Errorf("/readyz with the trail down: %d %q", resp.StatusCode, body)
	}
	if resp, _ := adminGet(t, c, base+"/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("/healthz with the trail down: %d", resp.StatusCode)
	}
	down.Store(nil)
	if resp, _ := adminGet(t, c, base+"/readyz", ""); resp.StatusCode != 200 {
		t.Errorf("/readyz once the trail works again: %d", resp.StatusCode)
	}
}

type fakeTrailReader struct {
	recs []worm.RecentRecord
	cp   []byte
}

func (f *fakeTrailReader) Recent(n int) []worm.RecentRecord {
	return f.recs[max(0, len(f.recs)-n):]
}

func (f *fakeTrailReader) LatestCheckpoint(context.Context) ([]byte, error) {
	if f.cp == nil {
		return nil, worm.ErrNotFound
	}
	return f.cp, nil
}

// TestAdminTrailReads: the latest records and checkpoint, to auditors only.
func TestAdminTrailReads(t *testing.T) {
	tr := &fakeTrailReader{}
	for i := range 5 {
		tr.recs = append(tr.recs, worm.RecentRecord{Index: uint64(i), Line: []byte(fmt.Sprintf(`{"v":1,"id":"r%d"}`, i))})
	}
	_, base := startAdmin(t, AdminOptions{Tokens: testTokens, Trail: tr}, nil, prometheus.NewRegistry())
	c := rawClient(t)
	if resp, body := adminGet(t, c, base+"/api/v1/checkpoint", "Bearer audit-secret"); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no checkpoint yet") {
		t.Errorf("checkpoint before a seal: %d %s", resp.StatusCode, body)
	}
	tr.cp = []byte("auditgate/s\n5\nROOT\n\n— key sig\n")
	resp, body := adminGet(t, c, base+"/api/v1/checkpoint", "Bearer audit-secret")
	if resp.StatusCode != 200 || body != string(tr.cp) {
		t.Errorf("checkpoint: %d %q", resp.StatusCode, body)
	}
	resp, body = adminGet(t, c, base+"/api/v1/records?limit=2", "Bearer audit-secret")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" ||
		body != `{"index":3,"record":{"v":1,"id":"r3"}}`+"\n"+`{"index":4,"record":{"v":1,"id":"r4"}}`+"\n" {
		t.Errorf("records: %d %q", resp.StatusCode, body)
	}
	if resp, _ := adminGet(t, c, base+"/api/v1/records?limit=0", "Bearer audit-secret"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("records?limit=0: %d", resp.StatusCode)
	}
	if resp, _ := adminGet(t, c, base+"/api/v1/records", "Bearer op-secret"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("records for an operator token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := adminGet(t, c, base+"/api/v1/checkpoint", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("checkpoint without a token: %d, want 401", resp.StatusCode)
	}
}
