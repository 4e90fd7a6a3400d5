package capture

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	lru "github.com/hashicorp/golang-lru/v2"
)

const (
	// identCacheTTL bounds how long a resolved credential is reused, so a
	// revoked key file or a changed clock shows within minutes.
	identCacheTTL         = 10 * time.Minute
	identDefaultCacheSize = 10_000
	// identHeaderMax caps each recorded identity header value.
	identHeaderMax = 256
)

var identDefaultKeyHeaders = []string{"Authorization", "x-api-key", "api-key"}

// Identifier finds the caller of an exchange: a key id for its credential,
// the claims of a JWT bearer token, identity headers, the client
// certificate and the client address. It is safe for concurrent use.
type Identifier struct {
	secret     []byte
	keyHeaders []string
	headers    []string
	trusted    []netip.Prefix
	claimNames []string
	jwt        *jwtVerifier // nil when no key files are configured
	cache      *lru.Cache[identCacheKey, *identEntry]
	now        func() time.Time
}

// identCredKind says how a credential was presented; the same bytes
// resolve differently as a bearer token, a Basic user:pass or a plain key.
type identCredKind uint8

const (
	identPlain identCredKind = iota
	identBearer
	identBasic
)

// identCacheKey holds a hash of the credential, never the credential.
type identCacheKey struct {
	kind identCredKind
	sum  [sha256.Size]byte
}

// identEntry is what one credential resolves to. Entries are shared by
// every exchange presenting the credential and never modified.
type identEntry struct {
	keyID, subject, issuer, audience string
	claims                           []byte
	verified, unverified             bool // unverified: keys are configured and did not verify the JWT
	expires                          time.Time
}

// NewIdentifier returns an Identifier for o, loading o.JWT.KeyFiles.
func NewIdentifier(o IdentityOptions) (*Identifier, error) {
	if len(o.Secret) == 0 {
		return nil, errors.New("new identifier: secret is empty")
	}
	size := o.CacheSize
	if size == 0 {
		size = identDefaultCacheSize
	}
	if size < 0 {
		return nil, errors.New("new identifier: cache size is negative")
	}
	id := &Identifier{
		secret:     bytes.Clone(o.Secret),
		keyHeaders: o.APIKeyHeaders,
		headers:    slices.Clone(o.Headers),
		claimNames: slices.Clone(o.JWT.Claims),
		now:        time.Now,
	}
	if id.keyHeaders == nil {
		id.keyHeaders = identDefaultKeyHeaders
	}
	id.keyHeaders = slices.Clone(id.keyHeaders)
	for _, h := range id.headers {
		if IsCredentialHeader(h, id.keyHeaders) {
			return nil, fmt.Errorf("new identifier: identity header %q carries credentials, which are never recorded: remove it (its key is recorded as caller.key_id)", h)
		}
	}
	for _, p := range o.TrustedProxies {
		// Addresses are compared unmapped, so an IPv4-mapped prefix is
		// turned into the IPv4 prefix it stands for.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		id.trusted = append(id.trusted, p.Masked())
	}
	if len(o.JWT.KeyFiles) > 0 {
		v, err := newJWTVerifier(o.JWT, func() time.Time { return id.now() })
		if err != nil {
			return nil, err
		}
		id.jwt = v
	}
	cache, err := lru.New[identCacheKey, *identEntry](size)
	if err != nil {
		return nil, err
	}
	id.cache = cache
	return id, nil
}

// Identify resolves the caller of ex. The flags (Flag constants) say what
// was odd, such as FlagJWTUnverified. The returned Caller's Claims may be
// shared with other callers and must not be modified.
func (id *Identifier) Identify(ex *Exchange) (Caller, []string) {
	var c Caller
	var flags []string
	var scratch [192]byte
	if cred, kind, user := id.credential(&ex.RequestHeaders, &scratch); cred != nil {
		e := id.resolve(cred, kind, user)
		c.KeyID, c.Subject, c.Issuer, c.Audience = e.keyID, e.subject, e.issuer, e.audience
		c.Claims, c.Verified = e.claims, e.verified
		if e.unverified {
			flags = []string{FlagJWTUnverified}
		}
	}
	for _, name := range id.headers {
		if v := ex.RequestHeaders.Get(name); v != nil {
			c.Headers = append(c.Headers, [2]string{name, identCap(v)})
		}
	}
	if cert := ex.PeerCertificate; cert != nil {
		c.CertSubject = cert.Subject.String()
		sum := sha256.Sum256(cert.Raw)
		c.CertFingerprint = hex.EncodeToString(sum[:])
	}
	if ip := id.clientIP(ex); ip.IsValid() {
		c.IP = ip.String()
	}
	return c, flags
}

// KeyID is the key id of one credential: "k_" and the first 16 hex digits
// of HMAC-SHA256(secret, credential).
func (id *Identifier) KeyID(credential []byte) string {
	m := hmac.New(sha256.New, id.secret)
	m.Write(credential)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	var out [18]byte
	out[0], out[1] = 'k', '_'
	hex.Encode(out[2:], sum[:8])
	return string(out[:])
}

