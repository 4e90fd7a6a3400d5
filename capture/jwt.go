package capture

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtLeeway is the clock skew allowed when checking exp and nbf.
const jwtLeeway = 30 * time.Second

// jwtAlgs are the only algorithms a token may be verified with: public-key
// signatures. "none" and HMAC are absent on purpose, so a token cannot
// choose to be verified with nothing, or with a public key used as an HMAC
// secret.
var jwtAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// jwtInfo is what a bearer token says about its caller, verified or not.
type jwtInfo struct {
	subject, issuer, audience string
	// claims holds the configured extra claims as a JSON object, or nil.
	claims []byte
	// exp and nbf are NumericDates in Unix seconds, when present.
	exp, nbf       int64
	hasExp, hasNbf bool
}

// jwtShaped reports whether a bearer credential looks like a JWT: three
// base64url segments whose first decodes to a JSON object with an "alg".
func jwtShaped(tok []byte) bool {
	h, rest, ok := bytes.Cut(tok, []byte{'.'})
	if !ok {
		return false
	}
	p, sig, ok := bytes.Cut(rest, []byte{'.'})
	if !ok || bytes.IndexByte(sig, '.') >= 0 || len(h) == 0 || len(p) == 0 {
		return false
	}
	if !jwtIsB64URL(h) || !jwtIsB64URL(p) || !jwtIsB64URL(sig) {
		return false
	}
	hdr, err := jwtDecodeSegment(h)
	if err != nil {
		return false
	}
	var head struct {
		Alg *string `json:"alg"`
	}
	return json.Unmarshal(hdr, &head) == nil && head.Alg != nil
}

func jwtIsB64URL(s []byte) bool {
	for _, c := range bytes.TrimRight(s, "=") {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func jwtDecodeSegment(s []byte) ([]byte, error) {
	s = bytes.TrimRight(s, "=")
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(s)))
	n, err := base64.RawURLEncoding.Decode(out, s)
	return out[:n], err
}

