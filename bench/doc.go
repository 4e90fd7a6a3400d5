// Package bench is auditgate's end-to-end harness: it measures the latency the
// gateway adds by sending the same open-loop load to an upstream directly and
// through a child `auditgate serve` in one run, and reports both.
//
// # Mock upstream
//
// [Mock] is the model API that the harness, `make demo` and the gateway's
// tests talk to. It speaks enough of each protocol for the official SDKs to
// accept its answers:
//
//	POST /v1/chat/completions                     OpenAI chat, plain or streamed
//	POST /v1/completions                          OpenAI legacy completions, plain or streamed
//	POST /v1/embeddings                           OpenAI embeddings, "float" or "base64"
//	POST /v1/messages                             Anthropic messages, plain or streamed
//	POST /v2/models/{name}/infer                  Open Inference Protocol v2
//	POST /v2/models/{name}/versions/{v}/infer     the same, for one model version
//	GET  /v1/models                               a list with one model
//	GET  /healthz                                 200 "ok"
//
// Answers are deterministic. The generated text depends only on [MockOptions],
// so the chunks of a streamed answer concatenate to the text of the plain
// answer to the same request; embeddings and inference outputs depend only on
// the request's inputs. The served model is the requested one plus
// MockOptions.ServedModelSuffix, so captures can tell the two apart. Token
// counts are about a quarter of the bytes of the request body and of the text.
//
// Errors take the shape of the endpoint's own API: OpenAI's
// {"error":{"message","type","param","code"}} for /v1 paths other than
// /v1/messages and for unknown paths (404), Anthropic's
// {"type":"error","error":{"type","message"}} for /v1/messages, and
// {"error":"..."} for Open Inference Protocol paths. A body that is not a JSON
// object is answered with 400.
//
// # Test hooks
//
// Request headers change a single answer, so one mock can serve every test:
//
//	X-Mock-Status: N         answer status N (400-599) with an error body
//	X-Mock-Delay: D          wait D (a Go duration, e.g. "50ms") instead of MockOptions.Delay
//	X-Mock-Chunk-Delay: D    wait D between streamed chunks instead of MockOptions.ChunkDelay
//
// The delay comes first, then the status. A hook header that does not parse is
// answered with 400, so that a typo fails a test instead of being ignored.
// Every answer carries an X-Request-Id header ("req_mock" and the request's
// sequence number).
package bench
