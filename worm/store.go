package worm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Store holds trail objects. Put is create-only: writing a key that exists
// with identical bytes is success (so a retried upload is harmless), with
// different bytes ErrConflict. Keys must satisfy ValidateObjectKey.
// Implementations are safe for concurrent use.
type Store interface {
	// Put stores data at key unless key exists. It returns nil if key now
	// holds data, ErrConflict if it holds other bytes.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the object at key, or an error matching ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the keys that begin with prefix, sorted. The prefix is a
	// string prefix, as in S3: "a/b" matches "a/b/c" and "a/bc".
	List(ctx context.Context, prefix string) ([]string, error)
}

// Errors from stores; callers branch on them with errors.Is, and the
// wrapping error names the key and the store.
var (
	ErrNotFound   = errors.New("object not found")
	ErrConflict   = errors.New("object exists with different content")
	ErrInvalidKey = errors.New("invalid object key")
)

// OpenStore opens a store from its URL: file:///abs/path or a plain path
// opens a FileStore, s3://bucket/prefix?… an S3Store (see ParseS3URL for
// its parameters; credentials come from the AWS environment variables).
// It does not contact the server.
func OpenStore(rawURL string) (Store, error) {
	switch {
	case rawURL == "":
		return nil, errors.New("open store: empty store URL")
	case strings.HasPrefix(rawURL, "s3://"):
		o, err := ParseS3URL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		s, err := NewS3Store(o)
		if err != nil {
			return nil, err
		}
		return s, nil
	case strings.HasPrefix(rawURL, "file:"):
		dir, err := fileURLPath(rawURL)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return NewFileStore(dir)
	case strings.Contains(rawURL, "://"):
		scheme, _, _ := strings.Cut(rawURL, "://")
		return nil, fmt.Errorf("open store: unknown store scheme %q: use file:///abs/path, a directory, or s3://bucket/prefix", scheme)
	}
	return NewFileStore(rawURL)
}

// fileURLPath returns the directory a file URL names. Only the local host
// and absolute paths are accepted; a query or fragment is refused rather
// than silently ignored.
func fileURLPath(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse store URL %q: %w", rawURL, err)
	}
	switch {
	case u.Opaque != "" || !strings.HasPrefix(u.Path, "/"):
		return "", fmt.Errorf("store URL %q: a file URL needs an absolute path, as in file:///var/lib/auditgate/trail", rawURL)
	case u.Host != "" && u.Host != "localhost":
		return "", fmt.Errorf("store URL %q: file URLs cannot name another host (%q)", rawURL, u.Host)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("store URL %q: a file URL takes no user, query or fragment", rawURL)
	}
	return u.Path, nil
}

// MemStore is an in-memory Store for tests. Set and Delete bypass the
// create-only rule so tests can tamper with a trail. The zero value is an
// empty store.
type MemStore struct {
	mu      sync.RWMutex
	objects map[string][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{} }

var _ Store = (*MemStore)(nil)

// Put implements Store.
func (s *MemStore) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateObjectKey(key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.objects[key]; ok {
		if bytes.Equal(old, data) {
			return nil
		}
		return fmt.Errorf("put %s in memory store: %w", key, ErrConflict)
	}
	s.setLocked(key, data)
	return nil
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidateObjectKey(key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	data, ok := s.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s from memory store: %w", key, ErrNotFound)
	}
	return bytes.Clone(data), nil
}

// List implements Store.
func (s *MemStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := validateListPrefix(prefix); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	s.mu.RLock()
	keys := make([]string, 0, len(s.objects))
	for k := range s.objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	s.mu.RUnlock()
	slices.Sort(keys)
	return keys, nil
}

// Set stores data at key whether or not it exists, as an attacker with
// write access to the bucket could.
func (s *MemStore) Set(key string, data []byte) error {
	if err := ValidateObjectKey(key); err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked(key, data)
	return nil
}

// Delete removes key if it exists.
func (s *MemStore) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, key)
}

func (s *MemStore) setLocked(key string, data []byte) {
	if s.objects == nil {
		s.objects = make(map[string][]byte)
	}
	s.objects[key] = bytes.Clone(data)
}

// validateListPrefix accepts the empty prefix and any beginning of a valid
// key: a key, possibly ending in a slash or within an element.
func validateListPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := layoutCheckPath(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("%w: prefix %q: %w", ErrInvalidKey, prefix, err)
	}
	return nil
}
