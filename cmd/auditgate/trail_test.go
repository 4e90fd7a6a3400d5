package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditgate/auditgate/worm"
)

// newTestSealer seals into the file store at dir with the key in keyDir.
func newTestSealer(t *testing.T, dir, keyDir string) *worm.Sealer {
	t.Helper()
	signer, err := worm.LoadSigner(filepath.Join(keyDir, worm.SigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := worm.OpenStore("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	return &worm.Sealer{Store: st, Signer: signer}
}

// sealTrail writes a small trail of two segments into dir with the key
// from keyDir, as the gateway will.
func sealTrail(t *testing.T, dir, keyDir string) {
	t.Helper()
	s := newTestSealer(t, dir, keyDir)
	var err error
	state := worm.SealState{Stream: "gw-test"}
	base := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)
	for seg := 0; seg < 2; seg++ {
		var lines [][]byte
		for i := 0; i < 5; i++ {
			ts := base.Add(time.Duration(seg*5+i) * time.Second).Format(worm.TimeLayout)
			lines = append(lines, []byte(fmt.Sprintf(`{"v":1,"id":"r%d","time":"%s","kind":"inference","stream":"gw-test"}`, seg*5+i, ts)))
		}
		first := base.Add(time.Duration(seg*5) * time.Second)
		if state, err = s.Seal(context.Background(), state, lines, first, first.Add(4*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeygenAndVerify(t *testing.T) {
	keys, trail := t.TempDir(), t.TempDir()
	out, errOut, code := runCmd(t, "keygen", "--out", keys, "--name", "gw-test")
	if code != 0 || !strings.Contains(out, worm.SigningKeyFile) {
		t.Fatalf("keygen: exit %d %s %s", code, out, errOut)
	}
	if fi, err := os.Stat(filepath.Join(keys, worm.SigningKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key mode: %v %v", fi, err)
	}
	if _, errOut, code := runCmd(t, "keygen", "--out", keys); code != exitFailure || !strings.Contains(errOut, "exist") {
		t.Errorf("keygen over existing keys: exit %d %s", code, errOut)
	}
	sealTrail(t, trail, keys)
	trust := filepath.Join(keys, worm.TrustFile)

	out, _, code = runCmd(t, "verify", "file://"+trail, "--trust", trust)
	if code != 0 || !strings.Contains(out, "stream gw-test: 2 segments, 10 records re-hashed, size 10") || !strings.Contains(out, "ok: ") {
		t.Fatalf("verify honest trail: exit %d\n%s", code, out)
	}
	out, _, code = runCmd(t, "verify", "--store", trail, "--trust", trust, "--format", "json")
	var rep struct {
		OK      bool
		Streams []struct{ Size uint64 }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.OK || len(rep.Streams) != 1 || rep.Streams[0].Size != 10 {
		t.Fatalf("verify --format json: exit %d %v\n%s", code, err, out)
	}

	// Delete a manifest: verify names it and exits 1.
	manifest := filepath.Join(trail, "gw-test", "manifest", "00000000000000000005")
	os.Chmod(manifest, 0o644)
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	out, _, code = runCmd(t, "verify", trail, "--trust", trust)
	if code != exitFailure || !strings.Contains(out, "FINDING") || !strings.Contains(out, "gw-test/manifest/00000000000000000005") {
		t.Fatalf("verify tampered trail: exit %d\n%s", code, out)
	}

	// Off a terminal, verify draws no progress bar: not through a pipe,
	// nor into a writer that is no file.
	_, errOut, code = runCmd(t, "verify", trail, "--trust", trust, "--format", "json")
	var so, se bytes.Buffer
	direct := runVerify([]string{trail, "--trust", trust}, &so, &se)
	for _, e := range []string{errOut, se.String()} {
		if strings.ContainsAny(e, "\r") || strings.Contains(e, "verifying") {
			t.Errorf("verify wrote a progress bar off a terminal (exit %d, %d): %q", code, direct, e)
		}
	}

	// Usage errors exit 2.
	for _, args := range [][]string{{"verify", trail}, {"verify", "--trust", trust}, {"verify", trail, "--trust", trust, "--from", "yesterday"}} {
		if _, errOut, code := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}

func TestRenderVerifyBar(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       worm.VerifyProgress
		elapsed time.Duration
		width   int
		want    string
	}{
		{"start", worm.VerifyProgress{Stream: "gw-1", SegmentsTotal: 1000}, 0, 80,
			"verifying gw-1  [>            ]  0/1000 segments  0 records"},
		{"under way", worm.VerifyProgress{Stream: "gw-1", Segments: 412, SegmentsTotal: 1000, Records: 1_234_567, Bytes: 960e6}, 2 * time.Second, 80,
			"verifying gw-1  [=====>       ]  412/1000 segments  1.2 M records  480 MB/s"},
		{"wide terminal caps the bar", worm.VerifyProgress{Stream: "gw-1", Segments: 1, SegmentsTotal: 4, Records: 41_200}, 0, 200,
			"verifying gw-1  [==========>                             ]  1/4 segments  41.2 k records"},
		{"done", worm.VerifyProgress{Stream: "gw-1", Segments: 4, SegmentsTotal: 4, Records: 999, Bytes: 5e6, Done: true}, time.Second, 80,
			"verifying gw-1  [===================]  4/4 segments  999 records  5 MB/s"},
		{"narrow terminal drops the bar", worm.VerifyProgress{Stream: "gw-1", Segments: 1, SegmentsTotal: 4}, 0, 50,
			"verifying gw-1  1/4 segments  0 records"},
		{"no manifests", worm.VerifyProgress{Stream: "gw-1"}, 0, 80,
			"verifying gw-1  0 segments  0 records"},
		{"too narrow for the text", worm.VerifyProgress{Stream: "gw-1", SegmentsTotal: 4}, 0, 12,
			"verifying g"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := renderVerifyBar(tc.p, tc.elapsed, tc.width)
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if len(got) >= tc.width {
				t.Errorf("%d columns do not fit a terminal %d wide", len(got), tc.width)
			}
		})
	}
}

func TestVerifyBarRedrawsAndClears(t *testing.T) {
	var out bytes.Buffer
	b := &verifyBar{w: &out, width: 80}
	b.draw(worm.VerifyProgress{Stream: "gw-long-name", SegmentsTotal: 2})
	first := b.drawn
	b.draw(worm.VerifyProgress{Stream: "gw-1", Segments: 2, SegmentsTotal: 2, Done: true})
	b.clear()
	lines := strings.Split(out.String(), "\r")
	if len(lines) != 5 || lines[0] != "" || lines[4] != "" {
		t.Fatalf("want three redraws of one line, got %q", out.String())
	}
	if len(lines[2]) != first || len(lines[3]) != first || strings.TrimSpace(lines[3]) != "" {
		t.Errorf("a shorter line must cover the longer one and the clear must cover both: %q", out.String())
	}
	var nilBar *verifyBar
	nilBar.clear()
}
