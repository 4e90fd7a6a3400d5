package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/auditgate/auditgate/bench"
)

// TestOpenAISDKThroughGateway points the official OpenAI Go client at the
// mock upstream directly and through the gateway, and checks both get the
// same results: a chat completion, a streamed one, and an embedding.
func TestOpenAISDKThroughGateway(t *testing.T) {
	mock, err := bench.StartMock(t.Context(), "127.0.0.1:0", bench.MockOptions{ResponseSize: 600, StreamChunks: 12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mock.Close() })
	gw := startGateway(t, oneRoute(mock.URL()))

	client := func(base string) openai.Client {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		return openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("sk-test-key"),
			option.WithHTTPClient(&http.Client{Transport: tr}), option.WithMaxRetries(0))
	}
	direct, proxied := client(mock.URL()), client(gw.URL)

	chat := openai.ChatCompletionNewParams{
		Model: openai.ChatModelGPT4oMini,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("You decide loan applications."),
			openai.UserMessage("Applicant 1742: income 52k, debt 9k. Approve?"),
		},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}

	t.Run("chat", func(t *testing.T) {
		params := chat
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
		want, err := direct.Chat.Completions.New(t.Context(), params)
		if err != nil {
			t.Fatal(err)
		}
		var resp *http.Response
		got, err := proxied.Chat.Completions.New(t.Context(), params, option.WithResponseInto(&resp))
		if err != nil {
			t.Fatal(err)
		}
		if got.Choices[0].Message.Content != want.Choices[0].Message.Content || got.Model != want.Model ||
			got.SystemFingerprint != want.SystemFingerprint || got.Usage.RawJSON() != want.Usage.RawJSON() || got.Choices[0].FinishReason != "stop" {
			t.Errorf("through the gateway: %+v\ndirect: %+v", got, want)
		}
		ex := gw.rec.wait(t, 1)[0]
		if resp.Header.Get("X-Audit-Id") != ex.AuditID.String() || !strings.Contains(string(ex.RespBody.Data), want.Choices[0].Message.Content) {
			t.Errorf("recorded exchange does not match the SDK's response")
		}
		if got := ex.ReqHeaders["Authorization"]; len(got) != 1 || got[0] != "Bearer sk-test-key" {
			t.Errorf("the exchange handed to the recorder carries the request headers as sent; got %q", got)
		}
	})

	t.Run("streamed chat", func(t *testing.T) {
		accumulate := func(c openai.Client) (openai.ChatCompletionAccumulator, int) {
			stream := c.Chat.Completions.NewStreaming(t.Context(), chat)
			var acc openai.ChatCompletionAccumulator
			chunks := 0
			for stream.Next() {
				acc.AddChunk(stream.Current())
				chunks++
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			return acc, chunks
		}
		want, wantChunks := accumulate(direct)
		got, gotChunks := accumulate(proxied)
		if gotChunks != wantChunks || got.Choices[0].Message.Content != want.Choices[0].Message.Content ||
			got.Model != want.Model || got.Usage.RawJSON() != want.Usage.RawJSON() || got.Usage.TotalTokens == 0 {
			t.Errorf("through the gateway: %d chunks %q %+v\ndirect: %d chunks %q %+v", gotChunks, got.Choices[0].Message.Content, got.Usage,
				wantChunks, want.Choices[0].Message.Content, want.Usage)
		}
		ex := gw.rec.wait(t, 1)[0]
		if !strings.HasSuffix(string(ex.RespBody.Data), "data: [DONE]\n\n") || ex.RespHeaders["Content-Type"][0] != "text/event-stream" {
			t.Errorf("recorded stream: %q", ex.RespBody.Data)
		}
	})

	t.Run("embedding", func(t *testing.T) {
		params := openai.EmbeddingNewParams{
			Model: openai.EmbeddingModelTextEmbedding3Small,
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"approve", "deny"}},
		}
		want, err := direct.Embeddings.New(t.Context(), params)
		if err != nil {
			t.Fatal(err)
		}
		got, err := proxied.Embeddings.New(t.Context(), params)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Data) != 2 || len(want.Data) != 2 {
			t.Fatalf("%d and %d embeddings", len(got.Data), len(want.Data))
		}
		for i := range got.Data {
			if !equalFloats(got.Data[i].Embedding, want.Data[i].Embedding) || len(got.Data[i].Embedding) == 0 {
				t.Errorf("embedding %d differs: %v vs %v", i, got.Data[i].Embedding, want.Data[i].Embedding)
			}
		}
		if got.Usage.RawJSON() != want.Usage.RawJSON() || got.Model != want.Model {
			t.Errorf("usage/model: %+v %s vs %+v %s", got.Usage, got.Model, want.Usage, want.Model)
		}
		gw.rec.wait(t, 1)
	})
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
