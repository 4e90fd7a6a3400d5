package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/auditgate/auditgate/capture"

	"go.yaml.in/yaml/v3"
)

// identity decodes the identity section.
func (d *decoder) identity(n *yaml.Node, key string, id *IdentityConfig) {
	jwt := &id.JWT
	d.mapping(n, key, []field{
		{"hmac_secret", func(n *yaml.Node, k string) {
			// Kept out of the source record: problems must never echo a secret.
			if v, ok := d.scalar(n, k, "a string"); ok {
				id.Secret = []byte(v)
				d.src.set(k, pos{line: resolve(n).Line, val: "[secret]"})
			}
		}},
		{"hmac_secret_file", func(n *yaml.Node, k string) { d.str(n, k, &id.SecretFile) }},
		{"api_key_headers", func(n *yaml.Node, k string) { d.strs(n, k, &id.APIKeyHeaders) }},
		{"headers", func(n *yaml.Node, k string) { d.strs(n, k, &id.Headers) }},
		{"trusted_proxies", func(n *yaml.Node, k string) {
			d.sequence(n, k, func(i int, n *yaml.Node, k string) {
				var s string
				d.str(n, k, &s)
				if s == "" {
					// Keep the index of later entries; the check reports it.
					id.TrustedProxies = append(id.TrustedProxies, netip.Prefix{})
					return
				}
				p, err := parseNetwork(s)
				if err != nil {
					d.invalid(resolve(n).Line, k, "%v", err)
				}
				id.TrustedProxies = append(id.TrustedProxies, p)
			})
		}},
		{"jwt", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"keys", func(n *yaml.Node, k string) { d.strs(n, k, &jwt.KeyFiles) }},
				{"issuers", func(n *yaml.Node, k string) { d.strs(n, k, &jwt.Issuers) }},
				{"audiences", func(n *yaml.Node, k string) { d.strs(n, k, &jwt.Audiences) }},
				{"claims", func(n *yaml.Node, k string) { d.strs(n, k, &jwt.Claims) }},
			})
		}},
		{"cache_size", func(n *yaml.Node, k string) { d.count(n, k, &id.CacheSize) }},
	})
}

// parseNetwork reads a trusted proxy: a CIDR, or a single address standing
// for itself alone.
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid network %q: use a CIDR such as 10.0.0.0/8 or an address such as 192.168.1.7", s)
		}
		if m := p.Masked(); m != p {
			// Most often a typo for the network, rarely meant as a host.
			return netip.Prefix{}, fmt.Errorf("%q has bits set past the /%d: write the network as %s, or a single address without /", s, p.Bits(), m)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid address %q: use a CIDR such as 10.0.0.0/8 or an address such as 192.168.1.7", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// minSecretLen keeps guessable HMAC secrets out: key ids are only as
// unlinkable to their API keys as the secret is hard to guess.
const minSecretLen = 32

func (k *checker) identity() {
	id := &k.c.Identity
	if n := len(id.Secret); n > 0 && n < minSecretLen {
		k.report("identity.hmac_secret", "[secret]", "too short (%d characters): use at least %d random characters, such as the output of: openssl rand -hex 32", n, minSecretLen)
	}
	k.headerNames("identity.api_key_headers", id.APIKeyHeaders)
	k.headerNames("identity.headers", id.Headers)
	for i, h := range id.Headers {
		if capture.IsCredentialHeader(h, id.APIKeyHeaders) {
			k.report(fmt.Sprintf("identity.headers[%d]", i), h, "%q carries credentials, which are never recorded: remove it (the key is recorded as caller.key_id)", h)
		}
	}
	for i, p := range id.TrustedProxies {
		if key := fmt.Sprintf("identity.trusted_proxies[%d]", i); !p.IsValid() {
			k.report(key, "", "empty: give a CIDR such as 10.0.0.0/8 or an address, or remove the entry")
		}
	}
	jwt := &id.JWT
	for i, f := range jwt.KeyFiles {
		key := fmt.Sprintf("identity.jwt.keys[%d]", i)
		if f == "" {
			k.report(key, f, "empty: give the path of a PEM public key or a JWKS file, or remove the entry")
			continue
		}
		k.file(key, f, "a PEM public key or a JWKS file")
	}
	for _, l := range []struct {
		key  string
		list []string
		what string
	}{
		{"identity.jwt.issuers", jwt.Issuers, "an issuer such as https://auth.example.com/"},
		{"identity.jwt.audiences", jwt.Audiences, "an audience such as loan-api"},
		{"identity.jwt.claims", jwt.Claims, "a claim name such as tenant"},
	} {
		for i, s := range l.list {
			if s == "" {
				k.report(fmt.Sprintf("%s[%d]", l.key, i), s, "empty: give %s, or remove the entry", l.what)
			}
		}
	}
	// Issuers and audiences are checked only on verified tokens.
	if len(jwt.KeyFiles) == 0 {
		if len(jwt.Issuers) > 0 {
			k.report("identity.jwt.issuers", nil, "no effect without identity.jwt.keys: only verified tokens are checked; add the keys that sign them")
		}
		if len(jwt.Audiences) > 0 {
			k.report("identity.jwt.audiences", nil, "no effect without identity.jwt.keys: only verified tokens are checked; add the keys that sign them")
		}
	}
	if id.CacheSize < 0 {
		k.report("identity.cache_size", id.CacheSize, "negative: use 1 or more, or 0 for the default")
	}
}

// headerNames checks a list of HTTP header names.
func (k *checker) headerNames(key string, names []string) {
	for i, h := range names {
		switch {
		case h == "":
			k.report(fmt.Sprintf("%s[%d]", key, i), h, "empty: give a header name such as X-User-Id, or remove the entry")
		case !isToken(h):
			k.report(fmt.Sprintf("%s[%d]", key, i), h, "invalid header name %q: use letters, digits and -, such as X-User-Id", h)
		}
	}
}

// isToken reports whether s is an HTTP token (RFC 9110), as header names
// are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
