package bench

import (
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNginx starts nginx from the repository's configuration in front of
// the mock: a chat and a streamed chat pass, and Close stops its workers.
func TestNginx(t *testing.T) {
	bin, err := FindNginx("")
	if err != nil {
		// make test and make bench-compare install it.
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	mock, err := StartMock(t.Context(), "127.0.0.1:0", MockOptions{StreamChunks: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Close()
	n, err := StartNginx(bin, strings.TrimPrefix(mock.URL(), "http://"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"model":"m","messages":[]}`, `{"model":"m","messages":[],"stream":true}`} {
		resp, err := http.Post(n.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "gpt") && !strings.Contains(string(b), "m-2024") {
			t.Errorf("through nginx: %d %.200s", resp.StatusCode, b)
		}
	}
	// Workers answered the requests, so they exist by now; read right
	// after the start, a busy machine had not forked them yet.
	pids := n.PIDs()
	if len(pids) < 2 {
		t.Errorf("nginx processes %v: want the master and its workers", pids)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("nginx process %d still runs after Close", pid)
		}
	}
}
