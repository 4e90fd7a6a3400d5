package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/policy"
	"github.com/auditgate/auditgate/worm"
)

// fullDisk is a spool file that fails its writes and fsyncs while full is
// set, as a disk with no space left does.
type fullDisk struct {
	*os.File
	full *atomic.Bool
}

func (f fullDisk) Write(p []byte) (int, error) {
	if f.full.Load() {
		return 0, errors.New("no space left on device")
	}
	return f.File.Write(p)
}

func (f fullDisk) Sync() error {
	if f.full.Load() {
		return errors.New("no space left on device")
	}
	return f.File.Sync()
}

// TestTrailDiskFull runs the gateway on a real trail whose disk fills up:
// a route that fails closed answers 503 with Retry-After and forwards
// nothing, a route that fails open forwards, and once the disk has room
// again the trail holds a gap record counting exactly the records lost,
// and still verifies.
func TestTrailDiskFull(t *testing.T) {
	var forwarded atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		forwarded.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c","object":"chat.completion","model":"m","choices":[]}`)
	}))
	defer up.Close()

	skey, vkey, err := worm.GenerateKey("gw-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	store := worm.NewMemStore()
	var full atomic.Bool
	app, err := worm.OpenAppender(context.Background(), worm.AppenderOptions{
		Stream: "t", Spool: t.TempDir(), Sealer: &worm.Sealer{Store: store, Signer: signer},
		RetryInterval: 20 * time.Millisecond,
		OpenFile: func(name string) (worm.SpoolFile, error) {
			f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			return fullDisk{File: f, full: &full}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	set, err := policy.Compile(map[string][]policy.Rule{
		"closed": {{Level: policy.LevelFull}},
		"open":   {{Level: policy.LevelFull, OnTrailFailure: policy.FailOpen}},
	})
	if err != nil {
		t.Fatal(err)
	}
	capt, _ := capture.NewCapturer(capture.CapturerOptions{Stream: "t",
		Identity: capture.IdentityOptions{Secret: []byte("0123456789abcdef0123456789abcdef")}})
	opts := Options{Forwarded: DefaultForwarded, Audit: &AuditOptions{Capturer: capt, Policies: set, Trail: app}}
	for _, name := range []string{"closed", "open"} {
		opts.Routes = append(opts.Routes, Route{Name: name, PathPrefix: "/" + name + "/", StripPrefix: "/" + name, Upstream: up.URL, Policy: name})
	}
	gw := startGateway(t, opts)
	client := rawClient(t)
	post := func(route string) *http.Response {
		t.Helper()
		resp, err := client.Post(gw.URL+"/"+route+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","messages":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	waitReady := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for (app.Ready() == nil) != want && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if (app.Ready() == nil) != want {
			t.Fatalf("trail ready %v, want %v", app.Ready() == nil, want)
		}
	}

	for _, r := range []string{"closed", "open"} {
		if resp := post(r); resp.StatusCode != 200 {
			t.Fatalf("%s with a working trail: %d", r, resp.StatusCode)
		}
	}
	// Let the group commit make both records durable first: records not
	// yet fsynced when the disk fails count as lost too.
	deadline := time.Now().Add(5 * time.Second)
	for st := app.Stats(); (st.Appended != 3 || st.Size != 3) && time.Now().Before(deadline); st = app.Stats() {
		time.Sleep(time.Millisecond)
	}
	full.Store(true)
	// The trail finds out at its next write: this exchange's record.
	if resp := post("open"); resp.StatusCode != 200 {
		t.Fatalf("open route: %d", resp.StatusCode)
	}
	waitReady(false)
	before := forwarded.Load()
	for range 3 {
		resp := post("closed")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("closed route on a full disk: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if n := forwarded.Load() - before; n != 0 {
		t.Errorf("closed route forwarded %d requests while the trail was down", n)
	}
	for range 3 {
		if resp := post("open"); resp.StatusCode != 200 {
			t.Errorf("open route on a full disk: %d", resp.StatusCode)
		}
	}
	if n := forwarded.Load() - before; n != 3 {
		t.Errorf("open route forwarded %d of 3 requests", n)
	}
	full.Store(false)
	waitReady(true)
	if resp := post("closed"); resp.StatusCode != 200 {
		t.Errorf("closed route after the disk recovered: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(ctx); err != nil {
		t.Fatal(err)
	}

	trust, _ := worm.ParseTrust("trust", []byte(vkey+"\n"))
	rep, err := worm.Verify(ctx, store, worm.VerifyOptions{Trust: trust})
	if err != nil || !rep.OK() {
		t.Fatalf("trail does not verify: %v %+v", err, rep)
	}
	var gaps []map[string]any
	inference := 0
	err = (&worm.Reader{Store: store}).Scan(ctx, worm.Filter{}, func(_ string, _ uint64, line []byte) error {
		var m map[string]any
		json.Unmarshal(line, &m)
		switch m["kind"] {
		case "gap":
			gaps = append(gaps, m["gap"].(map[string]any))
		case "inference":
			inference++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Lost: the open route's record that met the full disk, and the three
	// forwarded while it was down. The closed route's refusals are not
	// records.
	if len(gaps) != 1 || gaps[0]["reason"] != "trail_failure" || gaps[0]["lost"] != float64(4) {
		t.Errorf("gap records %v, want one trail_failure with lost 4", gaps)
	}
	if inference != 3 {
		t.Errorf("%d inference records, want the 3 written while the disk had room", inference)
	}
}
