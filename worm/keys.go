package worm

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// File names WriteKeyPair uses inside its directory.
const (
	SigningKeyFile = "signing.key"
	TrustFile      = "trust.pub"
)

// ValidateKeyName reports whether name can name a signing key: non-empty
// UTF-8 without spaces, control characters or '+' (the signed-note rules),
// and without '#', which starts a comment in trust files.
func ValidateKeyName(name string) error {
	switch {
	case name == "":
		return errors.New("key name is empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("key name %q is not valid UTF-8", name)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("key name %q contains a space or control character", name)
	case strings.ContainsAny(name, "+#"):
		return fmt.Errorf("key name %q contains '+' or '#'", name)
	}
	return nil
}

// GenerateKey makes a new Ed25519 key pair named name and returns the
// signer key ("PRIVATE+KEY+name+hash+…", secret) and the verifier key
// ("name+hash+…", for trust files).
func GenerateKey(name string) (skey, vkey string, err error) {
	if err := ValidateKeyName(name); err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("generate key %s: %w", name, err)
	}
	return skey, vkey, nil
}

// WriteKeyPair generates a key pair named name and writes the signer key to
// dir/signing.key (mode 0600) and the verifier key to dir/trust.pub (mode
// 0644), one line each, creating dir with mode 0700 if it is missing. It
// never overwrites: if either file exists it writes nothing and says which.
// Each file appears whole or not at all, and is on disk when it returns.
func WriteKeyPair(dir, name string) (signingPath, trustPath string, err error) {
	signingPath = filepath.Join(dir, SigningKeyFile)
	trustPath = filepath.Join(dir, TrustFile)
	for _, p := range []string{signingPath, trustPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("write key pair: %s already exists; refusing to overwrite it (move it away first)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("write key pair: %w", err)
		}
	}
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("write key pair: create directory: %w", err)
	}
	if err := writeNewFile(signingPath, []byte(skey+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("write key pair: %w", err)
	}
	if err := writeNewFile(trustPath, []byte(vkey+"\n"), 0o644); err != nil {
		// A signing key without its verifier key is of no use; leave the
		// directory as it was so that a retry can succeed.
		if rmErr := os.Remove(signingPath); rmErr == nil {
			_ = syncDir(dir)
		}
		return "", "", fmt.Errorf("write key pair: %w", err)
	}
	return signingPath, trustPath, nil
}

// writeNewFile writes data to a temporary file beside path, syncs it and
// hard-links it into place, so that path never exists half-written and an
// existing path is never replaced, then syncs the directory.
func writeNewFile(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		os.Remove(tmp)
	}()
	// Chmod, unlike the mode given at creation, is not narrowed by the umask.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite it", path)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// LoadSigner reads a signing key file written by WriteKeyPair. It refuses a
// file that group or others may access, since anyone who reads the key can
// sign checkpoints as this gateway.
func LoadSigner(path string) (note.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	const maxKeyFile = 4 << 10 // a key line is under 100 bytes
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("load signing key %s: file is larger than %d bytes; not a signing key", path, maxKeyFile)
	}
	s, err := parseSigner(path, strings.TrimSpace(string(data)))
	if err != nil {
		return nil, err
	}
	// Checked after parsing, so that a verifier key given by mistake is
	// named as such rather than met with advice to chmod it.
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("load signing key %s: group or others may access it (mode %04o); fix with: chmod 600 %s", path, perm, path)
	}
	return s, nil
}

// parseSigner parses a signer key; its messages never include the key.
func parseSigner(path, skey string) (note.Signer, error) {
	if !strings.HasPrefix(skey, "PRIVATE+KEY+") {
		if _, err := note.NewVerifier(skey); err == nil {
			return nil, fmt.Errorf("load signing key %s: this is a verifier key (trust file); want the PRIVATE+KEY+… line", path)
		}
		return nil, fmt.Errorf("load signing key %s: malformed key: want one line PRIVATE+KEY+name+hash+key", path)
	}
	if strings.IndexFunc(skey, unicode.IsSpace) >= 0 {
		return nil, fmt.Errorf("load signing key %s: malformed key: want a single line", path)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		// The library's messages speak of verifier keys; say it plainly.
		return nil, fmt.Errorf("load signing key %s: malformed key: bad name, hash, algorithm or key bytes, or the hash does not match the key", path)
	}
	return s, nil
}
