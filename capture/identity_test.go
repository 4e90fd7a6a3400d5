package capture

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var identTestSecret = []byte("identity-test-secret")

// identTestExchange builds an exchange from the peer address and header
// name/value pairs.
func identTestExchange(peer string, kv ...string) *Exchange {
	ex := &Exchange{}
	if peer != "" {
		ex.ClientAddr = netip.MustParseAddrPort(peer)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		ex.RequestHeaders.Fields = append(ex.RequestHeaders.Fields, Header{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return ex
}

func identTestNew(t testing.TB, o IdentityOptions) *Identifier {
	t.Helper()
	if o.Secret == nil {
		o.Secret = identTestSecret
	}
	id, err := NewIdentifier(o)
	if err != nil {
		t.Fatalf("NewIdentifier: %v", err)
	}
	return id
}

// identTestClock is a settable clock for the cache and JWT validity.
type identTestClock struct{ t time.Time }

func (c *identTestClock) now() time.Time { return c.t }

func TestNewIdentifierErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    IdentityOptions
		want string
	}{
		{"no secret", IdentityOptions{}, "secret is empty"},
		{"negative cache", IdentityOptions{Secret: identTestSecret, CacheSize: -1}, "cache size is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewIdentifier(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestIdentifierKeyID(t *testing.T) {
	id := identTestNew(t, IdentityOptions{})
	m := hmac.New(sha256.New, identTestSecret)
	m.Write([]byte("sk-live-123"))
	want := "k_" + hex.EncodeToString(m.Sum(nil))[:16]
	if got := id.KeyID([]byte("sk-live-123")); got != want {
		t.Fatalf("KeyID = %q, want %q", got, want)
	}
	other := identTestNew(t, IdentityOptions{Secret: []byte("another secret")})
	if other.KeyID([]byte("sk-live-123")) == want {
		t.Fatal("KeyID does not depend on the secret")
	}
}

func TestIdentifyAPIKey(t *testing.T) {
	const key = "sk-proj-AbCdEf0123456789"
	basic := base64.StdEncoding.EncodeToString([]byte("alice:pa55-w0rd:x"))
	for _, tc := range []struct {
		name    string
		o       IdentityOptions
		headers []string
		cred    string // the credential whose KeyID is expected; "" for none
		subject string
		secret  string // must not appear in the Caller
	}{
		{name: "bearer", headers: []string{"Authorization", "Bearer " + key}, cred: key, secret: key},
		{name: "bearer lower-case scheme and name", headers: []string{"authorization", "bearer  " + key + " "}, cred: key, secret: key},
		{name: "x-api-key", headers: []string{"X-Api-Key", key}, cred: key, secret: key},
		{name: "api-key", headers: []string{"api-key", key}, cred: key, secret: key},
		{name: "authorization first", headers: []string{"x-api-key", "other", "Authorization", "Bearer " + key}, cred: key, secret: key},
		{name: "empty bearer falls through", headers: []string{"Authorization", "Bearer ", "x-api-key", key}, cred: key, secret: key},
		{name: "other scheme is the whole value", headers: []string{"Authorization", "Token " + key}, cred: "Token " + key, secret: key},
		{name: "basic", headers: []string{"Authorization", "Basic " + basic}, cred: "alice:pa55-w0rd:x", subject: "alice", secret: "pa55-w0rd"},
		{name: "basic unpadded", headers: []string{"Authorization", "Basic " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("bob:pw")), "=")}, cred: "bob:pw", subject: "bob", secret: "pw"},
		{name: "basic malformed", headers: []string{"Authorization", "Basic !!" + key}, cred: "Basic !!" + key, secret: key},
		{name: "basic without colon", headers: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(key))}, cred: "Basic " + base64.StdEncoding.EncodeToString([]byte(key)), secret: key},
		{name: "none", headers: []string{"Content-Type", "application/json"}},
		{name: "configured headers", o: IdentityOptions{APIKeyHeaders: []string{"X-Gateway-Key"}},
			headers: []string{"Authorization", "Bearer ignored", "x-gateway-key", key}, cred: key, secret: key},
		{name: "configured headers, none present", o: IdentityOptions{APIKeyHeaders: []string{"X-Gateway-Key"}},
			headers: []string{"Authorization", "Bearer " + key}, secret: key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := identTestNew(t, tc.o)
			c, flags := id.Identify(identTestExchange("192.0.2.1:1000", tc.headers...))
			want := ""
			if tc.cred != "" {
				want = id.KeyID([]byte(tc.cred))
			}
			if c.KeyID != want {
				t.Errorf("KeyID = %q, want %q (of %q)", c.KeyID, want, tc.cred)
			}
			if c.Subject != tc.subject {
				t.Errorf("Subject = %q, want %q", c.Subject, tc.subject)
			}
			if flags != nil {
				t.Errorf("flags = %q", flags)
			}
			if tc.secret != "" {
				if s := fmt.Sprintf("%+v %#v", c, c); strings.Contains(s, tc.secret) {
					t.Errorf("caller holds the secret %q: %s", tc.secret, s)
				}
			}
		})
	}
}

