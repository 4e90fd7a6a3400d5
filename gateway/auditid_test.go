package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
)

func TestIDIsUUIDv7AndOrdered(t *testing.T) {
	var s idSource
	prev := ""
	for i := 0; i < 100000; i++ {
		id := s.next()
		str := id.String()
		u, err := uuid.Parse(str)
		if err != nil {
			t.Fatalf("%s: %v", str, err)
		}
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%s: version %d variant %v", str, u.Version(), u.Variant())
		}
		if str <= prev {
			t.Fatalf("ids not strictly increasing: %s after %s", str, prev)
		}
		prev = str
		if got := string(id.AppendText(nil)); got != str {
			t.Fatalf("AppendText %q, String %q", got, str)
		}
	}
}

// TestAuditIDUniqueAcross10000Requests checks the X-Audit-Id every response
// carries, through the gateway, with concurrent clients.
func TestAuditIDUniqueAcross10000Requests(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(up.URL))
	client := rawClient(t)
	const n, workers = 10000, 8
	ids := make(chan string, n)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < n/workers; i++ {
				resp, err := client.Get(gw.URL + "/x")
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ids <- resp.Header.Get("X-Audit-Id")
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(ids)
	seen := make(map[string]bool, n)
	for id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			t.Fatalf("X-Audit-Id %q: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("X-Audit-Id %s seen twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d ids, want %d", len(seen), n)
	}
	gw.rec.wait(t, n)
}
