package bench

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

func openaiClient(t *testing.T, baseURL string, hc *http.Client) openai.Client {
	return openai.NewClient(option.WithBaseURL(baseURL+"/v1/"), option.WithAPIKey("test"),
		option.WithHTTPClient(hc), option.WithMaxRetries(0))
}

func anthropicClient(t *testing.T, baseURL string, hc *http.Client) anthropic.Client {
	return anthropic.NewClient(anthropicoption.WithBaseURL(baseURL), anthropicoption.WithAPIKey("test"),
		anthropicoption.WithHTTPClient(hc), anthropicoption.WithMaxRetries(0))
}

var chatParams = openai.ChatCompletionNewParams{
	Model:    openai.ChatModelGPT4oMini,
	Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Is the trail intact?")},
}

// checkText checks got is the text a mock with opts answers, worked out apart
// from the mock's own generator.
func checkText(t *testing.T, opts MockOptions, got string) {
	t.Helper()
	switch {
	case opts.ResponseSize == 0 && got != defaultText:
		t.Errorf("text = %q, want %q", got, defaultText)
	case opts.ResponseSize > 0 && (len(got) != opts.ResponseSize || !strings.HasPrefix(got, "The gateway records every") || !strings.HasSuffix(got, ".")):
		t.Errorf("text = %q (%d bytes), want %d bytes of generated words", got, len(got), opts.ResponseSize)
	}
}

func wantChunks(opts MockOptions) int {
	if opts.StreamChunks == 0 {
		return 5
	}
	return opts.StreamChunks
}

func TestOpenAIChatSDK(t *testing.T) {
	tests := []struct {
		name      string
		opts      MockOptions
		model     string
		wantModel string
	}{
		{"defaults", MockOptions{}, "gpt-4o-mini", "gpt-4o-mini-2024-07-18"},
		{"sized", MockOptions{ResponseSize: 1000, ServedModelSuffix: "-v2"}, "gpt-4o-mini", "gpt-4o-mini-v2"},
		{"already served name", MockOptions{}, "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18"},
		{"odd model name", MockOptions{}, "my \"model\"\n", "my \"model\"\n-2024-07-18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startMock(t, tt.opts)
			client := openaiClient(t, srv.URL(), httpClient(t))
			params := chatParams
			params.Model = tt.model
			got, err := client.Chat.Completions.New(t.Context(), params)
			if err != nil {
				t.Fatalf("chat completion: %v", err)
			}
			if len(got.Choices) != 1 {
				t.Fatalf("%d choices, want 1", len(got.Choices))
			}
			c := got.Choices[0]
			checkText(t, tt.opts, c.Message.Content)
			if c.Message.Role != "assistant" || c.FinishReason != "stop" {
				t.Errorf("role %q, finish reason %q; want assistant, stop", c.Message.Role, c.FinishReason)
			}
			if got.Model != tt.wantModel {
				t.Errorf("model = %q, want %q", got.Model, tt.wantModel)
			}
			if !strings.HasPrefix(got.ID, "chatcmpl-") || got.SystemFingerprint != systemFingerprint || got.Object != "chat.completion" {
				t.Errorf("id %q, fingerprint %q, object %q", got.ID, got.SystemFingerprint, got.Object)
			}
			u := got.Usage
			if wantOut := int64(len(c.Message.Content)+3) / 4; u.CompletionTokens != wantOut || u.PromptTokens < 1 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage = %s, want %d completion tokens and a consistent total", u.RawJSON(), wantOut)
			}
			if !u.PromptTokensDetails.JSON.CachedTokens.Valid() || !u.CompletionTokensDetails.JSON.ReasoningTokens.Valid() {
				t.Errorf("usage lacks token details: %s", u.RawJSON())
			}
		})
	}
}