func TestIdentifyHeaders(t *testing.T) {
	long := strings.Repeat("a", 255) + "é" + "tail" // é straddles byte 256
	id := identTestNew(t, IdentityOptions{Headers: []string{"X-User-Id", "OpenAI-Organization", "X-Absent", "X-Long"}})
	c, _ := id.Identify(identTestExchange("192.0.2.1:1000",
		"openai-organization", "org-42",
		"X-Long", long,
		"x-user-id", "u-7",
	))
	want := [][2]string{{"X-User-Id", "u-7"}, {"OpenAI-Organization", "org-42"}, {"X-Long", strings.Repeat("a", 255)}}
	if !reflect.DeepEqual(c.Headers, want) {
		t.Fatalf("Headers = %q, want %q", c.Headers, want)
	}
	exact := strings.Repeat("b", 300)
	c, _ = id.Identify(identTestExchange("192.0.2.1:1000", "X-Long", exact))
	if got := c.Headers[0][1]; got != exact[:256] {
		t.Fatalf("capped value has %d bytes, want 256", len(got))
	}
	c, _ = id.Identify(identTestExchange("192.0.2.1:1000"))
	if c.Headers != nil {
		t.Fatalf("Headers = %q, want none", c.Headers)
	}
}

func TestIdentifyCertificate(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "svc-loans", Organization: []string{"Bank"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	id := identTestNew(t, IdentityOptions{})
	ex := identTestExchange("192.0.2.1:1000")
	ex.PeerCertificate = cert
	c, _ := id.Identify(ex)
	sum := sha256.Sum256(der)
	if c.CertSubject != "CN=svc-loans,O=Bank" || c.CertFingerprint != hex.EncodeToString(sum[:]) {
		t.Fatalf("cert = %q %q", c.CertSubject, c.CertFingerprint)
	}
}

func TestIdentifyClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("::ffff:172.16.0.0/108")}
	for _, tc := range []struct {
		name    string
		peer    string
		headers []string
		want    string
	}{
		{"untrusted peer ignores XFF", "198.51.100.7:4000", []string{"X-Forwarded-For", "1.2.3.4"}, "198.51.100.7"},
		{"mapped peer is unmapped", "[::ffff:198.51.100.7]:4000", nil, "198.51.100.7"},
		{"trusted peer without XFF", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"one hop", "10.1.2.3:4000", []string{"X-Forwarded-For", "203.0.113.5"}, "203.0.113.5"},
		{"several trusted hops", "10.1.2.3:4000", []string{"X-Forwarded-For", "203.0.113.5, 10.9.9.9, 2001:db8:1::5"}, "203.0.113.5"},
		{"spoofed leftmost entries ignored", "10.1.2.3:4000", []string{"X-Forwarded-For", "6.6.6.6, 7.7.7.7, 203.0.113.5, 10.9.9.9"}, "203.0.113.5"},
		{"several XFF fields read right to left", "10.1.2.3:4000", []string{"x-forwarded-for", "6.6.6.6, 203.0.113.5", "X-Forwarded-For", "10.9.9.9"}, "203.0.113.5"},
		{"all trusted: the leftmost", "10.1.2.3:4000", []string{"X-Forwarded-For", "10.3.3.3, 10.9.9.9"}, "10.3.3.3"},
		{"malformed stops at last trusted", "10.1.2.3:4000", []string{"X-Forwarded-For", "203.0.113.5, bogus, 10.9.9.9"}, "10.9.9.9"},
		{"malformed rightmost keeps the peer", "10.1.2.3:4000", []string{"X-Forwarded-For", "203.0.113.5, 999.1.1.1"}, "10.1.2.3"},
		{"empty entries skipped", "10.1.2.3:4000", []string{"X-Forwarded-For", "203.0.113.5,, "}, "203.0.113.5"},
		{"entry with port", "10.1.2.3:4000", []string{"X-Forwarded-For", "203.0.113.5:5555"}, "203.0.113.5"},
		{"ipv6 entry with port", "10.1.2.3:4000", []string{"X-Forwarded-For", "[2001:db8:2::9]:443"}, "2001:db8:2::9"},
		{"mapped entry", "10.1.2.3:4000", []string{"X-Forwarded-For", "::ffff:203.0.113.5"}, "203.0.113.5"},
		{"mapped trusted prefix", "172.16.0.9:4000", []string{"X-Forwarded-For", "203.0.113.5"}, "203.0.113.5"},
		{"no peer", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := identTestNew(t, IdentityOptions{TrustedProxies: trusted})
			c, _ := id.Identify(identTestExchange(tc.peer, tc.headers...))
			if c.IP != tc.want {
				t.Fatalf("IP = %q, want %q", c.IP, tc.want)
			}
		})
	}
}

