// Package s3test runs a real S3 server, Versity Gateway on a POSIX
// directory with versioning and Object Lock, for tests of code that writes
// the trail to S3.
//
// The server binary is found through $AUDITGATE_VERSITYGW, else at
// bin/versitygw in the module's root, where `make test` installs it. Without
// it tests are skipped, except under CI=true, where they fail.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Region is the region the server is started with and URL names.
const Region = "us-east-1"

const (
	// readyTimeout bounds the wait for a started server to answer; the
	// first start on a cold machine takes about a second.
	readyTimeout = 20 * time.Second
	// stopTimeout is how long Stop waits after an interrupt before it
	// kills the process.
	stopTimeout = 10 * time.Second
	// outputLimit caps the server output kept for failure messages; the
	// server logs every request, and a benchmark makes many.
	outputLimit = 64 << 10
)

// Server is one running Versity Gateway, owned by the test that started
// it. Its methods other than Stop and Restart may be called from any
// goroutine.
type Server struct {
	t       testing.TB
	bin     string
	addr    string // 127.0.0.1:port
	dataDir string
	verDir  string
	access  string
	secret  string
	out     *tailBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs a server on a free loopback port with fresh data and
// versioning directories and random root credentials, waits until it
// answers, and stops it when the test ends. The server's output is logged
// if the test fails.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := findBinary(t)
	s := &Server{
		t:       t,
		bin:     bin,
		dataDir: t.TempDir(),
		verDir:  t.TempDir(),
		access:  randomHex(10),
		secret:  randomHex(20),
		out:     &tailBuffer{limit: outputLimit},
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("versitygw at %s, last output:\n%s", s.addr, s.out.String())
		}
	})
	// The port is free when chosen but another process may take it before
	// the server binds it; a few tries make that harmless.
	var err error
	for range 3 {
		s.addr, err = freePort()
		if err == nil {
			err = s.start()
		}
		if err == nil {
			return s
		}
	}
	t.Fatalf("start versitygw: %v", err) // the cleanup shows its output
	return nil
}

// findBinary returns the versitygw binary's path, or skips or fails t.
func findBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("AUDITGATE_VERSITYGW")
	where := bin + " ($AUDITGATE_VERSITYGW)"
	if bin == "" {
		root, err := moduleRoot()
		if err != nil {
			missing(t, err.Error())
		}
		bin = filepath.Join(root, "bin", "versitygw")
		where = bin
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		missing(t, fmt.Sprintf("no versitygw binary at %s", where))
	}
	return bin
}

func missing(t testing.TB, why string) {
	t.Helper()
	msg := why + ": run `make test`, which installs it into bin/, or set AUDITGATE_VERSITYGW"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// moduleRoot walks up from the working directory to the one holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// start runs the process and waits until it answers HTTP.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, "--port", s.addr, "posix", "--versioning-dir", s.verDir, s.dataDir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.access, "ROOT_SECRET_KEY="+s.secret)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	fmt.Fprintf(s.out, "--- starting versitygw on %s\n", s.addr)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + s.addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("versitygw exited before answering: %v", cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("versitygw did not answer on %s within %v: %v", s.addr, readyTimeout, err)
		}
	}
}

// Stop stops the server; objects and versions stay on disk for Restart.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-done
	}
	fmt.Fprintf(s.out, "--- stopped versitygw on %s\n", s.addr)
}

// Restart stops the server if it runs and starts it again on the same
// port with the same data. It fails the test that called Start, so it must
// be called from that test's goroutine.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	// The old socket may linger for a moment after the process exits.
	for range 20 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart versitygw on %s: %v", s.addr, err) // the cleanup shows its output
}

// Endpoint returns the server's host:port.
func (s *Server) Endpoint() string { return s.addr }

// Credentials returns the server's root access key and secret.
func (s *Server) Credentials() (accessKey, secretKey string) { return s.access, s.secret }

// URL returns a store URL for prefix in bucket on this server, in the form
// worm.ParseS3URL reads. Credentials are not in it: see Env.
func (s *Server) URL(bucket, prefix string) string {
	q := url.Values{"endpoint": {s.addr}, "secure": {"false"}, "region": {Region}}
	u := url.URL{Scheme: "s3", Host: bucket, Path: "/" + prefix, RawQuery: q.Encode()}
	return u.String()
}

// Env returns the AWS environment variables that give a child process the
// server's credentials and region.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.access,
		"AWS_SECRET_ACCESS_KEY=" + s.secret,
		"AWS_REGION=" + Region,
	}
}

// Client returns a minio-go client with the root credentials, for what a
// test does behind the code under test's back.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.addr, &minio.Options{
		Creds:  credentials.NewStaticV4(s.access, s.secret, ""),
		Region: Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MakeLockedBucket creates bucket name with Object Lock, and so versioning,
// enabled.
func (s *Server) MakeLockedBucket(t testing.TB, name string) {
	t.Helper()
	s.makeBucket(t, name, true)
}

// MakeBucket creates bucket name without Object Lock or versioning.
func (s *Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	s.makeBucket(t, name, false)
}

func (s *Server) makeBucket(t testing.TB, name string, locked bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region, ObjectLocking: locked})
	if err != nil {
		t.Fatalf("make bucket %s (object lock %v): %v", name, locked, err)
	}
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
	cut   bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.limit; over > 0 {
		b.buf.Next(over)
		b.cut = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return "[…earlier output cut]\n" + b.buf.String()
	}
	return b.buf.String()
}
