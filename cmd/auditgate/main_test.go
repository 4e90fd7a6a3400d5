package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditgate/auditgate/worm"
)

// binary is the auditgate command built once for these tests, so that they
// run it as a user would: flags, signals, exit codes and all.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "auditgate-cmd-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "auditgate")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build auditgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCmd runs the binary to completion and returns its output and exit code.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

func TestVersionAndHelp(t *testing.T) {
	out, _, code := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "auditgate ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	for _, c := range []string{"serve", "demo", "mock-upstream", "version"} {
		out, _, code := runCmd(t, c, "--help")
		if code != 0 || !strings.Contains(out, "Usage: auditgate "+c) {
			t.Errorf("%s --help: exit %d, %q", c, code, out)
		}
	}
	if out, _, code := runCmd(t, "config", "--help"); code != 0 || !strings.Contains(out, "check FILE") {
		t.Errorf("config --help: exit %d, %q", code, out)
	}
	if _, errOut, code := runCmd(t, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCmd(t, "serve", "--bogus"); code != exitUsage || !strings.Contains(errOut, "flag provided but not defined") {
		t.Errorf("bad flag: exit %d, %q", code, errOut)
	}
}

func TestServeWithoutUpstreamIsAUsageError(t *testing.T) {
	_, errOut, code := runCmd(t, "serve")
	if code != exitUsage || !strings.Contains(errOut, "pass --upstream URL") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	_, errOut, code = runCmd(t, "serve", "--upstream", "ftp://example.com")
	if code != exitFailure || !strings.Contains(errOut, "upstream") {
		t.Errorf("bad upstream: exit %d, %q", code, errOut)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "routes:\n  - name: openai\n    upstream: http://127.0.0.1:9\n")
	out, _, code := runCmd(t, "config", "check", good)
	if code != 0 || out != good+": ok\n" {
		t.Errorf("good file: exit %d, %q", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "listen: nowhere\nroutes:\n  - name: openai\n    upstrem: http://127.0.0.1:9\n")
	out, _, code = runCmd(t, "config", "check", bad)
	if code != exitFailure {
		t.Errorf("bad file: exit %d", code)
	}
	for _, want := range []string{bad + ":1: listen:", bad + `:4: routes[0].upstrem: unknown key "upstrem"; did you mean "upstream"?`, "problem(s) in " + bad} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runCmd(t, "config", "check", "--format", "json", bad)
	var res struct {
		OK       bool
		Problems []struct {
			File string
			Line int
			Key  string
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitFailure || res.OK || len(res.Problems) < 2 || res.Problems[0].Line != 1 {
		t.Errorf("json: exit %d, err %v, %+v\n%s", code, err, res, out)
	}
	if _, _, code := runCmd(t, "config", "check", filepath.Join(dir, "missing.yaml")); code != exitFailure {
		t.Errorf("missing file: exit %d", code)
	}
	if _, _, code := runCmd(t, "config", "check"); code != exitUsage {
		t.Errorf("no file: exit %d", code)
	}
	example := filepath.Join("..", "..", "auditgate.example.yaml")
	if out, _, code := runCmd(t, "config", "check", example); code != 0 {
		t.Errorf("the example configuration has problems:\n%s", out)
	}
}

// server is a running `auditgate serve` child.
type server struct {
	t           *testing.T
	cmd         *exec.Cmd
	proxy       string
	admin       string
	mu          sync.Mutex
	log         strings.Builder
	logLines    chan map[string]any
	exited      chan error
	exitHandled bool
	dataDir     string // the data directory: spool, key, trail
}

func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	return startServeIn(t, t.TempDir(), args...)
}

// startServeIn starts serve with dataDir as its data directory.
func startServeIn(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	return startServeEnv(t, dataDir, nil, args...)
}

// startServeEnv starts serve with dataDir as its data directory and env
// added to its environment.
func startServeEnv(t *testing.T, dataDir string, env []string, args ...string) *server {
	t.Helper()
	s := &server{t: t, logLines: make(chan map[string]any, 1024), exited: make(chan error, 1)}
	s.cmd = exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, args...)...)
	s.dataDir = dataDir
	s.cmd.Env = append(append(os.Environ(), "AUDITGATE_DATA_DIR="+s.dataDir), env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				s.logLines <- m
			}
		}
		s.exited <- s.cmd.Wait()
	}()
	t.Cleanup(func() {
		if !s.exitHandled {
			s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("auditgate serve log:\n%s", s.logText())
		}
	})
	m := s.waitLog("auditgate serving")
	s.proxy, s.admin = m["proxy"].(string), m["admin"].(string)
	return s
}

