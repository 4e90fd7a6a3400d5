package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditgate/auditgate/worm"
	"github.com/auditgate/auditgate/worm/s3test"
)

// s3Trail is a Versity Gateway with a bucket made by `auditgate bucket
// init`, and the credentials in this process's environment for the
// commands the tests run in-process.
type s3Trail struct {
	srv *s3test.Server
}

func newS3Trail(t *testing.T) *s3Trail {
	srv := s3test.Start(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	e := &s3Trail{srv: srv}
	var out, errs bytes.Buffer
	if code := runBucket([]string{"init", e.srv.URL("trail", "")}, &out, &errs); code != exitOK || !strings.Contains(out.String(), "created bucket trail") {
		t.Fatalf("bucket init: exit %d\n%s%s", code, out.String(), errs.String())
	}
	return e
}

func (e *s3Trail) url(prefix string) string { return e.srv.URL("trail", prefix) }

// config writes a configuration: one route named chat to upstream under
// policy p, the given rule, and the trail in the store at storeURL, sealed
// often.
func s3Config(t *testing.T, upstream, rule, storeURL, trailExtra string) string {
	path := filepath.Join(t.TempDir(), "auditgate.yaml")
	writeFile(t, path, "routes:\n  - {name: chat, upstream: '"+upstream+"', policy: p}\n"+
		"policies:\n  p:\n    - "+rule+"\n"+
		"trail:\n  store: '"+storeURL+"'\n  seal: {max_records: 20, max_age: 100ms}\n"+trailExtra)
	return path
}

// load posts chats from four clients until stop is closed, counting the
// answers by status.
type load struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	codes map[int]int
}

func startLoad(proxy string) *load {
	l := &load{stop: make(chan struct{}), codes: map[int]int{}}
	body := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("claim text ", 30) + `"}]}`
	for range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := c.Post(proxy+"/v1/chat/completions", "application/json", strings.NewReader(body))
				code := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				l.mu.Lock()
				l.codes[code]++
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) count(code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codes[code]
}

func (l *load) end() map[int]int {
	close(l.stop)
	l.wg.Wait()
	return l.codes
}

