package worm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// fileTempMark is part of every temporary file's name. '~' is not a key
// character, so a temporary file can never be mistaken for an object.
const fileTempMark = "~tmp-"

const (
	fileObjectMode fs.FileMode = 0o444
	fileDirMode    fs.FileMode = 0o755
)

// FileStore is a Store in a local directory: the embedded default trail, or
// an auditor's download of a bucket. Each object is the file root/key, made
// read-only once written. All access goes through an os.Root, so neither a
// key nor a symbolic link placed in the directory can reach outside it.
//
// A file system cannot hold both "a" and "a/b" as files, so in a FileStore
// one key cannot be a directory of another; trail keys never are.
type FileStore struct {
	dir string
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns the store in directory dir. The directory is created
// by the first Put, not here, so that reading a mistyped path fails.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("open file store: empty directory name")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open file store %s: %w", dir, err)
	}
	return &FileStore{dir: abs}, nil
}

// Dir returns the store's absolute directory.
func (s *FileStore) Dir() string { return s.dir }

// Describe names the store for messages.
func (s *FileStore) Describe() string { return "directory " + s.dir }

// Put implements Store. The object is written to a temporary file beside
// it, synced, made read-only and hard-linked into place, which fails if the
// key exists, so an existing object is never replaced and no reader sees a
// partial one. The directory is synced before Put returns.
func (s *FileStore) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateObjectKey(key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	root, err := os.OpenRoot(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(s.dir, fileDirMode); err == nil {
			root, err = os.OpenRoot(s.dir)
		}
	}
	if err != nil {
		return fmt.Errorf("put %s in %s: %w", key, s.Describe(), err)
	}
	defer root.Close()
	if err := s.put(root, key, data); err != nil {
		return fmt.Errorf("put %s in %s: %w", key, s.Describe(), err)
	}
	return nil
}

func (s *FileStore) put(root *os.Root, key string, data []byte) error {
	dir := path.Dir(key)
	// A retried upload finds its object in place: no temporary file needed.
	if err := fileSameObject(root, key, data); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			err = fileSyncDir(root, dir)
		}
		return err
	}
	if err := fileMkdirAll(root, dir); err != nil {
		return err
	}
	tmp, err := fileWriteTemp(root, key, data)
	if err != nil {
		return err
	}
	linkErr := root.Link(tmp, key)
	if err := root.Remove(tmp); err != nil && linkErr == nil {
		return fmt.Errorf("remove temporary file: %w", err)
	}
	if errors.Is(linkErr, fs.ErrExist) {
		// Another writer won the race; its file is complete, since it was
		// synced before being linked.
		linkErr = fileSameObject(root, key, data)
	}
	if linkErr != nil {
		return linkErr
	}
	return fileSyncDir(root, dir)
}

// fileSameObject compares the object at key with data: nil if they are
// equal, ErrConflict if not, fs.ErrNotExist if there is no object.
func fileSameObject(root *os.Root, key string, data []byte) error {
	old, err := root.ReadFile(key)
	switch {
	case err == nil && bytes.Equal(old, data):
		return nil
	case err == nil:
		return ErrConflict
	case fileIsDir(root, key):
		return fmt.Errorf("%w: a directory has this name", ErrConflict)
	}
	return err
}

// fileWriteTemp writes data to a new, synced, read-only file beside key and
// returns its name.
func fileWriteTemp(root *os.Root, key string, data []byte) (name string, err error) {
	var suffix [8]byte
	rand.Read(suffix[:])
	name = key + fileTempMark + hex.EncodeToString(suffix[:])
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			root.Remove(name)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return "", fmt.Errorf("write temporary file: %w", err)
	}
	// Chmod on the open file, unlike the creation mode, ignores the umask,
	// and doing it before the link means the object is never writable.
	if err = f.Chmod(fileObjectMode); err != nil {
		return "", fmt.Errorf("make temporary file read-only: %w", err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("sync temporary file: %w", err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("close temporary file: %w", err)
	}
	return name, nil
}

// fileMkdirAll creates dir and its missing parents, syncing the parent of
// each directory it creates so that the new entries survive a crash.
func fileMkdirAll(root *os.Root, dir string) error {
	if dir == "." {
		return nil
	}
	if fi, err := root.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := fileMkdirAll(root, path.Dir(dir)); err != nil {
		return err
	}
	err := root.Mkdir(dir, fileDirMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	return fileSyncDir(root, path.Dir(dir))
}

// fileSyncDir makes the entries of dir durable.
func fileSyncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func fileIsDir(root *os.Root, name string) bool {
	fi, err := root.Stat(name)
	return err == nil && fi.IsDir()
}

// Get implements Store. A missing directory, like a missing file, is
// ErrNotFound.
func (s *FileStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidateObjectKey(key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", key, s.Describe(), fileNotFound(err))
	}
	defer root.Close()
	data, err := root.ReadFile(key)
	if err != nil {
		if fileIsDir(root, key) {
			err = fs.ErrNotExist
		}
		return nil, fmt.Errorf("get %s from %s: %w", key, s.Describe(), fileNotFound(err))
	}
	return data, nil
}

// fileNotFound maps a missing file to ErrNotFound and keeps the detail.
func fileNotFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	return err
}

// List implements Store. It walks only the directories that can hold keys
// beginning with prefix and skips temporary files. Entries that are not
// directories are listed even if their names are not valid keys (Get
// refuses those), so that a verifier sees every stray file. A store
// directory that does not exist is an error, since listing is how a trail
// is found.
func (s *FileStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := validateListPrefix(prefix); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", prefix, s.Describe(), err)
	}
	defer root.Close()
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var keys []string
	err = fs.WalkDir(root.FS(), start, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if name == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if name != "." && !strings.HasPrefix(name+"/", prefix) && !strings.HasPrefix(prefix, name+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, prefix) && !strings.Contains(d.Name(), fileTempMark) {
			keys = append(keys, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", prefix, s.Describe(), err)
	}
	// The walk's order is per directory, which differs from the keys' order
	// where a name sorts below "/" ("a-b" before "a/c").
	slices.Sort(keys)
	return keys, nil
}
