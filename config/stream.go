package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// streamFileName holds the generated stream id in the data directory.
const streamFileName = "stream"

// StreamID returns the instance's trail stream id: the configured stream;
// else the id kept in data_dir/stream; else a new one, the host name (made
// safe) and 4 random hex digits, written there once. Keeping it in the data
// directory gives an instance the same stream across restarts, and the
// random part keeps two instances on one host apart.
func (c *Config) StreamID() (string, error) {
	if c.Stream != "" {
		return c.Stream, nil
	}
	path := filepath.Join(c.DataDir, streamFileName)
	if id, err := readStreamID(path); !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	host, _ := os.Hostname()
	var suffix [2]byte
	rand.Read(suffix[:])
	id := streamName(host) + "-" + hex.EncodeToString(suffix[:])
	created, err := createOnce(path, []byte(id+"\n"))
	if err != nil {
		return "", fmt.Errorf("create stream id: %w", err)
	}
	if !created {
		return readStreamID(path)
	}
	return id, nil
}

func readStreamID(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read stream id: %w", err)
	}
	id := strings.TrimSpace(string(data))
	if !validStream(id) {
		return "", fmt.Errorf("read stream id: %s holds %q: use 1 to 64 of a-z, 0-9, '.', '_' and '-'", path, id)
	}
	return id, nil
}

// streamName turns a host name into a stream id prefix.
func streamName(host string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() == 48 {
			break
		}
	}
	if b.Len() == 0 {
		return "auditgate"
	}
	return b.String()
}

// validStream reports whether s can name a stream: it becomes a key prefix
// in the trail's store and the origin of its checkpoints.
func validStream(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != "." && s != ".."
}
