package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates for tests and writes them as PEM files.
type testCA struct {
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	CAFile string
	pool   *x509.CertPool
	serial int64
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{dir: t.TempDir(), cert: cert, key: key, pool: x509.NewCertPool(), serial: 1}
	ca.pool.AddCert(cert)
	ca.CAFile = ca.write(t, name+"-ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes a leaf certificate named cn, for a server on 127.0.0.1 and
// localhost or for a client, and returns its PEM files and the pair.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"auditgate tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = ca.write(t, cn+".pem", "CERTIFICATE", der)
	keyFile = ca.write(t, cn+"-key.pem", "EC PRIVATE KEY", keyDER)
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}

// tlsClient trusts roots, presents the first of certs whatever CAs the
// server asks for, and opens a new connection (a full handshake) for every
// request.
func tlsClient(t *testing.T, roots *x509.CertPool, certs ...tls.Certificate) *http.Client {
	conf := &tls.Config{RootCAs: roots}
	if len(certs) > 0 {
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	tr := &http.Transport{
		DisableKeepAlives:  true,
		DisableCompression: true,
		TLSClientConfig:    conf,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// forwardedProtoUpstream answers with the X-Forwarded-Proto it received.
func forwardedProtoUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(up.Close)
	return up
}

func TestTLSListener(t *testing.T) {
	ca := newTestCA(t, "listener")
	certFile, keyFile, _ := ca.issue(t, "gateway", true)
	opts := oneRoute(forwardedProtoUpstream(t).URL)
	opts.TLS = &ListenerTLS{CertFile: certFile, KeyFile: keyFile}
	gw := startGateway(t, opts)
	if !strings.HasPrefix(gw.URL, "https://") {
		t.Fatalf("gateway URL %s", gw.URL)
	}

	resp, body := getBody(t, tlsClient(t, ca.pool), gw.URL+"/v1/models")
	if resp.StatusCode != 200 || string(body) != "https" {
		t.Errorf("status %d, upstream saw X-Forwarded-Proto %q, want https", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != "gateway" {
		t.Errorf("served certificate: %+v", resp.TLS)
	}
	if resp.ProtoMajor != 1 {
		t.Errorf("protocol %s, want HTTP/1.x", resp.Proto)
	}
	ex := gw.rec.wait(t, 1)[0]
	if !ex.TLS || ex.PeerSubject != "" {
		t.Errorf("exchange TLS %v peer %q, want TLS and no client certificate", ex.TLS, ex.PeerSubject)
	}

	// A client that does not trust the CA gets no answer.
	if resp, err := tlsClient(t, x509.NewCertPool()).Get(gw.URL + "/v1/models"); err == nil {
		resp.Body.Close()
		t.Error("a client without the CA completed a request")
	}
	// Plain HTTP on the TLS port is not proxied.
	if resp, err := rawClient(t).Get("http://" + strings.TrimPrefix(gw.URL, "https://") + "/v1/models"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP on the TLS listener was proxied")
		}
	}
}

func TestTLSPlainListenerForwardsHTTP(t *testing.T) {
	gw := startGateway(t, oneRoute(forwardedProtoUpstream(t).URL))
	resp, body := getBody(t, rawClient(t), gw.URL+"/v1/models")
	if resp.StatusCode != 200 || string(body) != "http" {
		t.Errorf("status %d, upstream saw X-Forwarded-Proto %q, want http", resp.StatusCode, body)
	}
	if ex := gw.rec.wait(t, 1)[0]; ex.TLS {
		t.Error("exchange over plain HTTP recorded as TLS")
	}
}

func TestTLSMutual(t *testing.T) {
	serverCA := newTestCA(t, "server")
	clientCA := newTestCA(t, "clients")
	otherCA := newTestCA(t, "other")
	certFile, keyFile, _ := serverCA.issue(t, "gateway", true)
	_, _, alice := clientCA.issue(t, "alice", false)
	_, _, mallory := otherCA.issue(t, "mallory", false)

	tests := []struct {
		name    string
		require bool
		certs   []tls.Certificate
		ok      bool
		peer    string
	}{
		{"optional, with certificate", false, []tls.Certificate{alice}, true, "alice"},
		{"optional, without certificate", false, nil, true, ""},
		{"optional, certificate from another CA", false, []tls.Certificate{mallory}, false, ""},
		{"required, with certificate", true, []tls.Certificate{alice}, true, "alice"},
		{"required, without certificate", true, nil, false, ""},
		{"required, certificate from another CA", true, []tls.Certificate{mallory}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := namedUpstream(t, "ok")
			opts := oneRoute(up.URL)
			opts.TLS = &ListenerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clientCA.CAFile, RequireClientCert: tt.require}
			gw := startGateway(t, opts)
			resp, err := tlsClient(t, serverCA.pool, tt.certs...).Get(gw.URL + "/v1/models")
			if !tt.ok {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d; want the handshake refused", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			ex := gw.rec.wait(t, 1)[0]
			if !ex.TLS || ex.PeerSubject != tt.peer {
				t.Errorf("exchange TLS %v peer %q, want %q", ex.TLS, ex.PeerSubject, tt.peer)
			}
		})
	}
}

func TestTLSUpstream(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			w.WriteHeader(400)
			return
		}
		io.WriteString(w, "secure:"+r.TLS.ServerName)
	}))
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	up.StartTLS()
	defer up.Close()
	caFile := filepath.Join(t.TempDir(), "upstream.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	otherCA := newTestCA(t, "unrelated")

	tests := []struct {
		name   string
		tls    UpstreamTLS
		status int
		body   string
	}{
		{"trusted CA file", UpstreamTLS{CAFile: caFile}, 200, "secure:"},
		{"system roots only", UpstreamTLS{}, 502, ""},
		{"unrelated CA file", UpstreamTLS{CAFile: otherCA.CAFile}, 502, ""},
		{"server name override in certificate", UpstreamTLS{CAFile: caFile, ServerName: "example.com"}, 200, "secure:example.com"},
		{"server name override not in certificate", UpstreamTLS{CAFile: caFile, ServerName: "wrong.test"}, 502, ""},
		{"insecure skip verify", UpstreamTLS{InsecureSkipVerify: true}, 200, "secure:"},
		{"config used as is", UpstreamTLS{CAFile: "/nonexistent", Config: &tls.Config{RootCAs: poolOf(up.Certificate()), ServerName: "example.com"}}, 200, "secure:example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := startGateway(t, Options{Routes: []Route{{Name: "test", Upstream: up.URL, UpstreamTLS: tt.tls}}})
			resp, body := getBody(t, rawClient(t), gw.URL+"/v1/models")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			ex := gw.rec.wait(t, 1)[0]
			if tt.status != 200 {
				if ex.Outcome != OutcomeUpstreamUnavailable {
					t.Errorf("outcome %v, want %v", ex.Outcome, OutcomeUpstreamUnavailable)
				}
				checkGatewayAnswer(t, resp, body, ex)
				for _, s := range []string{"x509", "certificate", "tls:"} {
					if strings.Contains(string(body), s) {
						t.Errorf("body leaks %q: %s", s, body)
					}
				}
				return
			}
			if string(body) != tt.body || ex.Outcome != OutcomeOK {
				t.Errorf("body %q outcome %v, want %q", body, ex.Outcome, tt.body)
			}
		})
	}
}

