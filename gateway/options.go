package gateway

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/policy"
)

// Options configure a Gateway. The zero value is not usable on its own: at
// least one route is needed. Every other field has a documented default.
type Options struct {
	// Listen is the proxy's address. If empty, "127.0.0.1:8080".
	Listen string
	// TLS, if set, serves the proxy over HTTPS with these certificate files.
	TLS *ListenerTLS

	// ReadTimeout bounds reading one whole request from a client, body
	// included. If zero, 2 minutes; negative means unlimited.
	ReadTimeout time.Duration
	// IdleTimeout bounds how long a client keep-alive connection may wait for
	// its next request. If zero, 2 minutes.
	IdleTimeout time.Duration
	// ShutdownTimeout is the budget of a stop, for the command that runs
	// the gateway: the drain of in-flight requests (Shutdown's context) and
	// then sealing the trail. If zero, 30 seconds.
	ShutdownTimeout time.Duration
	// MaxConcurrency caps requests served at once; past it clients get 503.
	// If zero, 256 Ki (fasthttp's default).
	MaxConcurrency int

	// Forwarded selects the X-Forwarded-* headers added upstream.
	Forwarded Forwarded

	// Routes are matched in order; the first match wins.
	Routes []Route

	// Audit, if set, turns every exchange into a trail record.
	Audit *AuditOptions
}

// AuditOptions say how exchanges become records and where records go.
type AuditOptions struct {
	// Capturer builds the records. Required.
	Capturer *capture.Capturer
	// Policies decide per exchange what is captured (Route.Policy names
	// one); nil applies the built-in default to every route.
	Policies *policy.Set
	// Trail takes the records. Required.
	Trail Trail
}

// Trail takes records, one JSON line each without its newline. Its methods
// are called concurrently, on the connections' and the record builders'
// goroutines, and must not
// keep line after they return. worm.Appender implements it.
type Trail interface {
	// Ready returns nil while the trail takes records, and the reason
	// otherwise. While it fails, requests whose policy fails closed are
	// answered 503 before anything is forwarded.
	Ready() error
	// AppendWait takes the record of a finished exchange admitted while
	// the trail took records, waiting until ctx is done if its queue is
	// full.
	AppendWait(ctx context.Context, line []byte) error
	// Append takes the record of an exchange forwarded although the trail
	// refused records (a policy that fails open), failing at once, with the
	// record counted as lost, if it still refuses.
	Append(line []byte) error
	// AppendSync takes the record of a request about to be forwarded
	// under strict durability and returns once it is durable.
	AppendSync(ctx context.Context, line []byte) error
}

// ListenerTLS names the certificate and key served by the proxy listener.
// The files are read again on every reload.
type ListenerTLS struct {
	CertFile string
	KeyFile  string
	// ClientCAFile, if set, holds PEM CA certificates that client
	// certificates are verified against (mutual TLS); clients without a
	// certificate are still served, and the caller's identity then comes
	// from other credentials.
	ClientCAFile string
	// RequireClientCert refuses clients without a verified certificate.
	RequireClientCert bool
}

// Forwarded selects which X-Forwarded-* headers the gateway adds to upstream
// requests. The zero value adds none; DefaultForwarded adds all three.
type Forwarded struct {
	// For appends the client's address to X-Forwarded-For.
	For bool
	// Proto sets X-Forwarded-Proto to the scheme the client used.
	Proto bool
	// Host sets X-Forwarded-Host to the Host the client sent.
	Host bool
}

// DefaultForwarded adds X-Forwarded-For, -Proto and -Host.
var DefaultForwarded = Forwarded{For: true, Proto: true, Host: true}

// Protocol selects the shape of error bodies the gateway writes on a route,
// so that clients of that API parse the gateway's own errors.
type Protocol string

