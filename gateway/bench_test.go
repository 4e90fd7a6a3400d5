package gateway

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/auditgate/auditgate/capture"
)

// startFastUpstream serves a fixed answer with fasthttp, so that the
// benchmark measures the gateway rather than the upstream.
func startFastUpstream(b *testing.B, body []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// BenchmarkPassThrough measures one 2 KB chat request with a 1 KB answer,
// client to gateway to upstream and back over loopback, including the
// gateway's tee and SHA-256 of both bodies. Allocations are the whole
// process's: client, gateway and upstream.
func BenchmarkPassThrough(b *testing.B) {
	respBody := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("x", 880) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":500,"completion_tokens":220}}`)
	reqBody := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("y", 1950) + `"}]}`)
	up := startFastUpstream(b, respBody)
	b.Run("direct", func(b *testing.B) { benchChat(b, up, reqBody, respBody) })
	b.Run("bare", func(b *testing.B) {
		// A bare fasthttp pass-through with the settings the gateway
		// streams with, and nothing else: the floor for the gateway's.
		benchChat(b, startBareProxy(b, up), reqBody, respBody)
	})
	b.Run("gateway", func(b *testing.B) {
		// The default recorder, which keeps nothing: this measures the
		// proxy path alone.
		benchChat(b, startNopGateway(b, oneRoute(up)), reqBody, respBody)
	})
	b.Run("gateway+capture", func(b *testing.B) {
		// Full capture with every redaction detector, records encoded and
		// handed to a sink that drops them: the audit work without a trail.
		opts := oneRoute(up)
		opts.Audit = &AuditOptions{Capturer: benchCapturer(b), Trail: discardSink{}}
		benchChat(b, startNopGateway(b, opts), reqBody, respBody)
	})
}

// startBareProxy serves a fasthttp reverse proxy to upstream that streams
// both ways, copies nothing and hashes nothing.
func startBareProxy(b *testing.B, upstream string) string {
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(upstream, "http://"), StreamResponseBody: true,
		DisableHeaderNamesNormalizing: true, DisablePathNormalizing: true, NoDefaultUserAgentHeader: true, MaxIdemponentCallAttempts: 1}
	srv := &fasthttp.Server{StreamRequestBody: true, DisablePreParseMultipartForm: true, NoDefaultServerHeader: true,
		NoDefaultDate: true, NoDefaultContentType: true, DisableHeaderNamesNormalizing: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			req := fasthttp.AcquireRequest()
			ctx.Request.Header.CopyTo(&req.Header)
			req.SetBodyStream(ctx.RequestBodyStream(), ctx.Request.Header.ContentLength())
			resp := fasthttp.AcquireResponse()
			err := hc.Do(req, resp)
			fasthttp.ReleaseRequest(req)
			if err != nil {
				fasthttp.ReleaseResponse(resp)
				ctx.Error("bad gateway", fasthttp.StatusBadGateway)
				return
			}
			resp.Header.CopyTo(&ctx.Response.Header)
			ctx.SetBodyStream(&releasingBody{resp: resp, src: resp.BodyStream()}, resp.Header.ContentLength())
		}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// releasingBody streams an upstream response's body and releases the
// response once it is read.
type releasingBody struct {
	resp *fasthttp.Response
	src  io.Reader
}

func (r *releasingBody) Read(p []byte) (int, error) {
	if r.resp == nil {
		return 0, io.EOF
	}
	n, err := r.src.Read(p)
	if err != nil {
		fasthttp.ReleaseResponse(r.resp)
		r.resp = nil
	}
	return n, err
}

type discardSink struct{}

func (discardSink) Ready() error                             { return nil }
func (discardSink) AppendWait(context.Context, []byte) error { return nil }
func (discardSink) AppendSync(context.Context, []byte) error { return nil }
func (discardSink) Append([]byte) error                      { return nil }

func benchCapturer(b *testing.B) *capture.Capturer {
	c, err := capture.NewCapturer(capture.CapturerOptions{Stream: "bench",
		Identity: capture.IdentityOptions{Secret: []byte("0123456789abcdef0123456789abcdef")}})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func startNopGateway(b *testing.B, opts Options) string {
	g, err := New(opts, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go g.Serve(ln)
	b.Cleanup(func() { g.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String()
}

func benchChat(b *testing.B, url string, reqBody, respBody []byte) {
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(url, "http://")}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(url + "/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("Authorization", "Bearer sk-bench")
	req.SetBody(reqBody)
	b.SetBytes(int64(len(reqBody) + len(respBody)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := hc.DoTimeout(req, resp, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), respBody) {
			b.Fatalf("status %d", resp.StatusCode())
		}
	}
	b.StopTimer()
}
