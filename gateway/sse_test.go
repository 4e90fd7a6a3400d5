package gateway

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStreamingIsIncremental: the upstream sends one event and will not send
// the next until the client has read the first through the gateway. A
// gateway that buffered the response would deadlock here.
func TestStreamingIsIncremental(t *testing.T) {
	const events = 5
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		for i := range events {
			if i > 0 {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Second):
					return
				}
			}
			fmt.Fprintf(w, "data: {\"n\":%d}\n\n", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(up.URL))

	resp, err := rawClient(t).Post(gw.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	type line struct {
		s   string
		err error
	}
	lines := make(chan line, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() != "" {
				lines <- line{s: sc.Text()}
			}
		}
		lines <- line{err: fmt.Errorf("stream ended: %v", sc.Err())}
		close(lines)
	}()
	for i := range events {
		select {
		case l := <-lines:
			if want := fmt.Sprintf("data: {\"n\":%d}", i); l.s != want {
				t.Fatalf("event %d: got %q (%v), want %q", i, l.s, l.err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d did not arrive before the upstream was allowed to send the next: the gateway buffers", i)
		}
		if i < events-1 {
			next <- struct{}{}
		}
	}
	if l := <-lines; l.s != "data: [DONE]" {
		t.Fatalf("last line %q (%v)", l.s, l.err)
	}
	ex := gw.rec.wait(t, 1)[0]
	if ex.Outcome != OutcomeOK || !strings.Contains(string(ex.RespBody.Data), "data: [DONE]") || !ex.RespBody.Complete {
		t.Errorf("recorded %s, complete %v, body %q", ex.Outcome, ex.RespBody.Complete, ex.RespBody.Data)
	}
}
