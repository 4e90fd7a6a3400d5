package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/auditgate/auditgate/bench"
	"github.com/auditgate/auditgate/worm"
)

// runDemo shows the whole path on loopback: a mock model API, the gateway
// in front of it as a child `auditgate serve`, a chat and a streamed chat
// sent through it, a clean shutdown that seals the trail, then the
// auditor's side: verify, show and prove on the trail just written. It
// exits 0 only if every check held, and leaves nothing running.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "demo [flags]", stderr)
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this `duration`")
	keep := fs.Bool("keep", false, "keep the data directory (trail, spool, keys) and say where, to look at the records afterwards")
	if code, ok := parseArgs(fs, args, stdout); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	d := &demo{out: stdout, client: &http.Client{Timeout: 30 * time.Second}, keep: *keep}
	err := d.run(ctx)
	d.cleanup()
	if err != nil {
		fmt.Fprintf(stdout, "\ndemo FAILED: %v\n", err)
		if d.log.Len() > 0 {
			fmt.Fprintf(stdout, "\ngateway log (last lines):\n%s", tail(d.log.String(), 15))
		}
		return exitFailure
	}
	fmt.Fprintln(stdout, "\ndemo ok: every check passed")
	return exitOK
}

type demo struct {
	out      io.Writer
	dir      string // the gateway's data directory, removed at the end unless keep
	keep     bool
	data     string
	chatID   string
	streamID string
	client   *http.Client
	mock     *bench.MockServer
	child    *exec.Cmd
	exited   chan error
	log      syncBuffer
}

