package worm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// testStoreContract checks what every Store promises. newStore returns an
// empty store.
func testStoreContract(t *testing.T, newStore func() Store) {
	ctx := context.Background()
	key := SegmentKey("audit", "gw", 0, 10)

	t.Run("put then get", func(t *testing.T) {
		s := newStore()
		data := []byte("segment bytes")
		if err := s.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
		data[0] = 'X' // the store keeps its own copy
		got, err := s.Get(ctx, key)
		if err != nil || string(got) != "segment bytes" {
			t.Fatalf("Get = %q, %v", got, err)
		}
	})

	t.Run("create only", func(t *testing.T) {
		s := newStore()
		if err := s.Put(ctx, key, []byte("first")); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, key, []byte("first")); err != nil {
			t.Errorf("identical Put: %v, want nil", err)
		}
		for _, other := range [][]byte{[]byte("second"), []byte("firs"), []byte("first "), nil} {
			if err := s.Put(ctx, key, other); !errors.Is(err, ErrConflict) {
				t.Errorf("Put of %q over %q: %v, want ErrConflict", other, "first", err)
			}
		}
		if got, err := s.Get(ctx, key); err != nil || string(got) != "first" {
			t.Errorf("after conflicting Puts, Get = %q, %v; want the original", got, err)
		}
	})

	t.Run("not found", func(t *testing.T) {
		s := newStore()
		if err := s.Put(ctx, "a/b/c", []byte("x")); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a/b/d", "a/b", "a", "x/y"} {
			if _, err := s.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q): %v, want ErrNotFound", k, err)
			}
		}
	})

	t.Run("concurrent puts of one key", func(t *testing.T) {
		s := newStore()
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				// Even goroutines write the same bytes, odd ones their own.
				data := []byte("same")
				if i%2 == 1 {
					data = fmt.Appendf(nil, "writer %d", i)
				}
				errs[i] = s.Put(ctx, key, data)
			})
		}
		wg.Wait()
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		winners := 0
		for i, err := range errs {
			want := []byte("same")
			if i%2 == 1 {
				want = fmt.Appendf(nil, "writer %d", i)
			}
			switch {
			case bytes.Equal(got, want) && err != nil:
				t.Errorf("writer %d wrote what is stored, but got %v", i, err)
			case bytes.Equal(got, want):
				winners++
			case !errors.Is(err, ErrConflict):
				t.Errorf("writer %d lost to %q, got %v, want ErrConflict", i, got, err)
			}
		}
		if string(got) != "same" && winners != 1 {
			t.Errorf("%d writers of %q succeeded, want 1", winners, got)
		}
		if string(got) == "same" && winners != n/2 {
			t.Errorf("%d writers of %q succeeded, want all %d", winners, got, n/2)
		}
	})

	t.Run("list", func(t *testing.T) {
		s := newStore()
		keys := []string{
			"audit/gw/seg/b", "audit/gw/seg/a", "audit/gw-2/x", "audit/gw/checkpoint/1",
			"audit/gwx", "audit2/gw/y", "other/z", "top",
		}
		for _, k := range keys {
			if err := s.Put(ctx, k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", []string{"audit/gw-2/x", "audit/gw/checkpoint/1", "audit/gw/seg/a", "audit/gw/seg/b", "audit/gwx", "audit2/gw/y", "other/z", "top"}},
			{"audit/", []string{"audit/gw-2/x", "audit/gw/checkpoint/1", "audit/gw/seg/a", "audit/gw/seg/b", "audit/gwx"}},
			{"audit", []string{"audit/gw-2/x", "audit/gw/checkpoint/1", "audit/gw/seg/a", "audit/gw/seg/b", "audit/gwx", "audit2/gw/y"}},
			{"audit/gw/", []string{"audit/gw/checkpoint/1", "audit/gw/seg/a", "audit/gw/seg/b"}},
			{"audit/gw", []string{"audit/gw-2/x", "audit/gw/checkpoint/1", "audit/gw/seg/a", "audit/gw/seg/b", "audit/gwx"}},
			{"audit/gw/seg/a", []string{"audit/gw/seg/a"}},
			{"audit/gw/se", []string{"audit/gw/seg/a", "audit/gw/seg/b"}},
			{"audit/none/", nil},
			{"nothing", nil},
			{"to", []string{"top"}},
		} {
			got, err := s.List(ctx, tc.prefix)
			if err != nil {
				t.Errorf("List(%q): %v", tc.prefix, err)
				continue
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		}
	})

	t.Run("invalid keys", func(t *testing.T) {
		s := newStore()
		for _, k := range []string{"", "../x", "a/../../x", "/etc/passwd", `..\x`, `a\b`, "a//b", "a/", "./a", "a/.", "a b", "~tmp-"} {
			if err := s.Put(ctx, k, []byte("x")); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Put(%q): %v, want ErrInvalidKey", k, err)
			}
			if _, err := s.Get(ctx, k); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Get(%q): %v, want ErrInvalidKey", k, err)
			}
		}
		for _, p := range []string{"../", "/", "a/../", `a\`, "a//"} {
			if _, err := s.List(ctx, p); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("List(%q): %v, want ErrInvalidKey", p, err)
			}
		}
	})

	t.Run("canceled context", func(t *testing.T) {
		s := newStore()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Put(cctx, key, []byte("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Put: %v, want context.Canceled", err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after a canceled Put: %v, want ErrNotFound", err)
		}
	})
}

func TestMemStoreContract(t *testing.T) {
	testStoreContract(t, func() Store { return NewMemStore() })
	testStoreContract(t, func() Store { return new(MemStore) })
}

func TestFileStoreContract(t *testing.T) {
	testStoreContract(t, func() Store {
		s, err := NewFileStore(filepath.Join(t.TempDir(), "trail"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMemStoreTamper(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	if err := s.Put(ctx, "a/b", []byte("original")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("a/b", []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "a/b"); string(got) != "forged" {
		t.Errorf("after Set, Get = %q", got)
	}
	s.Delete("a/b")
	if _, err := s.Get(ctx, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Delete, Get: %v", err)
	}
	if err := s.Set("../x", nil); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Set(../x): %v", err)
	}
}

func fileTestStore(t *testing.T) (*FileStore, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestFileStoreLayoutOnDisk(t *testing.T) {
	s, dir := fileTestStore(t)
	ctx := context.Background()
	key := SegmentKey("audit", "gw", 0, 10)
	if err := s.Put(ctx, key, []byte("data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.FromSlash(key))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode(); mode != 0o444 {
		t.Errorf("object mode %v, want -r--r--r--", mode)
	}
	if os.Geteuid() != 0 { // root writes read-only files anyway
		if err := os.WriteFile(path, []byte("forged"), 0o644); err == nil {
			t.Error("wrote over a read-only object")
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("segment directory holds %v (%v), want only the object", entries, err)
	}
	if got := s.Describe(); got != "directory "+dir {
		t.Errorf("Describe() = %q", got)
	}
}

// An existing object is never replaced, even if its file has been made
// writable and changed behind the store's back.
func TestFileStoreNeverReplaces(t *testing.T) {
	s, dir := fileTestStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, "a/b", []byte("original")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a", "b")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/b", []byte("original")); !errors.Is(err, ErrConflict) {
		t.Errorf("Put of the original over a changed file: %v, want ErrConflict", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "changed" {
		t.Errorf("file holds %q, want it untouched", got)
	}
}

func TestFileStoreListSkipsTempFiles(t *testing.T) {
	s, dir := fileTestStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, "p/gw/seg/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A crash between creating and linking leaves a temporary file.
	tmp := filepath.Join(dir, "p", "gw", "seg", "b"+fileTempMark+"0123456789abcdef")
	if err := os.WriteFile(tmp, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A stray file is listed so that a verifier can report it.
	if err := os.WriteFile(filepath.Join(dir, "p", "gw", "stray file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "p/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p/gw/seg/a", "p/gw/stray file"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
}

func TestFileStoreMissingDirectory(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "not", "yet")
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
	if _, err := s.List(ctx, ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List: %v, want an error saying the directory does not exist", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading created the directory: %v", err)
	}
	if err := s.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.List(ctx, ""); err != nil || !slices.Equal(keys, []string{"a/b"}) {
		t.Errorf("List = %q, %v", keys, err)
	}
}

// A symbolic link planted in the store cannot lead a Get or Put outside it.
func TestFileStoreSymlinkEscape(t *testing.T) {
	s, dir := fileTestStore(t)
	ctx := context.Background()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Skip("no symbolic links:", err)
	}
	if got, err := s.Get(ctx, "link/secret"); err == nil {
		t.Errorf("Get through a link outside the store read %q", got)
	}
	if err := s.Put(ctx, "link/new", []byte("x")); err == nil {
		t.Error("Put through a link outside the store succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Error("Put wrote outside the store")
	}
}

func TestFileStoreKeyIsDirectory(t *testing.T) {
	s, _ := fileTestStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, "a/b/c", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/b", []byte("x")); !errors.Is(err, ErrConflict) {
		t.Errorf("Put over a directory: %v, want ErrConflict", err)
	}
}

func TestOpenStore(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		url, dir, err string
	}{
		{url: dir, dir: dir},
		{url: "file://" + dir, dir: dir},
		{url: "file://localhost" + dir, dir: dir},
		{url: "file://" + dir + "/with%20space", dir: dir + "/with space"},
		{url: "", err: "empty store URL"},
		{url: "file:relative/dir", err: "absolute path"},
		{url: "file://otherhost/x", err: "another host"},
		{url: "file://" + dir + "?mode=x", err: "no user, query or fragment"},
		{url: "http://example.com/x", err: `unknown store scheme "http"`},
	} {
		t.Run(tc.url, func(t *testing.T) {
			s, err := OpenStore(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("OpenStore(%q) = %v, %v; want an error saying %q", tc.url, s, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fsStore, ok := s.(*FileStore)
			if !ok || fsStore.Dir() != tc.dir {
				t.Errorf("OpenStore(%q) = %#v, want a FileStore in %s", tc.url, s, tc.dir)
			}
		})
	}
	rel, err := OpenStore("trail")
	if err != nil {
		t.Fatal(err)
	}
	if d := rel.(*FileStore).Dir(); !filepath.IsAbs(d) || filepath.Base(d) != "trail" {
		t.Errorf("relative path opened %s", d)
	}
}
