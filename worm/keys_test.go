package worm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// testKey is a key pair for tests.
type testKey struct {
	signer note.Signer
	skey   string
	vkey   string
}

func newTestKey(t testing.TB, name string) testKey {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: s, skey: skey, vkey: vkey}
}

func (k testKey) id() string { return KeyID(k.signer.Name(), k.signer.KeyHash()) }

func TestGenerateKey(t *testing.T) {
	skey, vkey, err := GenerateKey("gw-eu1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(skey, "PRIVATE+KEY+gw-eu1+") || !strings.HasPrefix(vkey, "gw-eu1+") {
		t.Fatalf("keys %q, %q: unexpected form", skey, vkey)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("verify with generated verifier key: %v", err)
	}
	if skey2, _, _ := GenerateKey("gw-eu1"); skey2 == skey {
		t.Fatal("two generated keys are equal")
	}
}

func TestGenerateKeyRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "a b", "a\tb", "a+b", "a#b", "a\x00b", "a\u00a0b", "\xff"} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := GenerateKey(name); err == nil {
				t.Fatalf("GenerateKey(%q) succeeded", name)
			}
		})
	}
}

func TestWriteKeyPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	signingPath, trustPath, err := WriteKeyPair(dir, "gw-eu1")
	if err != nil {
		t.Fatal(err)
	}
	if signingPath != filepath.Join(dir, "signing.key") || trustPath != filepath.Join(dir, "trust.pub") {
		t.Fatalf("paths %q, %q", signingPath, trustPath)
	}
	if runtime.GOOS != "windows" {
		for path, want := range map[string]fs.FileMode{dir: 0o700 | fs.ModeDir, signingPath: 0o600, trustPath: 0o644} {
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Mode(); got != want {
				t.Errorf("mode of %s = %v, want %v", path, got, want)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want 2 (no temporary files left)", len(entries))
	}

	s, err := LoadSigner(signingPath)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := LoadTrust(trustPath)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SignCheckpoint(s, "gw-eu1", 1, [32]byte{1}, fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(msg, tr, "gw-eu1"); err != nil {
		t.Fatalf("the written pair does not verify: %v", err)
	}
}

func TestWriteKeyPairRefusesToOverwrite(t *testing.T) {
	for _, existing := range []string{"signing.key", "trust.pub"} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, existing)
			if err := os.WriteFile(path, []byte("keep me\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := WriteKeyPair(dir, "gw")
			if err == nil {
				t.Fatal("WriteKeyPair overwrote an existing file")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "refusing to overwrite") {
				t.Errorf("error %q does not name %s and say it refuses", err, path)
			}
			if data, _ := os.ReadFile(path); string(data) != "keep me\n" {
				t.Errorf("%s changed to %q", existing, data)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the existing file", len(entries))
			}
		})
	}
}

func TestWriteNewFileNeverReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Past WriteKeyPair's own check, as when another process wins a race.
	if err := writeNewFile(path, []byte("new"), 0o600); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("writeNewFile over an existing file: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "old" {
		t.Fatalf("file changed to %q", data)
	}
}

func TestLoadSigner(t *testing.T) {
	k := newTestKey(t, "gw")
	write := func(t *testing.T, content string, mode fs.FileMode) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "signing.key")
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("surrounding whitespace", func(t *testing.T) {
		s, err := LoadSigner(write(t, "\n  "+k.skey+" \r\n\n", 0o600))
		if err != nil {
			t.Fatal(err)
		}
		if s.Name() != "gw" || s.KeyHash() != k.signer.KeyHash() {
			t.Fatalf("loaded %s, want %s", KeyID(s.Name(), s.KeyHash()), k.id())
		}
	})

	tests := []struct {
		name    string
		content string
		mode    fs.FileMode
		want    []string // substrings of the error
	}{
		{"readable by others", k.skey, 0o644, []string{"mode 0644", "chmod 600 "}},
		{"writable by group", k.skey, 0o620, []string{"mode 0620", "chmod 600 "}},
		{"verifier key", k.vkey, 0o600, []string{"this is a verifier key"}},
		{"trust.pub given by mistake", k.vkey + "\n", 0o644, []string{"this is a verifier key"}},
		{"garbage", "hello", 0o600, []string{"malformed key"}},
		{"empty", "", 0o600, []string{"malformed key"}},
		{"two lines", k.skey + "\n" + k.skey, 0o600, []string{"want a single line"}},
		{"bad hash", strings.Replace(k.skey, "+gw+", "+gx+", 1), 0o600, []string{"malformed key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tt.mode != 0o600 {
				t.Skip("no Unix modes")
			}
			path := write(t, tt.content, tt.mode)
			_, err := LoadSigner(path)
			if err == nil {
				t.Fatal("LoadSigner succeeded")
			}
			msg := err.Error()
			for _, w := range append(tt.want, path) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			secret := strings.SplitN(k.skey, "+", 5)[4] // PRIVATE+KEY+name+hash+secret
			if strings.Contains(msg, secret) {
				t.Errorf("error %q reveals the private key", msg)
			}
		})
	}

	t.Run("missing", func(t *testing.T) {
		_, err := LoadSigner(filepath.Join(t.TempDir(), "nope"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
	})
}
