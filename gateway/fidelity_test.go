package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// exchangeSpec is one randomized request and the response the upstream
// answers it with.
type exchangeSpec struct {
	method     string
	uri        string
	reqHeaders [][2]string
	reqBody    []byte
	reqChunked bool
	reqGzip    bool
	// spoofed are fields the gateway sets itself, sent by the client in
	// random case; the upstream must see the gateway's only.
	spoofed [][2]string

	status      int
	respHeaders [][2]string
	respBody    []byte
	respChunked bool
	respGzip    bool
	// respAuditID, if set, is the name under which the upstream sends an
	// X-Audit-Id of its own, which the client must not see.
	respAuditID string
}

// seen is what the upstream received.
type seen struct {
	method, uri string
	header      http.Header
	bodySum     [32]byte
	bodyLen     int
}

func randToken(r *rand.Rand, n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"
	b := make([]byte, 1+r.IntN(n))
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

// randValue is a header value with spaces, punctuation and quotes, as real
// values have (no leading or trailing space: HTTP trims those).
func randValue(r *rand.Rand) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789 ,;=\"/:()[]{}+*!#$%&'^`|~"
	b := make([]byte, 1+r.IntN(60))
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return strings.TrimSpace("v" + string(b) + "v")
}

// randCase changes the case of some of name's letters: header names keep
// their case through the gateway, and lower case is common (httpx, h11).
func randCase(r *rand.Rand, name string) string {
	b := []byte(name)
	switch r.IntN(4) {
	case 0:
		return name
	case 1:
		return strings.ToLower(name)
	case 2:
		return strings.ToUpper(name)
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' && r.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		} else if 'A' <= c && c <= 'Z' && r.IntN(2) == 0 {
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

func randBody(r *rand.Rand, max int) []byte {
	b := make([]byte, r.IntN(max))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randSpec(t testing.TB, r *rand.Rand) exchangeSpec {
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"}
	statuses := []int{200, 200, 201, 202, 204, 301, 400, 401, 404, 409, 418, 422, 429, 500, 502, 503}
	s := exchangeSpec{method: methods[r.IntN(len(methods))], status: statuses[r.IntN(len(statuses))]}

	var path strings.Builder
	for range 1 + r.IntN(4) {
		seg := randToken(r, 12)
		if strings.Trim(seg, ".") == "" {
			seg = "d" + seg // a dot segment is refused
		}
		path.WriteString("/" + seg)
		if r.IntN(4) == 0 {
			// Encoded reserved characters stay encoded. (Encoded slashes
			// and unreserved characters are refused.)
			path.WriteString([]string{"%3A", "%40", "%2C", "%3B"}[r.IntN(4)] + randToken(r, 3) + "%20x")
		}
	}
	if r.IntN(3) == 0 {
		path.WriteString("/")
	}
	s.uri = path.String()
	if r.IntN(2) == 0 {
		q := make([]string, 1+r.IntN(4))
		for i := range q {
			q[i] = randToken(r, 8) + "=" + randToken(r, 8)
			if r.IntN(4) == 0 {
				q[i] += "%26%3D" // encoded & and =, which must stay encoded
			}
		}
		s.uri += "?" + strings.Join(q, "&")
	}

	for i := range r.IntN(8) {
		name := randCase(r, "X-Req-"+strconv.Itoa(i)+"-"+randToken(r, 6))
		for range 1 + r.IntN(2) { // sometimes a repeated field
			s.reqHeaders = append(s.reqHeaders, [2]string{name, randValue(r)})
		}
	}
	if s.method != "GET" && s.method != "HEAD" && s.method != "OPTIONS" && r.IntN(4) != 0 {
		switch r.IntN(3) {
		case 0:
			s.reqBody = randBody(r, 64<<10)
		case 1:
			s.reqBody = gzipBytes(t, []byte(`{"model":"m","input":"`+randToken(r, 2000)+`"}`))
			s.reqGzip = true
		case 2:
			s.reqBody = []byte{} // explicitly empty
		}
		s.reqChunked = r.IntN(2) == 0
	}

	for i := range r.IntN(8) {
		name := randCase(r, "X-Resp-"+strconv.Itoa(i)+"-"+randToken(r, 6))
		for range 1 + r.IntN(2) {
			s.respHeaders = append(s.respHeaders, [2]string{name, randValue(r)})
		}
	}
	for _, name := range []string{"X-Audit-Id", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
		if r.IntN(3) == 0 {
			s.spoofed = append(s.spoofed, [2]string{randCase(r, name), "spoofed-" + randToken(r, 6)})
		}
	}
	if r.IntN(3) == 0 {
		s.respAuditID = randCase(r, "X-Audit-Id")
	}
	if s.status == 301 {
		s.respHeaders = append(s.respHeaders, [2]string{"Location", "/elsewhere?" + randToken(r, 5)})
	}
	if s.status != 204 {
		if r.IntN(3) == 0 {
			s.respBody = gzipBytes(t, []byte(strings.Repeat(`{"choices":[]}`, 1+r.IntN(500))))
			s.respGzip = true
		} else {
			s.respBody = randBody(r, 128<<10)
		}
		s.respChunked = r.IntN(2) == 0
	}
	return s
}

// TestFidelityRandomized sends randomized requests through the gateway to a
// real upstream and checks that both sides see exactly what the other sent:
// method, raw path and query, headers, status, and body bytes, with
// Content-Encoding untouched and the recorder's hashes matching the wire.
func TestFidelityRandomized(t *testing.T) {
	const n = 300
	r := rand.New(rand.NewPCG(1, 2))
	specs := make([]exchangeSpec, n)
	for i := range specs {
		specs[i] = randSpec(t, r)
	}
	var mu sync.Mutex
	seens := make([]seen, n)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		i, _ := strconv.Atoi(req.Header.Get("X-Spec"))
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		seens[i] = seen{method: req.Method, uri: req.RequestURI, header: req.Header.Clone(), bodySum: sha256.Sum256(body), bodyLen: len(body)}
		mu.Unlock()
		s := specs[i]
		// Set as spelled: Add would canonicalize the names.
		for _, h := range s.respHeaders {
			w.Header()[h[0]] = append(w.Header()[h[0]], h[1])
		}
		if s.respAuditID != "" {
			w.Header()[s.respAuditID] = []string{"from-the-upstream"}
		}
		if s.respGzip {
			w.Header().Set("Content-Encoding", "gzip")
		}
		if s.status != 204 {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		if !s.respChunked && s.status != 204 {
			w.Header().Set("Content-Length", strconv.Itoa(len(s.respBody)))
		}
		w.WriteHeader(s.status)
		if req.Method == "HEAD" {
			return
		}
		if s.respChunked && len(s.respBody) > 0 {
			half := len(s.respBody) / 2
			w.Write(s.respBody[:half])
			w.(http.Flusher).Flush()
			w.Write(s.respBody[half:])
			return
		}
		w.Write(s.respBody)
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(up.URL))
	client := rawClient(t)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	for i, s := range specs {
		var body io.Reader
		if s.reqBody != nil {
			body = bytes.NewReader(s.reqBody)
			if s.reqChunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
		}
		req, err := http.NewRequest(s.method, gw.URL+s.uri, body)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range slices.Concat(s.reqHeaders, s.spoofed) {
			req.Header[h[0]] = append(req.Header[h[0]], h[1])
		}
		req.Header.Set("X-Spec", strconv.Itoa(i))
		if s.reqGzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("spec %d (%s %s): %v", i, s.method, s.uri, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("spec %d: read body: %v", i, err)
		}
		ex := gw.rec.wait(t, 1)[0]
		t.Run(fmt.Sprintf("%03d_%s_%d", i, s.method, s.status), func(t *testing.T) {
			checkSpec(t, s, seens[i], resp, got, ex)
			checkGatewayFields(t, s, seens[i], resp, ex, strings.TrimPrefix(gw.URL, "http://"))
		})
	}
}

func checkSpec(t *testing.T, s exchangeSpec, sn seen, resp *http.Response, got []byte, ex recorded) {
	// What the upstream saw.
	if sn.method != s.method || sn.uri != s.uri {
		t.Errorf("upstream saw %s %s, want %s %s", sn.method, sn.uri, s.method, s.uri)
	}
	for _, name := range uniqueNames(s.reqHeaders) {
		if got, want := sn.header.Values(name), values(s.reqHeaders, name); !slices.Equal(got, want) {
			t.Errorf("upstream header %s = %q, want %q", name, got, want)
		}
	}
	if s.reqGzip && sn.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("request Content-Encoding lost")
	}
	if sn.bodySum != sha256.Sum256(s.reqBody) || sn.bodyLen != len(s.reqBody) {
		t.Errorf("upstream got a %d-byte body, want %d bytes (or different bytes)", sn.bodyLen, len(s.reqBody))
	}

	// What the client got.
	if resp.StatusCode != s.status {
		t.Errorf("status %d, want %d", resp.StatusCode, s.status)
	}
	for _, name := range uniqueNames(s.respHeaders) {
		if got, want := resp.Header.Values(name), values(s.respHeaders, name); !slices.Equal(got, want) {
			t.Errorf("response header %s = %q, want %q", name, got, want)
		}
	}
	if s.respGzip && resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("response Content-Encoding lost: %q", resp.Header.Get("Content-Encoding"))
	}
	wantBody := s.respBody
	if s.method == "HEAD" || s.status == 204 {
		wantBody = nil
	}
	if !bytes.Equal(got, wantBody) {
		t.Errorf("client got %d body bytes, want %d (or different bytes)", len(got), len(wantBody))
	}
	if !s.respChunked && s.status != 204 && resp.Header.Get("Content-Length") != "" &&
		resp.Header.Get("Content-Length") != strconv.Itoa(len(s.respBody)) {
		t.Errorf("Content-Length %s, want %d", resp.Header.Get("Content-Length"), len(s.respBody))
	}
	if !s.respChunked && s.method == "HEAD" && s.status != 204 && resp.ContentLength != int64(len(s.respBody)) {
		t.Errorf("HEAD Content-Length %d, want %d", resp.ContentLength, len(s.respBody))
	}

	// What was recorded.
	if ex.Method != s.method || ex.URI != s.uri || ex.Status != s.status || ex.Outcome != OutcomeOK {
		t.Errorf("recorded %s %s %d %s", ex.Method, ex.URI, ex.Status, ex.Outcome)
	}
	if ex.ReqBody.SHA256 != sha256.Sum256(s.reqBody) || ex.ReqBody.Size != int64(len(s.reqBody)) || !ex.ReqBody.Complete {
		t.Errorf("recorded request body: size %d complete %v, hash mismatch %v", ex.ReqBody.Size, ex.ReqBody.Complete,
			ex.ReqBody.SHA256 != sha256.Sum256(s.reqBody))
	}
	if ex.RespBody.SHA256 != sha256.Sum256(wantBody) || ex.RespBody.Size != int64(len(wantBody)) || !ex.RespBody.Complete {
		t.Errorf("recorded response body: size %d complete %v", ex.RespBody.Size, ex.RespBody.Complete)
	}
	if !bytes.Equal(ex.RespBody.Data, wantBody) {
		t.Errorf("recorded response body bytes differ (captured %d)", len(ex.RespBody.Data))
	}
	if !(ex.Start.Compare(ex.UpstreamStart) <= 0 && ex.UpstreamStart.Compare(ex.FirstByte) <= 0 && ex.FirstByte.Compare(ex.End) <= 0) {
		t.Errorf("timings out of order: %v %v %v %v", ex.Start, ex.UpstreamStart, ex.FirstByte, ex.End)
	}
}

// checkGatewayFields checks that each side saw only the gateway's own
// X-Audit-Id and X-Forwarded-*, whatever spelling the other side sent.
func checkGatewayFields(t *testing.T, s exchangeSpec, sn seen, resp *http.Response, ex recorded, gwHost string) {
	id := ex.AuditID.String()
	if got := resp.Header.Values("X-Audit-Id"); len(got) != 1 || got[0] != id {
		t.Errorf("client got X-Audit-Id %q, recorded %s", got, id)
	}
	wantFor := "127.0.0.1"
	for _, h := range s.spoofed {
		if strings.EqualFold(h[0], "X-Forwarded-For") {
			wantFor = h[1] + ", " + wantFor
		}
	}
	for name, want := range map[string]string{
		"X-Audit-Id": id, "X-Forwarded-For": wantFor, "X-Forwarded-Proto": "http", "X-Forwarded-Host": gwHost,
	} {
		if got := sn.header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("upstream got %s %q, want %q", name, got, want)
		}
	}
}

func uniqueNames(hs [][2]string) []string {
	var out []string
	for _, h := range hs {
		if !slices.Contains(out, h[0]) {
			out = append(out, h[0])
		}
	}
	return out
}

func values(hs [][2]string, name string) []string {
	var out []string
	for _, h := range hs {
		if h[0] == name {
			out = append(out, h[1])
		}
	}
	return out
}
