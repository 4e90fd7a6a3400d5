package capture

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtTestKeySet holds the signing keys of the JWT tests, made once.
type jwtTestKeySet struct {
	rsa   *rsa.PrivateKey
	ec256 *ecdsa.PrivateKey
	ec384 *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	other *ecdsa.PrivateKey // configured nowhere
}

var jwtTestKeys = sync.OnceValue(func() *jwtTestKeySet {
	var k jwtTestKeySet
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	if k.other, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	return &k
})

// jwtTestFiles writes the public keys to dir in every supported form and
// returns the paths by name.
func jwtTestFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	k := jwtTestKeys()
	files := map[string]string{}
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	pkixPEM := func(pub crypto.PublicKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	write("rsa.pem", pkixPEM(&k.rsa.PublicKey))
	write("rsa-pkcs1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}))
	write("ec.pem", pkixPEM(&k.ec256.PublicKey))
	write("ed.pem", pkixPEM(k.ed.Public()))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.ec384.PublicKey, k.ec384)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate bundle: the key of interest is not the first block.
	write("ec384-cert.pem", append(pkixPEM(k.ed.Public()), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...))

	b64 := base64.RawURLEncoding.EncodeToString
	point, err := k.ec256.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "enc-1", "use": "enc", "n": b64(k.rsa.N.Bytes()), "e": "AQAB"},
		{"kty": "oct", "kid": "hmac-1", "k": b64([]byte("secret"))},
		{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": b64(k.rsa.N.Bytes()), "e": "AQAB"},
		{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])},
		{"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": b64(k.ed.Public().(ed25519.PublicKey))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	write("jwks.json", jwks)
	return files
}

func jwtTestSign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwtTestRaw assembles a token from JSON header and payload and a
// signature, without signing.
func jwtTestRaw(header, payload, sig string) string {
	b64 := base64.RawURLEncoding.EncodeToString
	return b64([]byte(header)) + "." + b64([]byte(payload)) + "." + sig
}

func jwtTestBearer(tok string) *Exchange {
	return identTestExchange("192.0.2.1:1000", "Authorization", "Bearer "+tok)
}

