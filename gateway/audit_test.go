package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/auditgate/auditgate/bench"
	"github.com/auditgate/auditgate/capture"
)

// memSink keeps every record line.
type memSink struct {
	mu    sync.Mutex
	down  error // what Ready and AppendSync return
	read  int   // lines returned by next
	lines [][]byte
	more  chan struct{}
}

func newMemSink() *memSink { return &memSink{more: make(chan struct{}, 1024)} }

func (s *memSink) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (s *memSink) AppendSync(ctx context.Context, line []byte) error {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down != nil {
		return down
	}
	return s.AppendWait(ctx, line)
}

func (s *memSink) Append(line []byte) error {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down != nil {
		return down
	}
	return s.AppendWait(context.Background(), line)
}

func (s *memSink) AppendWait(_ context.Context, line []byte) error {
	s.mu.Lock()
	s.lines = append(s.lines, append([]byte(nil), line...))
	s.mu.Unlock()
	s.more <- struct{}{}
	return nil
}

// next returns the next record in order, decoded, and its raw line.
func (s *memSink) next(t *testing.T) (map[string]any, []byte) {
	t.Helper()
	select {
	case <-s.more:
	case <-time.After(10 * time.Second):
		t.Fatal("no record within 10 s")
	}
	s.mu.Lock()
	line := s.lines[s.read]
	s.read++
	s.mu.Unlock()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("record is not JSON: %v\n%s", err, line)
	}
	return m, line
}