func poolOf(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func TestTLSCertificateRotation(t *testing.T) {
	ca := newTestCA(t, "rotation")
	cert1, key1, _ := ca.issue(t, "gateway-1", true)
	cert2, key2, _ := ca.issue(t, "gateway-2", true)
	a, b := namedUpstream(t, "A"), namedUpstream(t, "B")
	opts := oneRoute(a.URL)
	opts.TLS = &ListenerTLS{CertFile: cert1, KeyFile: key1}
	gw := startGateway(t, opts)

	served := func(c *http.Client) (cn, body string) {
		t.Helper()
		resp, b := getBody(t, c, gw.URL+"/v1/models")
		if resp.StatusCode != 200 || resp.TLS == nil {
			t.Fatalf("status %d tls %v", resp.StatusCode, resp.TLS)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName, string(b)
	}
	if cn, _ := served(tlsClient(t, ca.pool)); cn != "gateway-1" {
		t.Fatalf("first certificate %q", cn)
	}
	// A keep-alive connection opened before the rotation.
	keepTr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, MaxIdleConnsPerHost: 1}
	defer keepTr.CloseIdleConnections()
	keep := &http.Client{Transport: keepTr, Timeout: 10 * time.Second}
	if cn, _ := served(keep); cn != "gateway-1" {
		t.Fatalf("keep-alive client got %q", cn)
	}

	next := oneRoute(b.URL)
	next.TLS = &ListenerTLS{CertFile: cert2, KeyFile: key2}
	if err := gw.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if cn, body := served(tlsClient(t, ca.pool)); cn != "gateway-2" || body != "B" {
		t.Errorf("after rotation a new handshake got %q (body %q), want gateway-2 and B", cn, body)
	}
	// The open connection was not dropped: it still has its handshake.
	if cn, body := served(keep); cn != "gateway-1" || body != "B" {
		t.Errorf("the connection opened before the rotation saw %q (body %q)", cn, body)
	}

	// A reload with an unreadable key changes nothing, routes included.
	bad := oneRoute(a.URL)
	bad.TLS = &ListenerTLS{CertFile: cert1, KeyFile: filepath.Join(t.TempDir(), "missing.pem")}
	if err := gw.Reload(bad); err == nil {
		t.Fatal("Reload with a missing key file succeeded")
	}
	if cn, body := served(tlsClient(t, ca.pool)); cn != "gateway-2" || body != "B" {
		t.Errorf("after a failed reload: certificate %q body %q, want gateway-2 and B", cn, body)
	}

	// Rewriting the files in place and reloading rotates too.
	cert3, key3, _ := ca.issue(t, "gateway-3", true)
	for _, p := range [][2]string{{cert3, cert2}, {key3, key2}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := gw.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if cn, _ := served(tlsClient(t, ca.pool)); cn != "gateway-3" {
		t.Errorf("after rewriting the files: certificate %q, want gateway-3", cn)
	}
}

func TestTLSListenerConfigErrors(t *testing.T) {
	ca := newTestCA(t, "errors")
	certFile, keyFile, _ := ca.issue(t, "gateway", true)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	tests := []struct {
		name string
		tls  ListenerTLS
		want string
	}{
		{"missing cert", ListenerTLS{CertFile: "/nonexistent/cert.pem", KeyFile: keyFile}, "load TLS certificate"},
		{"key does not match", ListenerTLS{CertFile: certFile, KeyFile: notPEM}, "load TLS certificate"},
		{"missing client CA", ListenerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: "/nonexistent/ca.pem"}, "client CA file"},
		{"client CA without PEM", ListenerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: notPEM}, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := oneRoute("http://127.0.0.1:1")
			opts.TLS = &tt.tls
			if _, err := New(opts, nil, nil, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error about %q", err, tt.want)
			}
		})
	}
}