func TestIdentifyJWT(t *testing.T) {
	k := jwtTestKeys()
	files := jwtTestFiles(t, t.TempDir())
	now := time.Now()
	claims := func(extra ...any) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "svc-loans", "iss": "https://idp.example", "aud": "gateway", "exp": now.Add(time.Hour).Unix()}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == nil {
				delete(c, extra[i].(string))
			} else {
				c[extra[i].(string)] = extra[i+1]
			}
		}
		return c
	}
	rsaPEM, _ := os.ReadFile(files["rsa.pem"])
	unsigned := jwtTestRaw(`{"alg":"none","typ":"JWT"}`, `{"sub":"svc-loans","iss":"https://idp.example","aud":"gateway"}`, "")
	good := jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "", claims())
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","iss":"https://idp.example","aud":"gateway"}`)) + "." + parts[2]

	for _, tc := range []struct {
		name     string
		keys     []string
		jwt      JWTOptions
		token    string
		verified bool
		subject  string // if not svc-loans
	}{
		{name: "RS256, PKIX PEM", keys: []string{"rsa.pem"}, token: jwtTestSign(t, jwt.SigningMethodRS256, k.rsa, "", claims()), verified: true},
		{name: "PS384, PKCS#1 PEM", keys: []string{"rsa-pkcs1.pem"}, token: jwtTestSign(t, jwt.SigningMethodPS384, k.rsa, "", claims()), verified: true},
		{name: "ES256, PEM", keys: []string{"ec.pem"}, token: good, verified: true},
		{name: "ES384, certificate", keys: []string{"ec384-cert.pem"}, token: jwtTestSign(t, jwt.SigningMethodES384, k.ec384, "", claims()), verified: true},
		{name: "EdDSA, PEM", keys: []string{"ed.pem"}, token: jwtTestSign(t, jwt.SigningMethodEdDSA, k.ed, "", claims()), verified: true},
		{name: "one of several files", keys: []string{"rsa.pem", "ed.pem", "ec.pem"}, token: good, verified: true},
		{name: "JWKS RS256 by kid", keys: []string{"jwks.json"}, token: jwtTestSign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", claims()), verified: true},
		{name: "JWKS ES256 by kid", keys: []string{"jwks.json"}, token: jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "ec-1", claims()), verified: true},
		{name: "JWKS EdDSA by kid", keys: []string{"jwks.json"}, token: jwtTestSign(t, jwt.SigningMethodEdDSA, k.ed, "ed-1", claims()), verified: true},
		{name: "JWKS without kid", keys: []string{"jwks.json"}, token: good, verified: true},
		{name: "JWKS kid of another key", keys: []string{"jwks.json"}, token: jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "ed-1", claims())},
		{name: "JWKS unknown kid", keys: []string{"jwks.json"}, token: jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "gone", claims())},
		{name: "JWKS alg pinned by the key", keys: []string{"jwks.json"}, token: jwtTestSign(t, jwt.SigningMethodRS512, k.rsa, "rsa-1", claims())},
		{name: "wrong key", keys: []string{"ec.pem", "jwks.json"}, token: jwtTestSign(t, jwt.SigningMethodES256, k.other, "", claims())},
		{name: "alg does not fit the key", keys: []string{"ec.pem"}, token: jwtTestSign(t, jwt.SigningMethodRS256, k.rsa, "", claims())},
		{name: "tampered claims", keys: []string{"ec.pem"}, token: tampered, subject: "admin"},
		{name: "expired", keys: []string{"ec.pem"}, token: jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "", claims("exp", now.Add(-time.Hour).Unix()))},
		{name: "expired within leeway", keys: []string{"ec.pem"}, token: jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "", claims("exp", now.Add(-10*time.Second).Unix())), verified: true},
		{name: "not valid yet", keys: []string{"ec.pem"}, token: jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "", claims("nbf", now.Add(time.Hour).Unix()))},
		{name: "alg none", keys: []string{"ec.pem", "jwks.json"}, token: unsigned},
		{name: "HS256 keyed with the public key", keys: []string{"rsa.pem"}, token: jwtTestSign(t, jwt.SigningMethodHS256, rsaPEM, "", claims())},
		{name: "HS256 against a JWKS with an oct key", keys: []string{"jwks.json"}, token: jwtTestSign(t, jwt.SigningMethodHS256, []byte("secret"), "hmac-1", claims())},
		{name: "issuer accepted", keys: []string{"ec.pem"}, jwt: JWTOptions{Issuers: []string{"other", "https://idp.example"}}, token: good, verified: true},
		{name: "issuer mismatch", keys: []string{"ec.pem"}, jwt: JWTOptions{Issuers: []string{"https://evil.example"}}, token: good},
		{name: "issuer missing", keys: []string{"ec.pem"}, jwt: JWTOptions{Issuers: []string{"https://idp.example"}}, token: jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "", claims("iss", nil))},
		{name: "audience accepted", keys: []string{"ec.pem"}, jwt: JWTOptions{Audiences: []string{"gateway"}}, token: jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "", claims("aud", []string{"billing", "gateway"})), verified: true},
		{name: "audience mismatch", keys: []string{"ec.pem"}, jwt: JWTOptions{Audiences: []string{"billing"}}, token: good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.jwt
			for _, name := range tc.keys {
				o.KeyFiles = append(o.KeyFiles, files[name])
			}
			id := identTestNew(t, IdentityOptions{JWT: o})
			c, flags := id.Identify(jwtTestBearer(tc.token))
			if c.Verified != tc.verified {
				t.Errorf("Verified = %v, want %v", c.Verified, tc.verified)
			}
			if tc.verified && flags != nil || !tc.verified && (len(flags) != 1 || flags[0] != FlagJWTUnverified) {
				t.Errorf("flags = %q", flags)
			}
			want := tc.subject
			if want == "" {
				want = "svc-loans"
			}
			if c.Subject != want {
				t.Errorf("Subject = %q, want %q: claims are recorded verified or not", c.Subject, want)
			}
			if c.KeyID != id.KeyID([]byte(tc.token)) {
				t.Errorf("KeyID = %q, not the token's", c.KeyID)
			}
			if strings.Contains(fmt.Sprintf("%+v", c), tc.token) {
				t.Error("caller holds the token")
			}
		})
	}
}

func TestIdentifyJWTWithoutKeys(t *testing.T) {
	id := identTestNew(t, IdentityOptions{JWT: JWTOptions{Claims: []string{"tenant", "missing", "groups", "nested", "n"}}})
	payload := `{"sub":"u-1","iss":"https://idp.example","aud":["a", "b"],"n":12.50,"nested":{ "k" : [1, 2] },"groups":["x","y"],"tenant":"acme"}`
	c, flags := id.Identify(jwtTestBearer(jwtTestRaw(`{"alg":"RS256","kid":"k"}`, payload, "c2ln")))
	if flags != nil || c.Verified {
		t.Fatalf("flags %q, verified %v: without keys there is nothing to verify against", flags, c.Verified)
	}
	if c.Subject != "u-1" || c.Issuer != "https://idp.example" || c.Audience != "a,b" {
		t.Fatalf("caller = %+v", c)
	}
	want := `{"tenant":"acme","groups":["x","y"],"nested":{"k":[1,2]},"n":12.50}`
	if string(c.Claims) != want {
		t.Fatalf("Claims = %s, want %s", c.Claims, want)
	}

	c, _ = id.Identify(jwtTestBearer(jwtTestRaw(`{"alg":"ES256"}`, `{"sub":"u-2","aud":"one"}`, "")))
	if c.Claims != nil || c.Audience != "one" {
		t.Fatalf("Claims = %s, Audience = %q", c.Claims, c.Audience)
	}
}

