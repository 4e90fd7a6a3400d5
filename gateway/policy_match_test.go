package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/policy"
)

// signJWT returns a compact EdDSA JWT with the given subject.
func signJWT(t *testing.T, key ed25519.PrivateKey, sub string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))
	claims := enc.EncodeToString([]byte(`{"sub":"` + sub + `"}`))
	signed := head + "." + claims
	return signed + "." + enc.EncodeToString(ed25519.Sign(key, []byte(signed)))
}

// TestPolicyMatchesWhatTheRecordSays checks that a policy rule matching
// on the caller or the model sees what the record will name: a JWT's
// subject only once its signature is verified, and the model from the
// path or a compressed body as well as from a plain one, and a path rule
// the path as the upstream decodes it.
func TestPolicyMatchesWhatTheRecordSays(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	_, forger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"predictions":[1]}`))
	}))
	t.Cleanup(up.Close)
	set, err := policy.Compile(map[string][]policy.Rule{
		"p": {
			{Match: policy.Match{Callers: []string{"svc-exempt"}}, Level: policy.LevelNone},
			{Match: policy.Match{Models: []string{"shadow-*"}}, Level: policy.LevelNone},
			{Match: policy.Match{Paths: []string{"/v1/models/hidden:*"}}, Level: policy.LevelNone},
			{Level: policy.LevelFull},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	capt, err := capture.NewCapturer(capture.CapturerOptions{Stream: "t", Identity: capture.IdentityOptions{
		Secret: []byte("0123456789abcdef0123456789abcdef"),
		JWT:    capture.JWTOptions{KeyFiles: []string{keyFile}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sink := newMemSink()
	opts := oneRoute(up.URL)
	opts.Routes[0].Policy = "p"
	opts.Audit = &AuditOptions{Capturer: capt, Policies: set, Trail: sink}
	g := startGateway(t, opts)

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"model":"shadow-7","messages":[]}`))
	zw.Close()

	for _, c := range []struct {
		name     string
		path     string
		body     []byte
		header   map[string]string
		recorded bool
	}{
		{"verified subject", "/v1/chat/completions", []byte(`{"model":"m"}`),
			map[string]string{"Authorization": "Bearer " + signJWT(t, priv, "svc-exempt")}, false},
		{"forged subject", "/v1/chat/completions", []byte(`{"model":"m"}`),
			map[string]string{"Authorization": "Bearer " + signJWT(t, forger, "svc-exempt")}, true},
		{"model in the body", "/v1/chat/completions", []byte(`{"model":"shadow-7"}`), nil, false},
		{"model in a gzip body", "/v1/chat/completions", gz.Bytes(), map[string]string{"Content-Encoding": "gzip"}, false},
		{"model in the path", "/v1/models/shadow-7:predict", []byte(`{"instances":[[1]]}`), nil, false},
		{"another model in the path", "/v1/models/loans:predict", []byte(`{"instances":[[1]]}`), nil, true},
		{"path rule", "/v1/models/hidden:predict", []byte(`{"instances":[[1]]}`), nil, false},
		// The upstream decodes %3A to ':', and so does the path rule.
		{"path rule, percent-encoded", "/v1/models/hidden%3Apredict", []byte(`{"instances":[[1]]}`), nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, g.URL+c.path, bytes.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := rawClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			id := resp.Header.Get("X-Audit-Id")
			// The test recorder is handed the exchange after the trail was
			// offered its record, if any.
			g.rec.waitID(t, id)
			got := false
			sink.mu.Lock()
			for _, l := range sink.lines {
				got = got || bytes.Contains(l, []byte(`"id":"`+id+`"`))
			}
			sink.mu.Unlock()
			if got != c.recorded {
				t.Errorf("recorded = %v, want %v", got, c.recorded)
			}
		})
	}
}
