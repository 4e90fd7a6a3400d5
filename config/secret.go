package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// secretFileName is the generated HMAC secret's file in the data directory.
const secretFileName = "hmac.key"

// SecretPath returns the file LoadSecret reads when no secret is
// configured: Identity.SecretFile, or hmac.key in DataDir.
func (c *Config) SecretPath() string {
	if c.Identity.SecretFile != "" {
		return c.Identity.SecretFile
	}
	return filepath.Join(c.DataDir, secretFileName)
}

// LoadSecret returns the HMAC secret that turns API keys into key ids: the
// configured identity.hmac_secret; else the content of SecretPath (without
// surrounding white space); else a new secret, 32 random bytes written
// there in hex (mode 0600, directory 0700) and returned as that hex text.
// The secret is the file's text, not the bytes it encodes, so that copying
// the file's content into another instance's hmac_secret gives the same key
// ids there.
//
// Two instances starting at once on one file agree: the file is created
// whole under a temporary name and linked into place only if absent, and
// the instance that loses reads the winner's.
func (c *Config) LoadSecret() ([]byte, error) {
	if len(c.Identity.Secret) > 0 {
		if n := len(c.Identity.Secret); n < minSecretLen {
			return nil, fmt.Errorf("load hmac secret: identity.hmac_secret is too short (%d characters): use at least %d", n, minSecretLen)
		}
		return bytes.Clone(c.Identity.Secret), nil
	}
	path := c.SecretPath()
	secret, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	return createSecret(path)
}

func readSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read hmac secret: %w", err)
	}
	secret := bytes.TrimSpace(data)
	if n := len(secret); n < minSecretLen {
		return nil, fmt.Errorf("read hmac secret: %s holds %d characters: use at least %d random characters, or delete the file to have one generated (which changes every key id)", path, n, minSecretLen)
	}
	return secret, nil
}

func createSecret(path string) ([]byte, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("create hmac secret: %w", err)
	}
	secret := []byte(hex.EncodeToString(raw))
	created, err := createOnce(path, append(secret, '\n'))
	if err != nil {
		return nil, fmt.Errorf("create hmac secret: %w", err)
	}
	if !created {
		return readSecret(path)
	}
	return secret, nil
}

// createOnce writes content to a new file at path (mode 0600, directory
// 0700), durably, unless path exists already; created says which. The file
// is written whole under a temporary name and linked into place: a link,
// unlike a rename, never replaces a file, so when two instances race, both
// end up with the winner's content.
func createOnce(path string, content []byte) (created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*") // mode 0600
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(content)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, syncDir(dir)
}

// syncDir makes a new directory entry durable, so that a crash cannot
// bring back a data directory without the secret its key ids came from.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