// jwtReadClaims reads the claims of a JWT-shaped token without verifying
// it. A payload that is not a JSON object yields no claims.
func jwtReadClaims(tok []byte, extra []string) jwtInfo {
	var info jwtInfo
	_, rest, _ := bytes.Cut(tok, []byte{'.'})
	payload, _, _ := bytes.Cut(rest, []byte{'.'})
	raw, err := jwtDecodeSegment(payload)
	if err != nil {
		return info
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(raw, &claims) != nil {
		return info
	}
	info.subject = jwtString(claims["sub"])
	info.issuer = jwtString(claims["iss"])
	info.audience = jwtAudience(claims["aud"])
	info.exp, info.hasExp = jwtNumericDate(claims["exp"])
	info.nbf, info.hasNbf = jwtNumericDate(claims["nbf"])
	info.claims = jwtExtraClaims(claims, extra)
	return info
}

func jwtString(v json.RawMessage) string {
	var s string
	if v == nil || json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// jwtAudience returns aud as one string: a list is comma-joined.
func jwtAudience(v json.RawMessage) string {
	if v == nil {
		return ""
	}
	var one string
	if json.Unmarshal(v, &one) == nil {
		return one
	}
	var list []string
	if json.Unmarshal(v, &list) == nil {
		return strings.Join(list, ",")
	}
	return ""
}

func jwtNumericDate(v json.RawMessage) (int64, bool) {
	var f float64
	if v == nil || json.Unmarshal(v, &f) != nil || math.IsNaN(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// jwtExtraClaims builds the configured claims into one JSON object, in the
// configured order, with each value as the token has it (compacted so the
// record stays one line).
func jwtExtraClaims(claims map[string]json.RawMessage, names []string) []byte {
	var out []byte
	for _, name := range names {
		v, ok := claims[name]
		if !ok {
			continue
		}
		if out == nil {
			out = append(out, '{')
		} else {
			out = append(out, ',')
		}
		k, _ := json.Marshal(name)
		out = append(out, k...)
		out = append(out, ':')
		var buf bytes.Buffer
		if json.Compact(&buf, v) != nil {
			out = append(out, "null"...)
			continue
		}
		out = append(out, buf.Bytes()...)
	}
	if out != nil {
		out = append(out, '}')
	}
	return out
}

// jwtKey is one configured verification key.
type jwtKey struct {
	kid string // from a JWKS; empty for PEM keys
	alg string // a JWK's "alg"; empty if unrestricted
	key crypto.PublicKey
}

// allows reports whether the key can verify a token signed with alg.
func (k *jwtKey) allows(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256():
			return alg == "ES256"
		case elliptic.P384():
			return alg == "ES384"
		case elliptic.P521():
			return alg == "ES512"
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// jwtVerifier checks JWT signatures and validity against configured keys.
type jwtVerifier struct {
	keys    []jwtKey
	issuers []string
	parser  *jwt.Parser
}

func newJWTVerifier(o JWTOptions, now func() time.Time) (*jwtVerifier, error) {
	v := &jwtVerifier{issuers: slices.Clone(o.Issuers)}
	for _, path := range o.KeyFiles {
		keys, err := jwtLoadKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("load jwt key file %s: %w", path, err)
		}
		v.keys = append(v.keys, keys...)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(jwtAlgs),
		jwt.WithLeeway(jwtLeeway),
		jwt.WithTimeFunc(now),
	}
	if len(o.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(o.Audiences...))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// verify reports whether tok is signed by a configured key, is within its
// validity window, and names an accepted issuer and audience.
func (v *jwtVerifier) verify(tok string) bool {
	var claims jwt.RegisteredClaims
	if _, err := v.parser.ParseWithClaims(tok, &claims, v.keyFor); err != nil {
		return false
	}
	if len(v.issuers) > 0 && !slices.Contains(v.issuers, claims.Issuer) {
		return false
	}
	return true
}

// keyFor returns the keys that may have signed t: those whose type fits its
// alg and, when both name one, whose kid matches.
func (v *jwtVerifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	for i := range v.keys {
		k := &v.keys[i]
		if !k.allows(alg) || kid != "" && k.kid != "" && k.kid != kid {
			continue
		}
		set.Keys = append(set.Keys, k.key)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("no key for the token's alg and kid")
	}
	return set, nil
}

// jwtLoadKeyFile reads a PEM file (public keys or certificates) or a JWKS.
func jwtLoadKeyFile(path string) ([]jwtKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return jwtParseJWKS(t)
	}
	return jwtParsePEM(data)
}

func jwtParsePEM(data []byte) ([]jwtKey, error) {
	var keys []jwtKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var key any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("PEM block %d: type %q is not a public key or certificate", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		if err := jwtCheckKeyType(key); err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		keys = append(keys, jwtKey{key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key, certificate or JWKS found")
	}
	return keys, nil
}

func jwtCheckKeyType(key any) error {
	switch k := key.(type) {
	case *rsa.PublicKey, ed25519.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	}
	return fmt.Errorf("unsupported key type %T", key)
}

// jwk is one JSON Web Key (RFC 7517), public members only.
type jwk struct {
	Kty, Kid, Alg, Use, Crv string
	N, E, X, Y              string
}

// jwtParseJWKS reads a JWK Set, or a single JWK. Keys for encryption, or of
// a type or alg that cannot verify a signature here, are skipped; a
// malformed signing key is an error.
func jwtParseJWKS(data []byte) ([]jwtKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
		jwk
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	list := doc.Keys
	if list == nil && doc.Kty != "" {
		list = []jwk{doc.jwk}
	}
	var keys []jwtKey
	for i, k := range list {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Alg != "" && !slices.Contains(jwtAlgs, k.Alg) {
			continue
		}
		key, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		if key == nil {
			continue
		}
		jk := jwtKey{kid: k.Kid, alg: k.Alg, key: key}
		if k.Alg != "" && !jk.allows(k.Alg) {
			return nil, fmt.Errorf("JWKS key %d (kid %q): alg %s does not fit a %s key", i, k.Kid, k.Alg, k.Kty)
		}
		keys = append(keys, jk)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no RSA, EC or Ed25519 signing key")
	}
	return keys, nil
}

// publicKey returns the key, or nil for a key type that is not used here.
func (k *jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := jwtB64Field("n", k.N)
		if err != nil {
			return nil, err
		}
		e, err := jwtB64Field("e", k.E)
		if err != nil {
			return nil, err
		}
		if len(e) > 4 {
			return nil, errors.New("exponent e is too large")
		}
		var exp int
		for _, b := range e {
			exp = exp<<8 | int(b)
		}
		if exp < 3 || exp%2 == 0 {
			return nil, fmt.Errorf("invalid exponent %d", exp)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := jwtB64Field("x", k.X)
		if err != nil {
			return nil, err
		}
		y, err := jwtB64Field("y", k.Y)
		if err != nil {
			return nil, err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) > size || len(y) > size {
			return nil, errors.New("coordinate longer than the curve")
		}
		point := make([]byte, 1+2*size)
		point[0] = 4
		copy(point[1+size-len(x):1+size], x)
		copy(point[1+2*size-len(y):], y)
		return ecdsa.ParseUncompressedPublicKey(curve, point)
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, nil
		}
		x, err := jwtB64Field("x", k.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 key is %d bytes, want %d", len(x), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
}

func jwtB64Field(name, v string) ([]byte, error) {
	if v == "" {
		return nil, fmt.Errorf("member %q is missing", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return nil, fmt.Errorf("member %q: %w", name, err)
	}
	return b, nil
}
