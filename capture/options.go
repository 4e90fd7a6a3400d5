package capture

import "net/netip"

// Profile names a protocol profile: how a route's bodies are read.
type Profile string

const (
	// ProfileAuto picks the profile from the request path.
	ProfileAuto      Profile = ""
	ProfileOpenAI    Profile = "openai"    // chat completions, completions, responses, embeddings
	ProfileAnthropic Profile = "anthropic" // messages
	ProfileKServe    Profile = "kserve"    // the v1 predict protocol of KServe v1 and TF Serving REST
	ProfileTriton    Profile = "triton"    // Open Inference Protocol v2 (KServe v2, Triton)
	ProfileSageMaker Profile = "sagemaker" // SageMaker runtime invocations
	ProfileMLflow    Profile = "mlflow"    // MLflow /invocations
	ProfileGeneric   Profile = "generic"   // any JSON API, read through Extract paths
)

// Profiles lists every profile name accepted in configuration.
var Profiles = []Profile{ProfileOpenAI, ProfileAnthropic, ProfileKServe, ProfileTriton, ProfileSageMaker, ProfileMLflow, ProfileGeneric}

// RouteOptions say how one route's exchanges are read.
type RouteOptions struct {
	// Profile selects the protocol; ProfileAuto detects it from the path.
	Profile Profile
	// Provider overrides the record's model.provider (for example "azure"
	// for an OpenAI-compatible upstream). If empty, the profile's name.
	Provider string
	// VersionHeaders are response (then request) headers whose value is the
	// model version, such as X-Model-Version; the first present wins over
	// what the body says.
	VersionHeaders []string
	// Labels are static facts about the model behind the route.
	Labels Labels
	// Extract reads the generic profile's fields, and adds attributes on
	// any profile.
	Extract Extract
}

// Labels are static facts about a route's model, set in configuration.
type Labels struct {
	// Model names the model for APIs whose requests do not (MLflow,
	// SageMaker, many generic ones); it is the record's model.requested
	// when the request names none.
	Model string
	// Version is used when neither the body nor a header names one.
	Version string
	// Digest identifies the model artifact, such as sha256:... of the
	// weights or an image digest.
	Digest string
}

// Extract holds gjson paths (github.com/tidwall/gjson syntax) into the
// request and response bodies. Paths starting with "request." read the
// request body, "response." the response body; a path without either
// prefix reads the response for Output, Decision and Rationale and the
// request otherwise.
type Extract struct {
	Model, Version, Input, Output, Decision, Rationale string
	// Attributes are extra named values a rule may need, such as an
	// applicant group; they form the record's "attributes" object.
	Attributes map[string]string
}

// IdentityOptions say how the caller of each exchange is identified.
type IdentityOptions struct {
	// Secret keys the HMAC that turns API keys into key ids. Instances that
	// share a trail must share it. Required.
	Secret []byte
	// APIKeyHeaders are the headers carrying API keys, in order of
	// preference. If nil: Authorization (Bearer or Basic), x-api-key,
	// api-key.
	APIKeyHeaders []string
	// Headers are identity headers recorded as they are, such as X-User-Id
	// or OpenAI-Organization.
	Headers []string
	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// when finding the client's address.
	TrustedProxies []netip.Prefix
	// JWT configures reading bearer tokens that are JWTs.
	JWT JWTOptions
	// CacheSize bounds the cache of resolved credentials. If zero, 10,000.
	CacheSize int
}

// JWTOptions configure JWT bearer tokens.
type JWTOptions struct {
	// KeyFiles are PEM public keys (RSA, ECDSA, Ed25519) or JWKS JSON
	// files; a token is marked verified only if one of them verifies it.
	KeyFiles []string
	// Issuers and Audiences, if set, are the accepted iss and aud values
	// of a verified token.
	Issuers, Audiences []string
	// Claims are extra claims recorded in caller.claims, such as tenant or
	// groups.
	Claims []string
}
