package gateway

import (
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSmokeRoundTrip(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Path", r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		w.Write(append([]byte("got:"), b...))
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(up.URL))
	resp, err := rawClient(t).Post(gw.URL+"/v1/chat/completions?a=1&b=%2F", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || string(body) != `got:{"model":"m"}` {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Echo-Path"); got != "/v1/chat/completions?a=1&b=%2F" {
		t.Errorf("upstream saw %q", got)
	}
	if resp.Header.Get("X-Audit-Id") == "" {
		t.Error("no X-Audit-Id")
	}
	ex := gw.rec.wait(t, 1)[0]
	if ex.Status != 201 || ex.Outcome != OutcomeOK || string(ex.ReqBody.Data) != `{"model":"m"}` || string(ex.RespBody.Data) != string(body) {
		t.Errorf("recorded %+v", ex)
	}
	if ex.RespBody.SHA256 != sha256.Sum256(body) || !ex.RespBody.Complete || !ex.ReqBody.Complete {
		t.Errorf("response body hash/complete wrong: %+v", ex.RespBody)
	}
	if ex.AuditID.String() != resp.Header.Get("X-Audit-Id") {
		t.Errorf("audit id %s vs header %s", ex.AuditID, resp.Header.Get("X-Audit-Id"))
	}
}

type panicRecorder struct{ calls chan struct{} }

func (p panicRecorder) Record(*Exchange) {
	p.calls <- struct{}{}
	panic("recorder bug")
}

// TestRecorderPanicDoesNotCrash: a recorder that panics costs its exchange,
// not the process, and the client still gets its response.
func TestRecorderPanicDoesNotCrash(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") }))
	defer up.Close()
	rec := panicRecorder{calls: make(chan struct{}, 4)}
	g, err := New(oneRoute(up.URL), rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	defer g.Shutdown(context.Background())
	client := rawClient(t)
	for i := 0; i < 2; i++ {
		resp, err := client.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "fine" {
			t.Fatalf("body %q", b)
		}
		<-rec.calls
	}
	// Records are built off the connection: the count follows the call.
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(g.m.recorderPanics) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := testutil.ToFloat64(g.m.recorderPanics); got != 2 {
		t.Errorf("recorder panics counted: %v", got)
	}
}