func TestJWTShaped(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	for _, tc := range []struct {
		tok  string
		want bool
	}{
		{jwtTestRaw(`{"alg":"RS256"}`, `{}`, "sig"), true},
		{jwtTestRaw(`{"alg":"none"}`, `{}`, ""), true},
		{jwtTestRaw(`{"typ":"JWT"}`, `{}`, "sig"), false},
		{jwtTestRaw(`not json`, `{}`, "sig"), false},
		{b64([]byte(`{"alg":"RS256"}`)) + "." + b64([]byte(`{}`)), false},
		{jwtTestRaw(`{"alg":"RS256"}`, `{}`, "sig") + ".more", false},
		{b64([]byte(`{"alg":"RS256"}`)) + ".a+b.sig", false},
		{"sk-proj-abc.def.ghi", false},
		{"", false},
	} {
		if got := jwtShaped([]byte(tc.tok)); got != tc.want {
			t.Errorf("jwtShaped(%q) = %v, want %v", tc.tok, got, tc.want)
		}
	}
}

func TestIdentifyJWTCacheExpiry(t *testing.T) {
	k := jwtTestKeys()
	files := jwtTestFiles(t, t.TempDir())
	clock := &identTestClock{t: time.Now().Truncate(time.Second)}
	id := identTestNew(t, IdentityOptions{JWT: JWTOptions{KeyFiles: []string{files["ec.pem"]}}})
	id.now = clock.now
	short := jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "", jwt.MapClaims{"sub": "s", "exp": clock.t.Add(2 * time.Minute).Unix()})
	long := jwtTestSign(t, jwt.SigningMethodES256, k.ec256, "", jwt.MapClaims{"sub": "l", "exp": clock.t.Add(time.Hour).Unix()})
	start := clock.t

	for _, tok := range []string{short, long} {
		if c, flags := id.Identify(jwtTestBearer(tok)); !c.Verified || flags != nil {
			t.Fatalf("fresh token: verified %v, flags %q", c.Verified, flags)
		}
	}
	entry := func(tok string) *identEntry {
		e, _ := id.cache.Peek(identCacheKey{kind: identBearer, sum: sha256.Sum256([]byte(tok))})
		return e
	}
	if got, want := entry(short).expires, start.Add(2*time.Minute+jwtLeeway); !got.Equal(want) {
		t.Fatalf("short token cached until %v, want exp plus leeway %v", got, want)
	}
	if got, want := entry(long).expires, start.Add(identCacheTTL); !got.Equal(want) {
		t.Fatalf("long token cached until %v, want the 10 minute cap %v", got, want)
	}

	first := entry(short)
	clock.t = start.Add(time.Minute)
	if c, _ := id.Identify(jwtTestBearer(short)); !c.Verified || entry(short) != first {
		t.Fatal("live entry was not reused")
	}
	clock.t = start.Add(2*time.Minute + jwtLeeway + time.Second)
	if c, flags := id.Identify(jwtTestBearer(short)); c.Verified || len(flags) != 1 {
		t.Fatalf("after exp: verified %v, flags %q", c.Verified, flags)
	}
}

func TestNewIdentifierKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	k := jwtTestKeys()
	priv, err := x509.MarshalPKCS8PrivateKey(k.ec256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"private key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})), `type "PRIVATE KEY"`},
		{"garbage", "not a key", "no PEM public key"},
		{"bad PEM body", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PEM block 1"},
		{"bad JSON", `{"keys": [`, "parse JWKS"},
		{"no usable key", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, "no RSA, EC or Ed25519"},
		{"RSA without n", `{"keys":[{"kty":"RSA","kid":"r","e":"AQAB"}]}`, `kid "r"`},
		{"EC off curve", `{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}`, "JWKS key 0"},
		{"alg for another type", `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"ES256","x":"` + base64.RawURLEncoding.EncodeToString(k.ed.Public().(ed25519.PublicKey)) + `"}]}`, "does not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(p, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewIdentifier(IdentityOptions{Secret: identTestSecret, JWT: JWTOptions{KeyFiles: []string{p}}})
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want the file name and %q", err, tc.want)
			}
		})
	}
	missing := filepath.Join(dir, "missing.pem")
	if _, err := NewIdentifier(IdentityOptions{Secret: identTestSecret, JWT: JWTOptions{KeyFiles: []string{missing}}}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v, want the missing file named", err)
	}
}

func BenchmarkIdentifyJWT(b *testing.B) {
	k := jwtTestKeys()
	files := jwtTestFiles(b, b.TempDir())
	id := identTestNew(b, IdentityOptions{JWT: JWTOptions{KeyFiles: []string{files["ec.pem"]}, Claims: []string{"tenant"}}})
	tok := jwtTestSign(b, jwt.SigningMethodES256, k.ec256, "", jwt.MapClaims{"sub": "svc", "tenant": "acme", "exp": time.Now().Add(time.Hour).Unix()})
	ex := jwtTestBearer(tok)
	if c, _ := id.Identify(ex); !c.Verified {
		b.Fatal("token not verified")
	}
	b.ReportAllocs()
	for b.Loop() {
		if c, _ := id.Identify(ex); !c.Verified {
			b.Fatal("token not verified")
		}
	}
}