func (d *demo) run(ctx context.Context) error {
	var err error
	d.mock, err = bench.StartMock(ctx, "127.0.0.1:0", bench.MockOptions{StreamChunks: 8, ChunkDelay: 25 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("start mock upstream: %w", err)
	}
	proxy, admin, err := freePort(), freePort(), error(nil)
	if proxy == "" || admin == "" {
		return errors.New("find free loopback ports")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	if d.dir, err = os.MkdirTemp("", "auditgate-demo-"); err != nil {
		return err
	}
	d.data = filepath.Join(d.dir, "data")
	d.child = exec.Command(exe, "serve", "--upstream", d.mock.URL(), "--listen", proxy, "--admin", admin)
	d.child.Env = append(os.Environ(), "AUDITGATE_DATA_DIR="+d.data)
	d.child.Stdout, d.child.Stderr = &d.log, &d.log
	if err := d.child.Start(); err != nil {
		return fmt.Errorf("start auditgate serve: %w", err)
	}
	d.exited = make(chan error, 1)
	go func() { d.exited <- d.child.Wait() }()

	fmt.Fprintln(d.out, "auditgate demo")
	fmt.Fprintf(d.out, "  mock model API   %s (OpenAI-compatible, built in)\n", d.mock.URL())
	fmt.Fprintf(d.out, "  gateway          http://%s  ->  mock   (auditgate serve --upstream %s)\n", proxy, d.mock.URL())
	fmt.Fprintf(d.out, "  admin            http://%s/metrics\n", admin)
	fmt.Fprintf(d.out, "  data directory   %s (trail store, spool, signing key)\n\n", d.data)
	if err := d.waitReady(ctx, "http://"+admin+"/readyz"); err != nil {
		return err
	}

	base := "http://" + proxy
	content, err := d.chat(ctx, base)
	if err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	if err := d.stream(ctx, base, content); err != nil {
		return fmt.Errorf("streamed chat: %w", err)
	}
	if err := d.metrics(ctx, "http://"+admin+"/metrics"); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := d.shutdown(); err != nil {
		return err
	}
	if err := d.verify(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if err := d.records(ctx, content); err != nil {
		return fmt.Errorf("records: %w", err)
	}
	return d.prove()
}

const (
	demoKey    = "sk-demo-not-a-real-key-0123456789abcdef"
	demoPrompt = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a loan officer."},{"role":"user","content":"Should applicant 1742 (jane.doe@example.com) get the loan?"}]`
)

func (d *demo) chat(ctx context.Context, base string) (string, error) {
	fmt.Fprintln(d.out, "1. chat completion through the gateway")
	start := time.Now()
	resp, body, err := d.post(ctx, base+"/v1/chat/completions", demoPrompt+`}`)
	if err != nil {
		return "", err
	}
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var c struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &c); err != nil || len(c.Choices) == 0 {
		return "", fmt.Errorf("answer is not a chat completion: %.200s", body)
	}
	id := resp.Header.Get("X-Audit-Id")
	if id == "" {
		return "", errors.New("response has no X-Audit-Id")
	}
	d.chatID = id
	fmt.Fprintf(d.out, "   POST /v1/chat/completions -> %d in %s, served model %s, %d+%d tokens\n",
		resp.StatusCode, took.Round(time.Microsecond), c.Model, c.Usage.Prompt, c.Usage.Completion)
	fmt.Fprintf(d.out, "   X-Audit-Id: %s\n", id)
	fmt.Fprintf(d.out, "   reply: %q\n\n", shorten(c.Choices[0].Message.Content, 70))
	return c.Choices[0].Message.Content, nil
}

func (d *demo) stream(ctx context.Context, base, want string) error {
	fmt.Fprintln(d.out, "2. streamed chat completion through the gateway")
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(demoPrompt+`,"stream":true,"stream_options":{"include_usage":true}}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+demoKey)
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	var (
		text         strings.Builder
		events       int
		first, last  time.Duration
		done, usage  bool
		scanner      = bufio.NewScanner(resp.Body)
		chunkPayload struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Usage *struct{} `json:"usage"`
		}
	)
	for scanner.Scan() {
		data, ok := strings.CutPrefix(scanner.Text(), "data: ")
		if !ok {
			continue
		}
		events++
		if events == 1 {
			first = time.Since(start)
		}
		last = time.Since(start)
		if data == "[DONE]" {
			done = true
			break
		}
		chunkPayload.Choices, chunkPayload.Usage = nil, nil
		if err := json.Unmarshal([]byte(data), &chunkPayload); err != nil {
			return fmt.Errorf("event %d is not JSON: %.100s", events, data)
		}
		for _, c := range chunkPayload.Choices {
			text.WriteString(c.Delta.Content)
		}
		usage = usage || chunkPayload.Usage != nil
	}
	if err := scanner.Err(); err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	fmt.Fprintf(d.out, "   POST /v1/chat/completions (stream) -> %d, %d events, first after %s, last after %s\n",
		resp.StatusCode, events, first.Round(time.Microsecond), last.Round(time.Microsecond))
	d.streamID = resp.Header.Get("X-Audit-Id")
	fmt.Fprintf(d.out, "   X-Audit-Id: %s\n", d.streamID)
	switch {
	case !done:
		return errors.New("stream ended without data: [DONE]")
	case !usage:
		return errors.New("stream carried no usage chunk")
	case text.String() != want:
		return fmt.Errorf("reassembled reply %q differs from the non-streamed one %q", shorten(text.String(), 60), shorten(want, 60))
	case last-first < 100*time.Millisecond:
		return fmt.Errorf("events arrived within %s although the upstream spaced them 25 ms apart: the stream was buffered", last-first)
	}
	fmt.Fprintln(d.out, "   events arrived as the upstream sent them; the reassembled reply equals the non-streamed one")
	fmt.Fprintln(d.out)
	return nil
}

func (d *demo) metrics(ctx context.Context, url string) error {
	fmt.Fprintln(d.out, "3. the gateway's metrics")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	const want = `auditgate_requests_total{code="200",route="default"} 2`
	for _, line := range strings.Split(string(body), "\n") {
		if strings.Contains(line, `route="(none)"`) {
			continue
		}
		if strings.HasPrefix(line, "auditgate_requests_total") || strings.HasPrefix(line, "auditgate_added_latency_seconds_sum") ||
			strings.HasPrefix(line, "auditgate_added_latency_seconds_count") || strings.HasPrefix(line, "auditgate_trail_records_total") ||
			strings.HasPrefix(line, "auditgate_trail_fsyncs_total") {
			fmt.Fprintf(d.out, "   %s\n", line)
		}
	}
	if !bytes.Contains(body, []byte(want)) {
		return fmt.Errorf("metrics lack %q", want)
	}
	fmt.Fprintln(d.out)
	return nil
}

func (d *demo) shutdown() error {
	fmt.Fprintln(d.out, "4. graceful shutdown")
	start := time.Now()
	if err := d.child.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal gateway: %w", err)
	}
	select {
	case err := <-d.exited:
		d.child = nil
		if err != nil {
			return fmt.Errorf("gateway exited with %v after SIGTERM", err)
		}
	case <-time.After(35 * time.Second):
		return errors.New("gateway did not exit within 35 s of SIGTERM")
	}
	fmt.Fprintf(d.out, "   SIGTERM -> drained, sealed the trail and exited 0 in %s\n\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// The auditor's side, from here on, reads only the sealed trail and the
// trust file, as someone who fetched them would.

func (d *demo) store() string { return filepath.Join(d.data, "trail") }
func (d *demo) trust() string { return filepath.Join(d.data, worm.TrustFile) }

// run runs one of auditgate's commands in this process and prints its
// output indented.
func (d *demo) cmd(name string, fn func(args []string, stdout, stderr io.Writer) int, args ...string) (string, error) {
	var out, errs bytes.Buffer
	code := fn(args, &out, &errs)
	fmt.Fprintf(d.out, "   $ auditgate %s %s\n", name, strings.Join(args, " "))
	for _, line := range strings.Split(strings.TrimRight(out.String()+errs.String(), "\n"), "\n") {
		fmt.Fprintf(d.out, "     %s\n", line)
	}
	if code != exitOK {
		return out.String(), fmt.Errorf("exit code %d", code)
	}
	return out.String(), nil
}

func (d *demo) verify() error {
	fmt.Fprintln(d.out, "5. the auditor verifies the sealed trail offline")
	out, err := d.cmd("verify", runVerify, d.store(), "--trust", d.trust())
	if err != nil {
		return err
	}
	if !strings.Contains(out, "ok: ") {
		return fmt.Errorf("verify did not say OK: %s", out)
	}
	fmt.Fprintln(d.out)
	return nil
}

// records reads both exchanges' records from the trail and checks them.
func (d *demo) records(ctx context.Context, reply string) error {
	fmt.Fprintln(d.out, "6. the chat's record, found by its X-Audit-Id")
	if _, err := d.cmd("show", runShow, d.chatID, "--store", d.store(), "--trust", d.trust()); err != nil {
		return err
	}
	r := &worm.Reader{Store: mustStore(d.store())}
	type rec struct {
		ID     string `json:"id"`
		Caller struct {
			KeyID string `json:"key_id"`
		} `json:"caller"`
		Output []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"output"`
		Redactions []struct{ Where, Type string }
	}
	var chat, streamed rec
	for _, x := range []struct {
		id  string
		dst *rec
	}{{d.chatID, &chat}, {d.streamID, &streamed}} {
		_, _, line, _, err := r.Find(ctx, x.id)
		if err != nil {
			return fmt.Errorf("record %s: %w", x.id, err)
		}
		if bytes.Contains(line, []byte(demoKey)) {
			return errors.New("the API key reached the trail")
		}
		if err := json.Unmarshal(line, x.dst); err != nil {
			return fmt.Errorf("record %s is not JSON: %w", x.id, err)
		}
	}
	switch {
	case len(chat.Redactions) == 0:
		return errors.New("the e-mail address in the prompt was not redacted")
	case len(streamed.Output) == 0 || streamed.Output[0].Message.Content != reply:
		return errors.New("the streamed chat's record does not hold the reassembled reply")
	case streamed.Caller.KeyID != chat.Caller.KeyID || chat.Caller.KeyID == "":
		return errors.New("one API key got two key ids")
	}
	fmt.Fprintln(d.out, "   the API key is recorded only as its key id; the e-mail address is redacted;")
	fmt.Fprintln(d.out, "   the streamed chat's record holds the reassembled reply, with the same caller key id")
	fmt.Fprintln(d.out)
	return nil
}

// prove writes a proof for the chat's record and checks it, then checks
// that an altered copy fails.
func (d *demo) prove() error {
	fmt.Fprintln(d.out, "7. a proof of that one record, checked alone")
	var proof, errs bytes.Buffer
	if code := runProve([]string{d.chatID, "--store", d.store(), "--trust", d.trust()}, &proof, &errs); code != exitOK {
		return fmt.Errorf("prove: %s", errs.String())
	}
	path := filepath.Join(d.dir, "proof.txt")
	if err := os.WriteFile(path, proof.Bytes(), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   $ auditgate prove %s --store %s > proof.txt   (%d bytes)\n", d.chatID, d.store(), proof.Len())
	if _, err := d.cmd("verify-proof", runVerifyProof, path, "--trust", d.trust()); err != nil {
		return err
	}
	altered := bytes.Replace(proof.Bytes(), []byte(`"status":200`), []byte(`"status":403`), 1)
	if bytes.Equal(altered, proof.Bytes()) {
		return errors.New("the proof does not carry the record's status")
	}
	if err := os.WriteFile(path, altered, 0o600); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "   the same proof with the record's status changed from 200 to 403:")
	if _, err := d.cmd("verify-proof", runVerifyProof, path, "--trust", d.trust()); err == nil {
		return errors.New("an altered record passed verify-proof")
	}
	fmt.Fprintln(d.out)
	return nil
}

func mustStore(url string) worm.Store {
	s, err := worm.OpenStore(url)
	if err != nil {
		panic(err)
	}
	return s
}

func (d *demo) waitReady(ctx context.Context, url string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := d.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-d.exited:
			d.child = nil
			return fmt.Errorf("auditgate serve exited before it was ready: %v", err)
		case <-ctx.Done():
			return errors.New("auditgate serve was not ready in time")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *demo) post(ctx context.Context, url, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+demoKey)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// cleanup stops whatever still runs, whichever way the demo ended.
func (d *demo) cleanup() {
	if d.child != nil && d.child.Process != nil {
		_ = d.child.Process.Kill()
		<-d.exited
	}
	if d.mock != nil {
		_ = d.mock.Close()
	}
	switch {
	case d.dir != "" && d.keep:
		fmt.Fprintf(d.out, "\nkept %s: try auditgate search --store %s\n", d.data, filepath.Join(d.data, "trail"))
	case d.dir != "":
		_ = os.RemoveAll(d.dir)
	}
}

// freePort returns a loopback address that was free a moment ago.
func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	defer ln.Close()
	return ln.Addr().String()
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