// metric reads one sample of the admin's /metrics whose line starts with
// prefix.
func metric(t *testing.T, admin, prefix string) (float64, bool) {
	t.Helper()
	_, body := get(t, admin+"/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// records reads every record of a verified trail in a store.
func trailRecords(t *testing.T, storeURL, trust string) []map[string]any {
	t.Helper()
	st, err := worm.OpenStore(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := worm.LoadTrust(trust)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	err = (&worm.Reader{Store: st, Trust: tr}).Scan(context.Background(), worm.Filter{}, func(_ string, _ uint64, line []byte) error {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return err
		}
		recs = append(recs, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func verifyCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errs bytes.Buffer
	code := runVerify(args, &out, &errs)
	return out.String() + errs.String(), code
}

// TestS3TrailRoundTrip runs the gateway with its trail on S3 Object Lock,
// verifies it online (with the lock evidence), then fetches the bucket
// with the AWS CLI, as an auditor would, and verifies the copy offline.
func TestS3TrailRoundTrip(t *testing.T) {
	e := newS3Trail(t)
	up := newNoteUpstream(t)
	data := t.TempDir()
	store := e.url("prod")
	cfg := s3Config(t, up.URL, "{level: full}", store, "")
	s := startServeEnv(t, data, e.srv.Env(), "--config", cfg)
	client := &http.Client{Timeout: 10 * time.Second}
	for range 50 {
		resp, err := client.Post(s.proxy+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","messages":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s.signal(syscall.SIGTERM)
	if err := s.wait(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	trust := filepath.Join(data, worm.TrustFile)
	out, code := verifyCmd(t, store, "--trust", trust)
	if code != exitOK || !strings.Contains(out, "object lock:") || !strings.Contains(out, "COMPLIANCE") {
		t.Fatalf("verify on S3: exit %d\n%s", code, out)
	}
	t.Logf("verify on S3:\n%s", out)
	seen := up.seen()
	inference := idsOfKind(trailRecords(t, store, trust), "inference")
	for id := range seen {
		if !inference[id] {
			t.Errorf("request %s reached the upstream but has no record", id)
		}
	}

	aws, err := exec.LookPath("aws")
	if err != nil {
		msg := "the AWS CLI is not installed (make test installs Debian's awscli): the offline round trip is not run"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	cp := exec.Command(aws, "s3", "cp", "--recursive", "--only-show-errors", "s3://trail", dir, "--endpoint-url", "http://"+e.srv.Endpoint())
	cp.Env = append(os.Environ(), e.srv.Env()...)
	if b, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("aws s3 cp: %v\n%s", err, b)
	}
	out, code = verifyCmd(t, "file://"+filepath.Join(dir, "prod"), "--trust", trust)
	if code != exitOK || !strings.Contains(out, "retention was not checked") {
		t.Fatalf("verify of the downloaded copy: exit %d\n%s", code, out)
	}
	// The copy is checked, not trusted: one changed byte is found.
	segs, _ := filepath.Glob(filepath.Join(dir, "prod", "*", "seg", "*"))
	if len(segs) == 0 {
		t.Fatal("no segment downloaded")
	}
	b, _ := os.ReadFile(segs[0])
	b[len(b)/2] ^= 1
	os.Chmod(segs[0], 0o600)
	os.WriteFile(segs[0], b, 0o600)
	if out, code = verifyCmd(t, "file://"+filepath.Join(dir, "prod"), "--trust", trust); code != exitFailure {
		t.Errorf("verify of an altered copy: exit %d\n%s", code, out)
	}
}

// TestS3Outage stops the S3 server under load for three seconds: traffic
// keeps flowing, segments wait in the spool, alert records say so, the
// backlog drains once the server is back, and the trail holds a record of
// every request the upstream saw.
func TestS3Outage(t *testing.T) {
	e := newS3Trail(t)
	up := newNoteUpstream(t)
	data := t.TempDir()
	store := e.url("outage")
	s := startServeEnv(t, data, e.srv.Env(), "--config", s3Config(t, up.URL, "{level: full}", store, ""))
	l := startLoad(s.proxy)
	time.Sleep(500 * time.Millisecond)
	e.srv.Stop()
	time.Sleep(3 * time.Second)
	pending, _ := metric(t, s.admin, "auditgate_trail_pending_segments")
	failed := l.count(200)
	e.srv.Restart()
	time.Sleep(500 * time.Millisecond)
	codes := l.end()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n, ok := metric(t, s.admin, "auditgate_trail_pending_segments"); ok && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backlog did not drain within 60 s of the store's return")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.signal(syscall.SIGTERM)
	if err := s.wait(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Logf("answers %v; %.0f segments waited in the spool during the outage; %d answered by then", codes, pending, failed)
	if len(codes) != 1 || codes[200] == 0 {
		t.Errorf("answers %v: every request should have been answered 200 during the outage", codes)
	}
	if pending == 0 {
		t.Errorf("no segment waited in the spool while the store was down")
	}
	trust := filepath.Join(data, worm.TrustFile)
	if out, code := verifyCmd(t, store, "--trust", trust); code != exitOK {
		t.Fatalf("verify after the outage: exit %d\n%s", code, out)
	}
	recs := trailRecords(t, store, trust)
	inference := idsOfKind(recs, "inference")
	lost := 0
	for id := range up.seen() {
		if !inference[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d requests the upstream saw have no record", lost, len(up.seen()))
	}
	var alerts []string
	for _, r := range recs {
		if r["kind"] == "alert" {
			alerts = append(alerts, r["alert"].(map[string]any)["name"].(string))
		}
	}
	if strings.Join(alerts, ",") != "store_unreachable,store_recovered" {
		t.Errorf("alert records %v, want store_unreachable then store_recovered", alerts)
	}
}

// TestS3SpoolBound: with a tiny spool bound and the store down, a route
// that fails closed answers 503 once the bound is reached, and serves again
// once the store has taken the backlog.
func TestS3SpoolBound(t *testing.T) {
	e := newS3Trail(t)
	up := newNoteUpstream(t)
	data := t.TempDir()
	store := e.url("bound")
	s := startServeEnv(t, data, e.srv.Env(), "--config", s3Config(t, up.URL, "{level: full}", store, "  max_spool: 4KiB\n"))
	e.srv.Stop()
	l := startLoad(s.proxy)
	deadline := time.Now().Add(20 * time.Second)
	for l.count(http.StatusServiceUnavailable) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.count(http.StatusServiceUnavailable) == 0 {
		l.end()
		t.Fatal("no 503 within 20 s with the spool at its bound")
	}
	code, body := get(t, s.admin+"/readyz")
	e.srv.Restart()
	deadline = time.Now().Add(60 * time.Second)
	for {
		if c, _ := get(t, s.admin+"/readyz"); c == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still not ready 60 s after the store's return")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := l.count(200)
	time.Sleep(300 * time.Millisecond)
	codes := l.end()
	t.Logf("answers %v; /readyz during the outage: %d %q", codes, code, body)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "spool is full") {
		t.Errorf("/readyz with the spool full: %d %q", code, body)
	}
	if codes[200] == before {
		t.Errorf("no request answered 200 after the store came back")
	}
	s.signal(syscall.SIGTERM)
	if err := s.wait(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	trust := filepath.Join(data, worm.TrustFile)
	if out, code := verifyCmd(t, store, "--trust", trust); code != exitOK {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	// Refused requests never reached the upstream: every one that did is
	// in the trail.
	inference := idsOfKind(trailRecords(t, store, trust), "inference")
	for id := range up.seen() {
		if !inference[id] {
			t.Errorf("request %s reached the upstream but has no record", id)
		}
	}
}

// TestS3ScaleOut runs two gateways writing to one bucket: each keeps its
// own stream, and verify checks both and reports each.
func TestS3ScaleOut(t *testing.T) {
	e := newS3Trail(t)
	up := newNoteUpstream(t)
	store := e.url("fleet")
	cfg := s3Config(t, up.URL, "{level: full}", store, "")
	var servers []*server
	var dirs []string
	for range 2 {
		d := t.TempDir()
		dirs = append(dirs, d)
		servers = append(servers, startServeEnv(t, d, e.srv.Env(), "--config", cfg))
	}
	for i, s := range servers {
		for range 10 * (i + 1) {
			resp, err := http.Post(s.proxy+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","messages":[]}`))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		s.signal(syscall.SIGTERM)
		if err := s.wait(); err != nil {
			t.Fatal(err)
		}
	}
	// One trust file pins both gateways' keys.
	var trust []byte
	for _, d := range dirs {
		b, _ := os.ReadFile(filepath.Join(d, worm.TrustFile))
		trust = append(trust, b...)
	}
	trustPath := filepath.Join(t.TempDir(), "trust.pub")
	os.WriteFile(trustPath, trust, 0o600)
	out, code := verifyCmd(t, store, "--trust", trustPath, "--format", "json")
	if code != exitOK {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	var rep struct {
		Streams []struct {
			Stream   string `json:"stream"`
			Segments int    `json:"segments"`
			Size     int    `json:"size"`
		} `json:"streams"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --format json: %v\n%s", err, out)
	}
	if len(rep.Streams) != 2 || rep.Streams[0].Stream == rep.Streams[1].Stream {
		t.Fatalf("streams %+v, want two", rep.Streams)
	}
	sizes := []int{rep.Streams[0].Size, rep.Streams[1].Size}
	t.Logf("streams %+v", rep.Streams)
	// Each stream holds its requests plus its start and stop events.
	if !(sizes[0] == 12 && sizes[1] == 22 || sizes[0] == 22 && sizes[1] == 12) {
		t.Errorf("stream sizes %v, want 12 and 22", sizes)
	}
}

// TestBucketInitChecks: an existing bucket is checked, and one without
// Object Lock is refused with what is wrong and what to do.
func TestBucketInitChecks(t *testing.T) {
	e := newS3Trail(t)
	var out, errs bytes.Buffer
	if code := runBucket([]string{"init", e.url(""), "--retention", "190d"}, &out, &errs); code != exitOK || strings.Contains(out.String(), "created") || !strings.Contains(out.String(), "ok: ready for a trail") {
		t.Errorf("bucket init on the locked bucket: exit %d\n%s%s", code, out.String(), errs.String())
	}
	e.srv.MakeBucket(t, "plain")
	out.Reset()
	errs.Reset()
	code := runBucket([]string{"init", e.srv.URL("plain", ""), "--format", "json"}, &out, &errs)
	var rep struct {
		OK       bool     `json:"ok"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("bucket init --format json: %v\n%s%s", err, out.String(), errs.String())
	}
	if code != exitFailure || rep.OK || len(rep.Problems) == 0 || !strings.Contains(strings.Join(rep.Problems, " "), "Object Lock") {
		t.Errorf("bucket init on a bucket without Object Lock: exit %d, %+v", code, rep)
	}
	t.Logf("problems: %q", rep.Problems)
}