func TestIdentifyCache(t *testing.T) {
	clock := &identTestClock{t: time.Unix(1_800_000_000, 0)}
	id := identTestNew(t, IdentityOptions{CacheSize: 2})
	id.now = clock.now
	ex := identTestExchange("192.0.2.1:1000", "x-api-key", "key-one")
	key := identCacheKey{kind: identPlain, sum: sha256.Sum256([]byte("key-one"))}

	c1, _ := id.Identify(ex)
	e1, ok := id.cache.Peek(key)
	if !ok {
		t.Fatal("credential not cached")
	}
	clock.t = clock.t.Add(9 * time.Minute)
	c2, _ := id.Identify(ex)
	if e2, _ := id.cache.Peek(key); e2 != e1 || !reflect.DeepEqual(c1, c2) {
		t.Fatalf("cache hit resolved again: %+v vs %+v", c1, c2)
	}
	clock.t = clock.t.Add(2 * time.Minute)
	c3, _ := id.Identify(ex)
	if e3, _ := id.cache.Peek(key); e3 == e1 || !reflect.DeepEqual(c1, c3) {
		t.Fatal("expired entry was reused, or resolved differently")
	}
	for _, k := range []string{"a", "b", "c"} {
		id.Identify(identTestExchange("192.0.2.1:1000", "x-api-key", k))
	}
	if n := id.cache.Len(); n != 2 {
		t.Fatalf("cache holds %d entries, want its size 2", n)
	}
	for _, k := range id.cache.Keys() {
		if strings.Contains(string(k.sum[:]), "key-one") {
			t.Fatal("cache key holds the credential")
		}
	}
}

func TestIdentifyConcurrent(t *testing.T) {
	id := identTestNew(t, IdentityOptions{CacheSize: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	keys := []string{"k1", "k2", "k3", "k4", "k5"}
	want := map[string]string{}
	for _, k := range keys {
		want[k] = id.KeyID([]byte(k))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				k := keys[(g+i)%len(keys)]
				c, _ := id.Identify(identTestExchange("10.0.0.1:1", "x-api-key", k, "X-Forwarded-For", "203.0.113.5"))
				if c.KeyID != want[k] || c.IP != "203.0.113.5" {
					t.Errorf("%s: %+v", k, c)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkIdentifyAPIKey(b *testing.B) {
	id := identTestNew(b, IdentityOptions{})
	ex := identTestExchange("192.0.2.1:1000", "Content-Type", "application/json", "Authorization", "Bearer sk-proj-0123456789abcdef0123456789abcdef")
	id.Identify(ex)
	b.ReportAllocs()
	for b.Loop() {
		if c, _ := id.Identify(ex); c.KeyID == "" {
			b.Fatal("no key id")
		}
	}
}

func TestCredentialHeadersNeverRecorded(t *testing.T) {
	for _, h := range []string{"authorization", "Cookie", "X-Api-Key", "X-Custom-Key"} {
		_, err := NewIdentifier(IdentityOptions{Secret: []byte("s"), Headers: []string{"X-User-Id", h},
			APIKeyHeaders: []string{"Authorization", "x-api-key", "X-Custom-Key"}})
		if err == nil || !strings.Contains(err.Error(), "carries credentials") {
			t.Errorf("identity header %q: err %v, want a refusal", h, err)
		}
	}
}