const (
	// ProtocolAuto picks the shape from the request path (/v1/messages is
	// Anthropic, other /v1/ paths OpenAI, anything else plain JSON).
	ProtocolAuto Protocol = ""
	// ProtocolOpenAI writes {"error":{"message","type","code"}}.
	ProtocolOpenAI Protocol = "openai"
	// ProtocolAnthropic writes {"type":"error","error":{"type","message"}}.
	ProtocolAnthropic Protocol = "anthropic"
	// ProtocolPlain writes {"error":{"type","message"}} with no vendor detail.
	ProtocolPlain Protocol = "plain"
)

// Route sends matching requests to one upstream.
type Route struct {
	// Name identifies the route in metrics, logs and the trail. Required and
	// unique.
	Name string

	// Host, if set, must equal the request's Host (port ignored unless given;
	// a leading "*." matches any subdomain).
	Host string
	// PathPrefix, if set, must prefix the request path. A prefix ending in
	// "/" matches that directory; otherwise it also matches at a "/" boundary
	// (so "/v1" matches "/v1" and "/v1/chat" but not "/v1beta").
	PathPrefix string

	// Upstream is the base URL requests go to: scheme (http or https), host,
	// optional port and optional base path prepended to every request path.
	Upstream string
	// StripPrefix removes this prefix from the request path before the
	// upstream base path is prepended.
	StripPrefix string
	// PreserveHost sends the client's Host header upstream instead of the
	// upstream's own host.
	PreserveHost bool

	// Protocol selects the error body shape; see Protocol.
	Protocol Protocol
	// Policy names the capture policy applied to the route's exchanges.
	Policy string
	// Capture says how the route's exchanges are read into records:
	// protocol profile, provider, model version and extraction paths. The
	// zero value detects the profile from each request's path.
	Capture capture.RouteOptions

	// DialTimeout bounds connecting to the upstream. If zero, 10 seconds.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait, after the request was sent, for
	// the upstream's first response byte. If zero, 10 minutes (reasoning
	// models can think for long before answering); negative means unlimited.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout bounds the silence between two reads of the upstream's
	// response once it started. If zero, 5 minutes; negative means unlimited.
	IdleTimeout time.Duration
	// MaxRequestBody caps the request body in bytes; larger requests get 413.
	// If zero, 64 MiB; negative means unlimited.
	MaxRequestBody int64
	// MaxCapture caps the bytes of each body kept for the recorder; hashes
	// still cover the whole body. If zero, 1 MiB; negative keeps nothing.
	MaxCapture int

	// MaxConns caps connections to the upstream. If zero, 1024.
	MaxConns int
	// MaxIdleConnDuration closes pooled upstream connections idle for this
	// long. If zero, 4 seconds, below the 5 s keep-alive of common Python
	// model servers, so a pooled connection is not reused as the server
	// closes it.
	MaxIdleConnDuration time.Duration

	// UpstreamTLS configures TLS to an https upstream.
	UpstreamTLS UpstreamTLS
}

// UpstreamTLS configures how the gateway verifies an https upstream.
type UpstreamTLS struct {
	// CAFile, if set, holds PEM certificates trusted instead of the system
	// roots.
	CAFile string
	// ServerName overrides the name verified in the upstream's certificate.
	ServerName string
	// InsecureSkipVerify disables certificate verification. For tests only.
	InsecureSkipVerify bool
	// Config, if set, is used as is and the fields above are ignored.
	Config *tls.Config
}

const (
	defaultListen                = "127.0.0.1:8080"
	defaultReadTimeout           = 2 * time.Minute
	defaultIdleTimeout           = 2 * time.Minute
	defaultDialTimeout           = 10 * time.Second
	defaultResponseHeaderTimeout = 10 * time.Minute
	defaultUpstreamIdleTimeout   = 5 * time.Minute
	defaultMaxRequestBody        = 64 << 20
	defaultMaxCapture            = 1 << 20
	defaultMaxConns              = 1024
	defaultMaxIdleConnDuration   = 4 * time.Second
)