// credential finds the first API key header present and returns the
// credential it carries. A Basic credential is decoded into scratch when it
// fits; user is its user name.
func (id *Identifier) credential(h *Headers, scratch *[192]byte) (cred []byte, kind identCredKind, user []byte) {
	for _, name := range id.keyHeaders {
		v := bytes.TrimSpace(h.Get(name))
		if len(v) == 0 {
			continue
		}
		if !strings.EqualFold(name, "Authorization") {
			return v, identPlain, nil
		}
		scheme, rest, _ := bytes.Cut(v, []byte{' '})
		rest = bytes.TrimSpace(rest)
		switch {
		case equalFold(scheme, "bearer"):
			if len(rest) == 0 {
				continue
			}
			return rest, identBearer, nil
		case equalFold(scheme, "basic"):
			if pair, ok := identDecodeBasic(rest, scratch); ok {
				u, _, _ := bytes.Cut(pair, []byte{':'})
				return pair, identBasic, u
			}
		}
		return v, identPlain, nil
	}
	return nil, 0, nil
}

// identDecodeBasic decodes a Basic credential into user:pass.
func identDecodeBasic(b64 []byte, scratch *[192]byte) ([]byte, bool) {
	enc := base64.StdEncoding
	if len(b64)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	buf := scratch[:]
	if n := enc.DecodedLen(len(b64)); n > len(buf) {
		buf = make([]byte, n)
	}
	n, err := enc.Decode(buf, b64)
	if err != nil || bytes.IndexByte(buf[:n], ':') < 0 {
		return nil, false
	}
	return buf[:n], true
}

// resolve returns what cred stands for, from the cache when it holds a live
// entry. The cache is keyed by a hash, so plaintext keys are not retained.
func (id *Identifier) resolve(cred []byte, kind identCredKind, user []byte) *identEntry {
	key := identCacheKey{kind: kind, sum: sha256.Sum256(cred)}
	now := id.now()
	if e, ok := id.cache.Get(key); ok && now.Before(e.expires) {
		return e
	}
	e := id.build(bytes.Clone(cred), kind, string(user), now)
	id.cache.Add(key, e)
	return e
}

func (id *Identifier) build(cred []byte, kind identCredKind, user string, now time.Time) *identEntry {
	e := &identEntry{keyID: id.KeyID(cred), expires: now.Add(identCacheTTL)}
	switch kind {
	case identBasic:
		e.subject = user
	case identBearer:
		if jwtShaped(cred) {
			id.readJWT(e, cred, now)
		}
	}
	return e
}

// readJWT fills e from a JWT's claims and, with keys configured, its
// verification. The entry lives until the verdict could change: past exp
// (plus leeway) for a verified token, at nbf for one not valid yet.
func (id *Identifier) readJWT(e *identEntry, tok []byte, now time.Time) {
	info := jwtReadClaims(tok, id.claimNames)
	e.subject, e.issuer, e.audience, e.claims = info.subject, info.issuer, info.audience, info.claims
	if id.jwt == nil {
		return
	}
	e.verified = id.jwt.verify(string(tok))
	e.unverified = !e.verified
	if e.verified && info.hasExp {
		if t := time.Unix(info.exp, 0).Add(jwtLeeway); t.Before(e.expires) {
			e.expires = t
		}
	}
	if info.hasNbf {
		if t := time.Unix(info.nbf, 0).Add(-jwtLeeway); t.After(now) && t.Before(e.expires) {
			e.expires = t
		}
	}
}

// identCap returns v capped at identHeaderMax bytes, cut at a rune start.
func identCap(v []byte) string {
	if len(v) <= identHeaderMax {
		return string(v)
	}
	n := identHeaderMax
	for n > identHeaderMax-utf8.UTFMax && !utf8.RuneStart(v[n]) {
		n--
	}
	return string(v[:n])
}

// clientIP is the peer's address or, when the peer is a trusted proxy, the
// first untrusted address of X-Forwarded-For read from the right. A
// malformed entry ends the walk at the last trusted hop, since nothing left
// of it can be believed.
func (id *Identifier) clientIP(ex *Exchange) netip.Addr {
	client := ex.ClientAddr.Addr().Unmap()
	if !client.IsValid() || !id.isTrusted(client) {
		return client
	}
	fields := ex.RequestHeaders.Fields
	for i := len(fields) - 1; i >= 0; i-- {
		if !equalFold(fields[i].Name, "x-forwarded-for") {
			continue
		}
		v := fields[i].Value
		for len(v) > 0 {
			var entry []byte
			if j := bytes.LastIndexByte(v, ','); j >= 0 {
				entry, v = v[j+1:], v[:j]
			} else {
				entry, v = v, nil
			}
			entry = bytes.TrimSpace(entry)
			if len(entry) == 0 {
				continue
			}
			a, ok := identParseHop(entry)
			if !ok {
				return client
			}
			if !id.isTrusted(a) {
				return a
			}
			client = a
		}
	}
	return client
}

// identParseHop parses one X-Forwarded-For entry: an address, or an
// address and port as some proxies write it.
func identParseHop(s []byte) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(string(s)); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(string(s)); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func (id *Identifier) isTrusted(a netip.Addr) bool {
	for _, p := range id.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// credentialHeaders always carry secrets; they are never recorded, whatever
// the configuration says.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "x-api-key", "api-key"}

// IsCredentialHeader reports whether the header name carries credentials:
// one of the fixed credential headers, or a configured API key header.
func IsCredentialHeader(name string, keyHeaders []string) bool {
	for _, h := range credentialHeaders {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	for _, h := range keyHeaders {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}
