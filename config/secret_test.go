package config

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadSecretConfigured(t *testing.T) {
	t.Parallel()
	c := Default()
	c.DataDir = t.TempDir()
	c.Identity.Secret = []byte(strings.Repeat("s", 32))
	got, err := c.LoadSecret()
	if err != nil || string(got) != strings.Repeat("s", 32) {
		t.Fatalf("LoadSecret = %q, %v; want the configured secret", got, err)
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "hmac.key")); !os.IsNotExist(err) {
		t.Errorf("a configured secret wrote hmac.key (stat: %v)", err)
	}
	c.Identity.Secret = []byte("short")
	if _, err := c.LoadSecret(); err == nil || err.Error() != "load hmac secret: identity.hmac_secret is too short (5 characters): use at least 32" {
		t.Errorf("short secret: %v", err)
	}
}

func TestLoadSecretGenerated(t *testing.T) {
	t.Parallel()
	c := Default()
	c.DataDir = filepath.Join(t.TempDir(), "data", "sub")
	first, err := c.LoadSecret()
	if err != nil {
		t.Fatalf("LoadSecret: %v", err)
	}
	if raw, err := hex.DecodeString(string(first)); err != nil || len(raw) != 32 {
		t.Errorf("generated secret %q is not 32 bytes in hex", first)
	}
	path := filepath.Join(c.DataDir, "hmac.key")
	if c.SecretPath() != path {
		t.Errorf("SecretPath() = %q, want %q", c.SecretPath(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != string(first)+"\n" {
		t.Errorf("hmac.key holds %q (%v), want the secret and a newline", data, err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, c.DataDir: 0o700 | os.ModeDir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, want)
		}
	}
	again, err := c.LoadSecret()
	if err != nil || !bytes.Equal(again, first) {
		t.Errorf("second LoadSecret = %q, %v; want the first secret %q", again, err, first)
	}
	entries, _ := os.ReadDir(c.DataDir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only hmac.key (no temporary files left)", len(entries))
	}
}

func TestLoadSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := Default()
	c.DataDir = filepath.Join(dir, "unused")
	c.Identity.SecretFile = filepath.Join(dir, "mounted", "secret")
	if err := os.MkdirAll(filepath.Dir(c.Identity.SecretFile), 0o700); err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("0123456789abcdef", 3)
	if err := os.WriteFile(c.Identity.SecretFile, []byte("  "+want+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := c.LoadSecret()
	if err != nil || string(got) != want {
		t.Fatalf("LoadSecret = %q, %v; want the file's text without white space", got, err)
	}
	if _, err := os.Stat(c.DataDir); !os.IsNotExist(err) {
		t.Errorf("data dir created although the secret file exists")
	}

	if err := os.WriteFile(c.Identity.SecretFile, []byte("tooshort\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = c.LoadSecret()
	wantErr := "read hmac secret: " + c.Identity.SecretFile + " holds 8 characters: use at least 32 random characters, or delete the file to have one generated (which changes every key id)"
	if err == nil || err.Error() != wantErr {
		t.Errorf("short file: %v\nwant %s", err, wantErr)
	}
	if data, _ := os.ReadFile(c.Identity.SecretFile); string(data) != "tooshort\n" {
		t.Error("a short secret file was replaced")
	}
}

// TestLoadSecretConcurrent starts many "instances" on one data directory
// at once: they must all end up with the same secret.
func TestLoadSecretConcurrent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "shared")
	const n = 16
	secrets := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			c := Default()
			c.DataDir = dir
			<-start
			secrets[i], errs[i] = c.LoadSecret()
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		if !bytes.Equal(secrets[i], secrets[0]) {
			t.Fatalf("instance %d got %q, instance 0 %q", i, secrets[i], secrets[0])
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "hmac.key"))
	if err != nil || strings.TrimSpace(string(data)) != string(secrets[0]) {
		t.Errorf("hmac.key = %q, %v; want the agreed secret", data, err)
	}
}

func TestStreamID(t *testing.T) {
	dir := t.TempDir()
	c := Default()
	c.DataDir = dir
	id, err := c.StreamID()
	if err != nil {
		t.Fatal(err)
	}
	if !validStream(id) || len(id) < 6 || id[len(id)-5] != '-' {
		t.Fatalf("generated stream id %q", id)
	}
	again, err := c.StreamID()
	if err != nil || again != id {
		t.Fatalf("second call: %q, %v; want the kept %q", again, err, id)
	}
	c.Stream = "gw-eu1"
	if got, _ := c.StreamID(); got != "gw-eu1" {
		t.Errorf("configured stream: %q", got)
	}
	c.Stream = ""
	path := filepath.Join(dir, streamFileName)
	os.WriteFile(path, []byte("Not Valid!\n"), 0o600)
	want := "read stream id: " + path + ` holds "Not Valid!": use 1 to 64 of a-z, 0-9, '.', '_' and '-'`
	if _, err := c.StreamID(); err == nil || err.Error() != want {
		t.Errorf("corrupt stream file: %v, want %s", err, want)
	}
	c.DataDir = t.TempDir()
	os.Mkdir(filepath.Join(c.DataDir, streamFileName), 0o700)
	want = "read stream id: read " + filepath.Join(c.DataDir, streamFileName) + ": is a directory"
	if _, err := c.StreamID(); err == nil || err.Error() != want {
		t.Errorf("stream file a directory: %v, want %s", err, want)
	}
	if got := streamName("Build Host_01.example.com"); got != "build-host_01.example.com" {
		t.Errorf("streamName: %q", got)
	}
}
