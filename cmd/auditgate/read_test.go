package main

import (
	"bufio"
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

// richID makes a UUIDv7-shaped id whose first 48 bits are t in Unix ms.
func richID(t time.Time, seq int) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%08x-%04x-7%03x-8%03x-%012x", ms>>16, ms&0xffff, seq&0xfff, seq&0xfff, seq)
}

// sealRichTrail adds stream gw-rich to the trail in dir: three segments,
// an hour apart, of four records with UUIDv7 ids, two routes, two models
// and two callers. It returns the records' ids in order.
func sealRichTrail(t *testing.T, dir, keyDir string) []string {
	t.Helper()
	s := newTestSealer(t, dir, keyDir)
	var err error
	state := worm.SealState{Stream: "gw-rich"}
	base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var ids []string
	for seg := 0; seg < 3; seg++ {
		first := base.Add(time.Duration(seg) * time.Hour)
		var lines [][]byte
		for i := 0; i < 4; i++ {
			n := seg*4 + i
			at := first.Add(time.Duration(i) * time.Second)
			id := richID(at, n)
			ids = append(ids, id)
			route, model := "openai", "gpt-4o-mini-2024-07-18"
			if n%2 == 1 {
				route, model = "anthropic", "claude-x"
			}
			lines = append(lines, fmt.Appendf(nil, `{"v":1,"id":"%s","time":"%s","kind":"inference","stream":"gw-rich","route":"%s","method":"POST","path":"/v1/chat/completions","status":200,"latency_us":48211,"ttfb_us":910,"caller":{"key_id":"k_%d","subject":"svc-%d","ip":"10.0.4.7"},"model":{"provider":"%s","requested":"m","served":"%s"},"operation":"chat","input":{"messages":[{"role":"user","content":"question %d %s"}]},"output":[{"message":{"role":"assistant","content":"answer %d"}}],"rationale":null,"usage":{"input_tokens":12,"output_tokens":3},"request_sha256":"aa","response_sha256":"bb","truncated":false,"flags":[],"redactions":[{"where":"input.messages[0].content","type":"email"}],"rules":[],"error":null}`,
				id, at.Format(worm.TimeLayout), route, n%3, n%2, route, model, n, strings.Repeat("x", 300), n))
		}
		if state, err = s.Seal(context.Background(), state, lines, first, first.Add(3*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// readTestSetup makes a key pair and a trail with streams gw-test (ids r0
// to r9) and gw-rich.
func readTestSetup(t *testing.T) (trail, trust string, ids []string) {
	t.Helper()
	keys, trail := t.TempDir(), t.TempDir()
	if _, errOut, code := runCmd(t, "keygen", "--out", keys, "--name", "gw-test"); code != 0 {
		t.Fatalf("keygen: %s", errOut)
	}
	sealTrail(t, trail, keys)
	ids = sealRichTrail(t, trail, keys)
	return trail, filepath.Join(keys, worm.TrustFile), ids
}

func TestShow(t *testing.T) {
	trail, trust, ids := readTestSetup(t)
	out, errOut, code := runCmd(t, "show", "r3", "--store", trail, "--format", "json")
	if code != 0 || !strings.HasPrefix(out, `{"v":1,"id":"r3",`) || strings.Count(out, "\n") != 1 {
		t.Errorf("show r3 --format json: exit %d %q %s", code, out, errOut)
	}
	out, errOut, code = runCmd(t, "show", ids[5], "--store", "file://"+trail, "--trust", trust)
	for _, want := range []string{"id               " + ids[5], "stream           gw-rich index 5", "route            anthropic",
		"POST /v1/chat/completions -> 200", "caller           key_id=k_2 subject=svc-1", "served claude-x", "usage            input_tokens=12 output_tokens=3",
		"email at input.messages[0].content", "input:\n  {", "more characters", "output:\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("show %s: missing %q in\n%s", ids[5], want, out)
		}
	}
	if code != 0 {
		t.Errorf("show: exit %d %s", code, errOut)
	}
	if _, errOut, code := runCmd(t, "show", "r99", "--store", trail); code != exitFailure || !strings.Contains(errOut, "record not found") {
		t.Errorf("show r99: exit %d %s", code, errOut)
	}
	if _, errOut, code := runCmd(t, "show", richID(time.Date(2026, 11, 27, 13, 0, 1, 0, time.UTC), 99), "--store", trail); code != exitFailure || !strings.Contains(errOut, "record not found") {
		t.Errorf("show missing UUIDv7: exit %d %s", code, errOut)
	}
	for _, args := range [][]string{{"show", "--store", trail}, {"show", "r1"}, {"show", "r1", "--store", trail, "--format", "xml"}} {
		if _, errOut, code := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}

func TestSearch(t *testing.T) {
	trail, _, ids := readTestSetup(t)
	tests := []struct {
		args []string
		want []string
	}{
		{nil, append(append([]string{}, ids...), "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9")}, // streams in name order
		{[]string{"--stream", "gw-rich", "--route", "anthropic"}, []string{ids[1], ids[3], ids[5], ids[7], ids[9], ids[11]}},
		{[]string{"--model", "claude-x", "--caller", "k_0"}, []string{ids[3], ids[9]}},
		{[]string{"--subject", "svc-0", "--from", "2026-11-27T13:00:00Z", "--to", "2026-11-27T13:59:00Z"}, []string{ids[4], ids[6]}},
		{[]string{"--from", "2026-11-27T18:00:07Z"}, []string{"r7", "r8", "r9"}},
		{[]string{"--kind", "inference", "--limit", "3"}, []string{ids[0], ids[1], ids[2]}},
		{[]string{"--kind", "alert"}, nil},
	}
	for _, tt := range tests {
		args := append([]string{"search", "--store", trail, "--format", "json"}, tt.args...)
		out, errOut, code := runCmd(t, args...)
		if code != 0 {
			t.Errorf("%v: exit %d %s", tt.args, code, errOut)
			continue
		}
		var got []string
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec struct{ ID string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Errorf("%v: line is not JSON: %v: %s", tt.args, err, sc.Text())
			}
			got = append(got, rec.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("search %v:\n got %v\nwant %v", tt.args, got, tt.want)
		}
	}
	out, _, code := runCmd(t, "search", "--store", trail, "--route", "openai")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 6 || !strings.HasPrefix(lines[0], "2026-11-27T12:00:00.000000000Z  "+ids[0]+"  openai  gpt-4o-mini-2024-07-18  200  svc-0") {
		t.Errorf("search text: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"search"}, {"search", "--store", trail, "--from", "yesterday"}, {"search", "--store", trail, "extra"}, {"search", "--store", trail, "--limit", "-1"}} {
		if _, errOut, code := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}

func TestProveAndVerifyProof(t *testing.T) {
	trail, trust, ids := readTestSetup(t)
	dir := t.TempDir()
	for _, id := range []string{"r2", "r9", ids[0], ids[6], ids[11]} {
		proof, errOut, code := runCmd(t, "prove", id, "--store", trail, "--trust", trust)
		if code != 0 || !strings.HasPrefix(proof, "auditgate-record-proof@v1\n") {
			t.Fatalf("prove %s: exit %d %s", id, code, errOut)
		}
		file := filepath.Join(dir, id+".proof")
		if err := os.WriteFile(file, []byte(proof), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCmd(t, "verify-proof", file, "--trust", trust)
		want := "ok: record " + id + " is in stream "
		if code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, "signed by gw-test+") {
			t.Errorf("verify-proof %s: exit %d %q %s", id, code, out, errOut)
		}
	}
	out, _, _ := runCmd(t, "verify-proof", filepath.Join(dir, "r2.proof"), "--trust", trust)
	if want := "ok: record r2 is in stream gw-test at index 2 of the checkpoint of size 10 sealed at "; !strings.HasPrefix(out, want) {
		t.Errorf("verify-proof r2: %q, want prefix %q", out, want)
	}
	out, _, code := runCmd(t, "verify-proof", filepath.Join(dir, ids[6]+".proof"), "--trust", trust, "--format", "json")
	var rep struct {
		OK     bool
		ID     string
		Index  uint64
		Size   uint64 `json:"checkpoint_size"`
		Stream string
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.OK || rep.ID != ids[6] || rep.Index != 6 || rep.Size != 12 || rep.Stream != "gw-rich" {
		t.Errorf("verify-proof --format json: exit %d %v %+v\n%s", code, err, rep, out)
	}

	// One byte of the record changed: exit 1, saying what failed.
	data, _ := os.ReadFile(filepath.Join(dir, "r9.proof"))
	bad := bytes.Replace(data, []byte(`"id":"r9"`), []byte(`"id":"r8"`), 1)
	if bytes.Equal(bad, data) {
		t.Fatal("record not found in proof")
	}
	badFile := filepath.Join(dir, "bad.proof")
	os.WriteFile(badFile, bad, 0o644)
	out, _, code = runCmd(t, "verify-proof", badFile, "--trust", trust)
	if code != exitFailure || !strings.HasPrefix(out, "FAILED: ") || !strings.Contains(out, "record line") {
		t.Errorf("verify-proof of an altered record: exit %d %q", code, out)
	}

	if _, errOut, code := runCmd(t, "prove", "r99", "--store", trail); code != exitFailure || !strings.Contains(errOut, "record not found") {
		t.Errorf("prove r99: exit %d %s", code, errOut)
	}
	for _, args := range [][]string{{"prove", "--store", trail}, {"verify-proof", badFile}, {"verify-proof", "--trust", trust}, {"verify-proof", filepath.Join(dir, "none"), "--trust", trust}} {
		if _, errOut, code := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}

// TestRecordLineModel: the one-line view names the served model, else the
// requested one (MLflow and generic APIs often name only the latter).
func TestRecordLineModel(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{`{"time":"t","id":"a","route":"r","status":200,"model":{"requested":"m-1","served":"m-1-2024"}}`, "t  a  r  m-1-2024  200  -\n"},
		{`{"time":"t","id":"a","route":"r","status":200,"model":{"requested":"loans"}}`, "t  a  r  loans  200  -\n"},
		{`{"time":"t","id":"a","route":"r","status":200,"model":{}}`, "t  a  r  -  200  -\n"},
	} {
		var b strings.Builder
		writeRecordLine(&b, []byte(c.line))
		if b.String() != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.line, b.String(), c.want)
		}
	}
}
