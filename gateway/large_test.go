package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditgate/auditgate/capture"
)

const largeBody = 50 << 20

// patternReader yields n pseudo-random bytes without holding them.
type patternReader struct {
	r *rand.ChaCha8
	n int64
}

func newPattern(n int64) *patternReader {
	return &patternReader{r: rand.NewChaCha8([32]byte{7}), n: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	p.r.Read(b)
	p.n -= int64(len(b))
	return len(b), nil
}

func patternSum(n int64) string {
	h := sha256.New()
	io.Copy(h, newPattern(n))
	return hex.EncodeToString(h.Sum(nil))
}

// allocated returns the bytes allocated by the whole process so far.
func allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// TestLargeBodiesStream moves 50 MB each way, with and without a declared
// length, and checks that the bytes arrive intact while the process
// allocates far less than the body: nothing holds it whole.
func TestLargeBodiesStream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			w.Header().Set("X-Got", strconv.FormatInt(n, 10)+" "+hex.EncodeToString(h.Sum(nil)))
			return
		}
		if r.URL.Query().Get("length") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(largeBody))
		}
		io.Copy(w, newPattern(largeBody))
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(up.URL))
	client := rawClient(t)
	want := patternSum(largeBody)

	for _, declared := range []bool{true, false} {
		t.Run("upload/declared="+strconv.FormatBool(declared), func(t *testing.T) {
			var body io.Reader = newPattern(largeBody)
			req, _ := http.NewRequest(http.MethodPost, gw.URL+"/upload", body)
			if declared {
				req.ContentLength = largeBody
			}
			before := allocated()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			grew := allocated() - before
			if got := resp.Header.Get("X-Got"); got != strconv.Itoa(largeBody)+" "+want {
				t.Fatalf("upstream got %q", got)
			}
			ex := gw.rec.wait(t, 1)[0]
			if ex.ReqBody.Size != largeBody || hex.EncodeToString(ex.ReqBody.SHA256[:]) != want || !ex.ReqBody.Truncated || len(ex.ReqBody.Data) != defaultMaxCapture {
				t.Errorf("recorded request body: size %d truncated %v captured %d", ex.ReqBody.Size, ex.ReqBody.Truncated, len(ex.ReqBody.Data))
			}
			t.Logf("process allocated %.1f MiB while moving %d MiB", float64(grew)/(1<<20), largeBody>>20)
			if grew > largeBody/3 {
				t.Errorf("process allocated %d bytes for a %d-byte upload: the body is being buffered", grew, largeBody)
			}
		})
		t.Run("download/declared="+strconv.FormatBool(declared), func(t *testing.T) {
			url := gw.URL + "/download"
			if declared {
				url += "?length=1"
			}
			before := allocated()
			resp, err := client.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			grew := allocated() - before
			if err != nil || n != largeBody || hex.EncodeToString(h.Sum(nil)) != want {
				t.Fatalf("client got %d bytes (err %v), hash match %v", n, err, hex.EncodeToString(h.Sum(nil)) == want)
			}
			if declared != (resp.ContentLength == largeBody) {
				t.Errorf("Content-Length %d with declared=%v", resp.ContentLength, declared)
			}
			ex := gw.rec.wait(t, 1)[0]
			if ex.RespBody.Size != largeBody || hex.EncodeToString(ex.RespBody.SHA256[:]) != want || !ex.RespBody.Complete {
				t.Errorf("recorded response body: size %d complete %v", ex.RespBody.Size, ex.RespBody.Complete)
			}
			t.Logf("process allocated %.1f MiB while moving %d MiB", float64(grew)/(1<<20), largeBody>>20)
			if grew > largeBody/3 {
				t.Errorf("process allocated %d bytes for a %d-byte download: the body is being buffered", grew, largeBody)
			}
		})
	}
}

// TestLargeBodiesWithCapture moves 50 MB each way with full capture on: the
// record is built from the capped copy, so memory stays bounded by the caps.
func TestLargeBodiesWithCapture(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, newPattern(largeBody))
	}))
	defer up.Close()
	capt, err := capture.NewCapturer(capture.CapturerOptions{Stream: "t",
		Identity: capture.IdentityOptions{Secret: []byte("0123456789abcdef0123456789abcdef")}})
	if err != nil {
		t.Fatal(err)
	}
	sink := newMemSink()
	opts := oneRoute(up.URL)
	opts.Audit = &AuditOptions{Capturer: capt, Trail: sink}
	gw := startGateway(t, opts)
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/chat/completions", newPattern(largeBody))
	req.ContentLength = largeBody
	before := allocated()
	resp, err := rawClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case <-sink.more:
	case <-time.After(10 * time.Second):
		t.Fatal("no record within 10 s")
	}
	grew := allocated() - before // before the test's own decoding of the record
	sink.more <- struct{}{}
	rec, line := sink.next(t)
	if n != largeBody {
		t.Fatalf("client got %d bytes", n)
	}
	if rec["truncated"] != true || !strings.Contains(string(line), `"request_truncated"`) || !strings.Contains(string(line), `"response_truncated"`) {
		t.Errorf("record does not say it holds less than the bodies: truncated %v flags %v", rec["truncated"], rec["flags"])
	}
	if len(line) > 4<<20 {
		t.Errorf("record of %d bytes for capped bodies", len(line))
	}
	t.Logf("process allocated %.1f MiB while moving and recording 2 x %d MiB; record %d KiB", float64(grew)/(1<<20), largeBody>>20, len(line)>>10)
	if grew > largeBody*3/4 { // one body held whole is 50 MiB more
		t.Errorf("process allocated %d bytes: a body is being held whole", grew)
	}
}