func TestOpenAIChatStreamSDK(t *testing.T) {
	tests := []struct {
		name         string
		opts         MockOptions
		includeUsage bool
	}{
		{"defaults with usage", MockOptions{}, true},
		{"defaults without usage", MockOptions{}, false},
		{"many chunks", MockOptions{ResponseSize: 777, StreamChunks: 9}, true},
		{"more chunks than words", MockOptions{ResponseSize: 12, StreamChunks: 8}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startMock(t, tt.opts)
			client := openaiClient(t, srv.URL(), httpClient(t))
			plain, err := client.Chat.Completions.New(t.Context(), chatParams)
			if err != nil {
				t.Fatalf("chat completion: %v", err)
			}

			params := chatParams
			if tt.includeUsage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := client.Chat.Completions.NewStreaming(t.Context(), params)
			defer stream.Close()
			var acc openai.ChatCompletionAccumulator
			contentChunks := 0
			for stream.Next() {
				chunk := stream.Current()
				if !acc.AddChunk(chunk) {
					t.Fatalf("accumulator refused chunk %s", chunk.RawJSON())
				}
				if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.JSON.Content.Valid() && chunk.Choices[0].Delta.Role == "" {
					contentChunks++
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if got, want := acc.Choices[0].Message.Content, plain.Choices[0].Message.Content; got != want {
				t.Errorf("streamed content = %q, want the plain answer %q", got, want)
			}
			if want := wantChunks(tt.opts); contentChunks != want {
				t.Errorf("%d content chunks, want %d", contentChunks, want)
			}
			if acc.Choices[0].FinishReason != "stop" || acc.Model != plain.Model {
				t.Errorf("finish reason %q, model %q; want stop, %q", acc.Choices[0].FinishReason, acc.Model, plain.Model)
			}
			switch u := acc.Usage; {
			case tt.includeUsage && (u.CompletionTokens != plain.Usage.CompletionTokens || u.PromptTokens < 1 || u.TotalTokens != u.PromptTokens+u.CompletionTokens):
				t.Errorf("streamed usage = %s, want %d completion tokens", u.RawJSON(), plain.Usage.CompletionTokens)
			case !tt.includeUsage && u.TotalTokens != 0:
				t.Errorf("usage %s sent without include_usage", u.RawJSON())
			}
		})
	}
}

func TestOpenAICompletionSDK(t *testing.T) {
	srv := startMock(t, MockOptions{ResponseSize: 300, StreamChunks: 4})
	client := openaiClient(t, srv.URL(), httpClient(t))
	params := openai.CompletionNewParams{
		Model:  openai.CompletionNewParamsModelGPT3_5TurboInstruct,
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
	}
	plain, err := client.Completions.New(t.Context(), params)
	if err != nil {
		t.Fatalf("completion: %v", err)
	}
	checkText(t, MockOptions{ResponseSize: 300}, plain.Choices[0].Text)
	if plain.Model != "gpt-3.5-turbo-instruct-2024-07-18" || plain.Object != "text_completion" || plain.Usage.CompletionTokens != 75 {
		t.Errorf("model %q, object %q, usage %s", plain.Model, plain.Object, plain.Usage.RawJSON())
	}

	stream := client.Completions.NewStreaming(t.Context(), params)
	defer stream.Close()
	var text strings.Builder
	var finish string
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			text.WriteString(c.Text)
			if c.FinishReason != "" {
				finish = string(c.FinishReason)
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if text.String() != plain.Choices[0].Text || finish != "stop" {
		t.Errorf("streamed text %q (finish %q), want %q (stop)", text.String(), finish, plain.Choices[0].Text)
	}
}

func TestOpenAIEmbeddingsSDK(t *testing.T) {
	srv := startMock(t, MockOptions{})
	client := openaiClient(t, srv.URL(), httpClient(t))
	tests := []struct {
		name   string
		input  openai.EmbeddingNewParamsInputUnion
		texts  []string // what each vector is derived from
		format openai.EmbeddingNewParamsEncodingFormat
	}{
		{"string as floats", openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")}, []string{"hello"}, openai.EmbeddingNewParamsEncodingFormatFloat},
		{"string as base64", openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")}, []string{"hello"}, openai.EmbeddingNewParamsEncodingFormatBase64},
		{"string, SDK default", openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")}, []string{"hello"}, ""},
		{"strings as base64", openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b", "c"}}, []string{"a", "b", "c"}, openai.EmbeddingNewParamsEncodingFormatBase64},
		{"tokens", openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{1, 2, 3}}, []string{"[1,2,3]"}, ""},
		{"token arrays", openai.EmbeddingNewParamsInputUnion{OfArrayOfTokenArrays: [][]int64{{1}, {2, 3}}}, []string{"[1]", "[2,3]"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
				Model: openai.EmbeddingModelTextEmbedding3Small, Input: tt.input, EncodingFormat: tt.format,
			})
			if err != nil {
				t.Fatalf("embeddings: %v", err)
			}
			if len(got.Data) != len(tt.texts) {
				t.Fatalf("%d embeddings, want %d", len(got.Data), len(tt.texts))
			}
			for i, e := range got.Data {
				if raw := e.JSON.Embedding.Raw(); (tt.format == openai.EmbeddingNewParamsEncodingFormatBase64) != strings.HasPrefix(raw, `"`) {
					t.Errorf("embedding %d is %.20s..., not in the requested format %q", i, raw, tt.format)
				}
				checkVector(t, e.Embedding, embed(tt.texts[i]))
				if e.Index != int64(i) {
					t.Errorf("embedding %d has index %d", i, e.Index)
				}
			}
			if got.Model != "text-embedding-3-small-2024-07-18" || got.Usage.PromptTokens < 1 || got.Usage.TotalTokens != got.Usage.PromptTokens {
				t.Errorf("model %q, usage %s", got.Model, got.Usage.RawJSON())
			}
		})
	}
}

// checkVector checks a decoded embedding against the unit vector it should
// carry, at float32 precision, which is what both encodings hold.
func checkVector(t *testing.T, got []float64, want [embeddingDims]float32) {
	t.Helper()
	if len(got) != embeddingDims {
		t.Fatalf("vector has %d values, want %d", len(got), embeddingDims)
	}
	var norm float64
	for i, v := range got {
		if float32(v) != want[i] {
			t.Errorf("value %d = %v, want %v", i, v, want[i])
		}
		norm += v * v
	}
	if math.Abs(norm-1) > 1e-5 {
		t.Errorf("vector norm² = %v, want 1", norm)
	}
}

// TestHandlerInOwnServer serves Handler from a plain fasthttp server on an
// in-memory listener, and checks the mock answers embeddings in whatever
// format the SDK asks for by default.
func TestHandlerInOwnServer(t *testing.T) {
	m := NewMock(MockOptions{})
	ln := fasthttputil.NewInmemoryListener()
	var format gjson.Result
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		format = gjson.GetBytes(ctx.PostBody(), "encoding_format")
		m.Handler(ctx)
	}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shut down: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return ln.Dial() }}
	t.Cleanup(tr.CloseIdleConnections)

	client := openaiClient(t, "http://mock.invalid", &http.Client{Transport: tr})
	got, err := client.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
		Model: openai.EmbeddingModelTextEmbedding3Small,
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")},
	})
	if err != nil {
		t.Fatalf("embeddings: %v", err)
	}
	t.Logf("openai-go sent encoding_format %s by default", format.Raw)
	raw := got.Data[0].JSON.Embedding.Raw()
	if (format.Str == "base64") != strings.HasPrefix(raw, `"`) {
		t.Errorf("asked for encoding_format %s, got embedding %.20s...", format.Raw, raw)
	}
	checkVector(t, got.Data[0].Embedding, embed("hello"))
	if m.Requests() != 1 {
		t.Errorf("Requests() = %d, want 1", m.Requests())
	}
}