func get(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

const (
	openAIKey    = "sk-proj-TESTKEYabcdefghijklmnopqrstuvwxyz0123456789"
	anthropicKey = "sk-ant-api03-TESTKEYabcdefghijklmnopqrstuvwxyz0123456789"
)

// TestSDKRecords sends chats through the gateway with the official OpenAI
// and Anthropic SDKs, streamed and not, and checks each record: requested
// and served model, the answer (reassembled when streamed) equal to the
// SDK's, usage, caller key id, and that no API key appears in any record or
// log line.
func TestSDKRecords(t *testing.T) {
	mock, err := bench.StartMock(t.Context(), "127.0.0.1:0", bench.MockOptions{ResponseSize: 400, StreamChunks: 9})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mock.Close() })
	capt, err := capture.NewCapturer(capture.CapturerOptions{
		Stream:   "test-stream",
		Identity: capture.IdentityOptions{Secret: []byte("0123456789abcdef0123456789abcdef")},
	})
	if err != nil {
		t.Fatal(err)
	}
	sink := newMemSink()
	core, logs := observer.New(zapcore.DebugLevel)
	opts := oneRoute(mock.URL())
	opts.Audit = &AuditOptions{Capturer: capt, Trail: sink}
	g, err := New(opts, nil, zap.New(core), nil)
	if err != nil {
		t.Fatal(err)
	}
	url := serveOn(t, g)

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	oai := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey(openAIKey), option.WithHTTPClient(hc), option.WithMaxRetries(0))
	ant := anthropic.NewClient(anthropicoption.WithBaseURL(url), anthropicoption.WithAPIKey(anthropicKey), anthropicoption.WithHTTPClient(hc), anthropicoption.WithMaxRetries(0))
	chat := openai.ChatCompletionNewParams{
		Model:         openai.ChatModelGPT4oMini,
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Applicant jane.doe@example.com asks for 20k. Approve?")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	msg := anthropic.MessageNewParams{
		Model:     anthropic.ModelClaudeSonnet4_5,
		MaxTokens: 256,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Explain the denial of loan 1742."))},
	}
	var lines [][]byte

	t.Run("openai", func(t *testing.T) {
		resp, err := oai.Chat.Completions.New(t.Context(), chat)
		if err != nil {
			t.Fatal(err)
		}
		rec, line := sink.next(t)
		lines = append(lines, line)
		checkModel(t, rec, "openai", "gpt-4o-mini", resp.Model)
		if got := get(rec, "model", "version"); got != resp.SystemFingerprint {
			t.Errorf("model.version %v, want the fingerprint %q", got, resp.SystemFingerprint)
		}
		out, _ := rec["output"].([]any)
		if len(out) != 1 || get(out[0].(map[string]any), "message", "content") != resp.Choices[0].Message.Content {
			t.Errorf("output %v, want the SDK's answer %q", rec["output"], resp.Choices[0].Message.Content)
		}
		checkUsage(t, rec, resp.Usage.PromptTokens, resp.Usage.CompletionTokens)
		if get(rec, "operation") != "chat" || get(rec, "kind") != "inference" || get(rec, "stream") != "test-stream" {
			t.Errorf("operation/kind/stream: %v %v %v", rec["operation"], rec["kind"], rec["stream"])
		}
		if !strings.Contains(string(line), "[REDACTED:email:") {
			t.Errorf("the email in the prompt was not redacted:\n%s", line)
		}
	})

	t.Run("openai streamed", func(t *testing.T) {
		stream := oai.Chat.Completions.NewStreaming(t.Context(), chat)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		rec, line := sink.next(t)
		lines = append(lines, line)
		checkModel(t, rec, "openai", "gpt-4o-mini", acc.Model)
		out, _ := rec["output"].([]any)
		if len(out) != 1 || get(out[0].(map[string]any), "message", "content") != acc.Choices[0].Message.Content ||
			get(out[0].(map[string]any), "finish_reason") != "stop" {
			t.Errorf("output %v, want the reassembled answer %q", rec["output"], acc.Choices[0].Message.Content)
		}
		checkUsage(t, rec, acc.Usage.PromptTokens, acc.Usage.CompletionTokens)
		if rec["truncated"] != false || len(rec["flags"].([]any)) != 0 {
			t.Errorf("truncated %v flags %v", rec["truncated"], rec["flags"])
		}
	})

	t.Run("anthropic", func(t *testing.T) {
		resp, err := ant.Messages.New(t.Context(), msg)
		if err != nil {
			t.Fatal(err)
		}
		rec, line := sink.next(t)
		lines = append(lines, line)
		checkModel(t, rec, "anthropic", string(msg.Model), string(resp.Model))
		if got := get(rec, "output", "content"); got == nil || !strings.Contains(string(line), resp.Content[0].Text) {
			t.Errorf("output %v, want the SDK's text %q", got, resp.Content[0].Text)
		}
		checkUsage(t, rec, resp.Usage.InputTokens, resp.Usage.OutputTokens)
	})

	t.Run("anthropic streamed", func(t *testing.T) {
		stream := ant.Messages.NewStreaming(t.Context(), msg)
		var acc anthropic.Message
		for stream.Next() {
			if err := acc.Accumulate(stream.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		rec, line := sink.next(t)
		lines = append(lines, line)
		checkModel(t, rec, "anthropic", string(msg.Model), string(acc.Model))
		if get(rec, "output", "stop_reason") != string(acc.StopReason) || !strings.Contains(string(line), acc.Content[0].Text) {
			t.Errorf("output %v, want the reassembled text %q", rec["output"], acc.Content[0].Text)
		}
		checkUsage(t, rec, acc.Usage.InputTokens, acc.Usage.OutputTokens)
	})

	keyIDs := map[any]bool{}
	for _, l := range lines {
		var m map[string]any
		json.Unmarshal(l, &m)
		keyIDs[get(m, "caller", "key_id")] = true
	}
	if len(keyIDs) != 2 || keyIDs[nil] {
		t.Errorf("want one key id per API key (2), got %v", keyIDs)
	}
	all := bytes.Join(lines, []byte("\n"))
	for _, e := range logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		all = append(append(all, e.Message...), b...)
	}
	for _, key := range []string{openAIKey, anthropicKey, "TESTKEY"} {
		if bytes.Contains(all, []byte(key)) {
			t.Errorf("an API key reached a record or the log")
		}
	}
}

func checkModel(t *testing.T, rec map[string]any, provider, requested, served string) {
	t.Helper()
	if get(rec, "model", "provider") != provider || get(rec, "model", "requested") != requested || get(rec, "model", "served") != served || served == "" {
		t.Errorf("model %v, want provider %s requested %s served %s", rec["model"], provider, requested, served)
	}
}

func checkUsage[T ~int64](t *testing.T, rec map[string]any, in, out T) {
	t.Helper()
	if get(rec, "usage", "input_tokens") != float64(in) || get(rec, "usage", "output_tokens") != float64(out) || in == 0 {
		t.Errorf("usage %v, want %d in and %d out", rec["usage"], in, out)
	}
}

// serveOn serves g on a loopback port until the test ends.
func serveOn(t *testing.T, g *Gateway) string {
	t.Helper()
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(10 * time.Second)
		defer cancel()
		g.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}