func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// waitLog returns the next log line with message msg, skipping others.
func (s *server) waitLog(msg string) map[string]any {
	s.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-s.logLines:
			if m["msg"] == msg {
				return m
			}
		case err := <-s.exited:
			s.exitHandled = true
			s.t.Fatalf("auditgate serve exited (%v) while waiting for %q", err, msg)
		case <-deadline:
			s.t.Fatalf("no %q in the log within 20 s", msg)
		}
	}
}

func (s *server) signal(sig syscall.Signal) {
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) wait() error {
	s.t.Helper()
	select {
	case err := <-s.exited:
		s.exitHandled = true
		return err
	case <-time.After(40 * time.Second):
		s.t.Fatal("auditgate serve did not exit within 40 s")
		return nil
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func named(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
}

// TestServeReload runs the gateway from a file, breaks the file and sends
// SIGHUP (the old configuration keeps serving and every problem is logged
// with its line), fixes it and sends SIGHUP again (the new route serves),
// then stops it with SIGTERM.
func TestServeReload(t *testing.T) {
	a, b := named("A"), named("B")
	defer a.Close()
	defer b.Close()
	path := filepath.Join(t.TempDir(), "auditgate.yaml")
	writeFile(t, path, "routes:\n  - name: a\n    upstream: "+a.URL+"\n")
	s := startServe(t, "--config", path)

	if code, body := get(t, s.proxy+"/x"); code != 200 || body != "A" {
		t.Fatalf("before reload: %d %q", code, body)
	}
	if code, body := get(t, s.admin+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}

	writeFile(t, path, "routes:\n  - name: b\n    upstream: ftp://nowhere\n    timeouts: {dial: soon}\n")
	s.signal(syscall.SIGHUP)
	var problems []string
	for {
		m := s.waitLog("reload rejected: configuration problem")
		problems = append(problems, m["problem"].(string))
		if len(problems) == 2 {
			break
		}
	}
	s.waitLog("reload failed: the previous configuration keeps running")
	for _, want := range []string{path + ":3: routes[0].upstream:", path + ":4: routes[0].timeouts.dial:"} {
		if !strings.Contains(strings.Join(problems, "\n"), want) {
			t.Errorf("logged problems lack %q: %q", want, problems)
		}
	}
	if code, body := get(t, s.proxy+"/x"); code != 200 || body != "A" {
		t.Fatalf("after a bad reload: %d %q, want the old route", code, body)
	}

	writeFile(t, path, "routes:\n  - name: b\n    upstream: "+b.URL+"\n")
	s.signal(syscall.SIGHUP)
	s.waitLog("configuration reloaded")
	if code, body := get(t, s.proxy+"/x"); code != 200 || body != "B" {
		t.Fatalf("after a good reload: %d %q", code, body)
	}
	_, metrics := get(t, s.admin+"/metrics")
	for _, want := range []string{`auditgate_config_reloads_total{result="failed"} 1`, `auditgate_config_reloads_total{result="ok"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	s.signal(syscall.SIGTERM)
	if err := s.wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(s.logText(), `"msg":"auditgate stopped"`) {
		t.Error("no shutdown message in the log")
	}
}

// TestServeDrainsStreamOnSIGTERM: a streamed response in flight when
// SIGTERM arrives is completed before the process exits 0.
func TestServeDrainsStreamOnSIGTERM(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		io.WriteString(w, "data: last\n\n")
	}))
	defer up.Close()
	s := startServe(t, "--upstream", up.URL)
	resp, err := http.Get(s.proxy + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "data: first\n" {
		t.Fatalf("first line %q", line)
	}
	s.signal(syscall.SIGTERM)
	s.waitLog("shutting down: draining in-flight requests")
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil || !strings.HasSuffix(string(rest), "data: last\n\n") {
		t.Fatalf("rest of stream %q, %v", rest, err)
	}
	if err := s.wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// TestServeShutdownBudget: a stream that does not end within
// shutdown_timeout is cut off at the drain's deadline, recorded, and the
// trail sealed, all within the one budget; a second signal does not wait
// for the drain at all.
func TestServeShutdownBudget(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(60 * time.Second):
		}
	}))
	defer up.Close()
	for _, c := range []struct {
		name    string
		signals int
		budget  time.Duration
	}{{"deadline", 1, 3 * time.Second}, {"second signal", 2, 30 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			conf := filepath.Join(data, "auditgate.yaml")
			writeFile(t, conf, fmt.Sprintf("shutdown_timeout: %s\nroutes:\n  - name: s\n    upstream: %s\n", c.budget, up.URL))
			s := startServeIn(t, data, "--config", conf)
			resp, err := http.Get(s.proxy + "/v1/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			id := resp.Header.Get("X-Audit-Id")
			if line, _ := bufio.NewReader(resp.Body).ReadString('\n'); line != "data: first\n" {
				t.Fatalf("first line %q", line)
			}
			start := time.Now()
			s.signal(syscall.SIGTERM)
			s.waitLog("shutting down: draining in-flight requests")
			if c.signals == 2 {
				s.signal(syscall.SIGTERM)
				s.waitLog("second signal: not waiting for in-flight requests")
			}
			err = s.wait()
			took := time.Since(start)
			// Cut-off requests make the stop unclean: exit 1, said in the log.
			if err == nil || !strings.Contains(s.logText(), "drain deadline passed: cutting off requests still running") {
				t.Errorf("exit %v; want a failed exit and the cut-off in the log", err)
			}
			// The upstream would have streamed for a minute; the stop took
			// the budget (or less) plus the few seconds cut-off requests
			// are given to end.
			if took > c.budget+10*time.Second {
				t.Errorf("stop took %v with a %v budget", took, c.budget)
			}
			var found bool
			for _, r := range trailRecords(t, filepath.Join(data, "trail"), filepath.Join(data, worm.TrustFile)) {
				if r["id"] == id && r["kind"] == "inference" {
					found = true
					if e, _ := r["error"].(map[string]any); e == nil || (e["kind"] != "client_gone" && e["kind"] != "upstream_broken") {
						t.Errorf("record of the cut-off stream: error %v", r["error"])
					}
				}
			}
			if !found {
				t.Errorf("no sealed record of the cut-off stream %s", id)
			}
		})
	}
}

// TestDemoKeep: with --keep the demo leaves its data directory, whose
// trail verifies against the trust file beside it.
func TestDemoKeep(t *testing.T) {
	out, errOut, code := runCmd(t, "demo", "--keep")
	i := strings.Index(out, "\nkept ")
	if code != 0 || i < 0 {
		t.Fatalf("demo --keep: exit %d\n%s\n%s", code, out, errOut)
	}
	data, _, _ := strings.Cut(out[i+len("\nkept "):], ":")
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(data)) })
	vout, verr, vcode := runCmd(t, "verify", "--store", filepath.Join(data, "trail"), "--trust", filepath.Join(data, worm.TrustFile))
	if vcode != 0 {
		t.Errorf("verify of the kept trail: exit %d\n%s\n%s", vcode, vout, verr)
	}
}

// TestDemo runs `auditgate demo`, the README's first command.
func TestDemo(t *testing.T) {
	out, errOut, code := runCmd(t, "demo")
	if code != 0 || !strings.Contains(out, "demo ok") {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"X-Audit-Id:", "events arrived as the upstream sent them", `auditgate_requests_total{code="200",route="default"} 2`, "exited 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