var messageParams = anthropic.MessageNewParams{
	Model:     anthropic.ModelClaudeHaiku4_5,
	MaxTokens: 256,
	Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Is the trail intact?"))},
}

func TestAnthropicMessagesSDK(t *testing.T) {
	tests := []struct {
		name string
		opts MockOptions
	}{
		{"defaults", MockOptions{}},
		{"sized", MockOptions{ResponseSize: 500, StreamChunks: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startMock(t, tt.opts)
			client := anthropicClient(t, srv.URL(), httpClient(t))
			plain, err := client.Messages.New(t.Context(), messageParams)
			if err != nil {
				t.Fatalf("message: %v", err)
			}
			if len(plain.Content) != 1 || plain.Content[0].Type != "text" {
				t.Fatalf("content = %+v, want one text block", plain.Content)
			}
			text := plain.Content[0].Text
			checkText(t, tt.opts, text)
			if plain.Model != "claude-haiku-4-5-2024-07-18" || plain.StopReason != anthropic.StopReasonEndTurn || !strings.HasPrefix(plain.ID, "msg_") {
				t.Errorf("model %q, stop reason %q, id %q", plain.Model, plain.StopReason, plain.ID)
			}
			if u := plain.Usage; u.InputTokens < 1 || u.OutputTokens != int64(len(text)+3)/4 {
				t.Errorf("usage = %s", u.RawJSON())
			}

			stream := client.Messages.NewStreaming(t.Context(), messageParams)
			defer stream.Close()
			var acc anthropic.Message
			deltas := 0
			for stream.Next() {
				event := stream.Current()
				if err := acc.Accumulate(event); err != nil {
					t.Fatalf("accumulate %s: %v", event.Type, err)
				}
				if event.Type == "content_block_delta" {
					deltas++
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if len(acc.Content) != 1 || acc.Content[0].Text != text {
				t.Fatalf("streamed content = %+v, want the plain text %q", acc.Content, text)
			}
			if want := wantChunks(tt.opts); deltas != want {
				t.Errorf("%d deltas, want %d", deltas, want)
			}
			if acc.StopReason != anthropic.StopReasonEndTurn || acc.Model != plain.Model || acc.Usage.OutputTokens != plain.Usage.OutputTokens || acc.Usage.InputTokens < 1 {
				t.Errorf("streamed stop reason %q, model %q, usage %s", acc.StopReason, acc.Model, acc.Usage.RawJSON())
			}
		})
	}
}

func TestSDKErrors(t *testing.T) {
	srv := startMock(t, MockOptions{})
	hc := httpClient(t)

	oc := openaiClient(t, srv.URL(), hc)
	_, err := oc.Chat.Completions.New(t.Context(), chatParams, option.WithHeader("X-Mock-Status", "503"))
	var oerr *openai.Error
	if !errors.As(err, &oerr) || oerr.StatusCode != 503 || oerr.Type != "server_error" {
		t.Errorf("openai error = %v, want a 503 server_error", err)
	}

	ac := anthropicClient(t, srv.URL(), hc)
	_, err = ac.Messages.New(t.Context(), messageParams, anthropicoption.WithHeader("X-Mock-Status", "529"))
	var aerr *anthropic.Error
	if !errors.As(err, &aerr) || aerr.StatusCode != 529 || !strings.Contains(aerr.RawJSON(), "overloaded_error") {
		t.Errorf("anthropic error = %v, want a 529 overloaded_error", err)
	}
}
