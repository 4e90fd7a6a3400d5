package worm

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

var fixedTime = time.Date(2026, 11, 27, 18, 0, 0, 123456789, time.UTC)

func testRoot(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// signText signs arbitrary note text, for checkpoints SignCheckpoint would
// never write.
func signText(t testing.TB, text string, signers ...note.Signer) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// corruptSig flips one bit of the signature bytes on the line of key name,
// keeping the base64 valid.
func corruptSig(t testing.TB, msg []byte, name string) []byte {
	t.Helper()
	prefix := []byte("— " + name + " ")
	i := bytes.Index(msg, prefix)
	if i < 0 {
		t.Fatalf("no signature by %s", name)
	}
	start := i + len(prefix)
	end := start + bytes.IndexByte(msg[start:], '\n')
	raw, err := base64.StdEncoding.DecodeString(string(msg[start:end]))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 0x01
	out := bytes.Clone(msg[:start])
	out = append(out, base64.StdEncoding.EncodeToString(raw)...)
	return append(out, msg[end:]...)
}

func TestCheckpointRoundTrip(t *testing.T) {
	k := newTestKey(t, "gw-eu1")
	tr := mustParseTrust(t, k.vkey)
	root := testRoot("root")
	for _, tc := range []struct {
		size uint64
		at   time.Time
	}{
		{0, fixedTime},
		{1, fixedTime.Truncate(time.Second)},
		{1<<64 - 1, time.Date(2030, 1, 2, 3, 4, 5, 600, time.FixedZone("CET", 3600))},
	} {
		msg, err := SignCheckpoint(k.signer, "gw-eu1", tc.size, root, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := OpenCheckpoint(msg, tr, "gw-eu1")
		if err != nil {
			t.Fatalf("size %d: %v", tc.size, err)
		}
		want := Checkpoint{Stream: "gw-eu1", Size: tc.size, Root: root, Time: tc.at.UTC(), KeyName: k.id()}
		if cp != want {
			t.Errorf("OpenCheckpoint = %+v, want %+v", cp, want)
		}
		if cp.Time.Location() != time.UTC {
			t.Errorf("time %v is not UTC", cp.Time)
		}
	}
}

func TestCheckpointText(t *testing.T) {
	k := newTestKey(t, "gw")
	msg, err := SignCheckpoint(k.signer, "gw-eu1.a_b", 42, [32]byte{}, fixedTime.In(time.FixedZone("X", -7*3600)))
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(msg), "\n\n")
	want := "auditgate/gw-eu1.a_b\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2026-11-27T18:00:00.123456789Z"
	if text != want {
		t.Errorf("checkpoint text:\n%s\nwant:\n%s", text, want)
	}
}

func TestSignCheckpointRejects(t *testing.T) {
	k := newTestKey(t, "gw")
	if _, err := SignCheckpoint(nil, "gw", 1, [32]byte{}, fixedTime); err == nil {
		t.Error("signed without a signer")
	}
	if _, err := SignCheckpoint(k.signer, "GW", 1, [32]byte{}, fixedTime); err == nil {
		t.Error("signed for an invalid stream name")
	}
	if _, err := SignCheckpoint(k.signer, "gw", 1, [32]byte{}, time.Time{}); err == nil {
		t.Error("signed with a zero time")
	}
	if _, err := SignCheckpoint(k.signer, "gw", 1, [32]byte{}, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("signed with a time RFC 3339 cannot write")
	}
}

func TestValidateStream(t *testing.T) {
	for _, s := range []string{"a", "gw-eu1-7f3a", "x.y_z-0", strings.Repeat("a", 64)} {
		if err := ValidateStream(s); err != nil {
			t.Errorf("ValidateStream(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "GW", "a/b", "a b", "é", "a+b", strings.Repeat("a", 65)} {
		if err := ValidateStream(s); err == nil {
			t.Errorf("ValidateStream(%q) accepted", s)
		}
	}
}

func TestOpenCheckpointRejects(t *testing.T) {
	k, other := newTestKey(t, "gw"), newTestKey(t, "gw")
	tr := mustParseTrust(t, k.vkey)
	good, err := SignCheckpoint(k.signer, "gw-eu1", 10, testRoot("r"), fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	body := string(good[:bytes.Index(good, []byte("\n\n"))+1])

	unknownSig, _ := SignCheckpoint(other.signer, "gw-eu1", 10, testRoot("r"), fixedTime)

	tests := []struct {
		name string
		msg  []byte
		want error
		in   []string // substrings of the message
	}{
		{"size changed", bytes.Replace(good, []byte("\n10\n"), []byte("\n11\n"), 1), ErrBadSignature, []string{k.id()}},
		{"root changed", bytes.Replace(good, []byte(b64(testRoot("r"))), []byte(b64(testRoot("s"))), 1), ErrBadSignature, []string{k.id()}},
		{"time changed", bytes.Replace(good, []byte("18:00:00"), []byte("18:00:01"), 1), ErrBadSignature, []string{k.id()}},
		{"signature changed", corruptSig(t, good, "gw"), ErrBadSignature, []string{k.id()}},
		{"signed by an unknown key", unknownSig, ErrUnknownKey, []string{other.id(), "not in trust file trust.pub"}},
		{"no signature", []byte(body + "\n"), ErrMalformedCheckpoint, nil},
		{"not a note", []byte("hello"), ErrMalformedCheckpoint, nil},
		{"no time line", signText(t, "auditgate/gw-eu1\n10\n"+b64(testRoot("r"))+"\n", k.signer), ErrMalformedCheckpoint, []string{`line 4 is ""`}},
		{"time not UTC", signText(t, "auditgate/gw-eu1\n10\n"+b64(testRoot("r"))+"\ntime 2026-11-27T19:00:00+01:00\n", k.signer), ErrMalformedCheckpoint, []string{"2026-11-27T19:00:00+01:00"}},
		{"time with trailing zeros", signText(t, "auditgate/gw-eu1\n10\n"+b64(testRoot("r"))+"\ntime 2026-11-27T18:00:00.500Z\n", k.signer), ErrMalformedCheckpoint, []string{"2026-11-27T18:00:00.500Z"}},
		{"extra extension line", signText(t, "auditgate/gw-eu1\n10\n"+b64(testRoot("r"))+"\ntime 2026-11-27T18:00:00.000000000Z\nwitness x\n", k.signer), ErrMalformedCheckpoint, []string{`"witness x"`}},
		{"leading zero in size", signText(t, "auditgate/gw-eu1\n010\n"+b64(testRoot("r"))+"\ntime 2026-11-27T18:00:00.000000000Z\n", k.signer), ErrMalformedCheckpoint, []string{"canonical"}},
		{"short root", signText(t, "auditgate/gw-eu1\n10\nAAAA\ntime 2026-11-27T18:00:00.000000000Z\n", k.signer), ErrMalformedCheckpoint, []string{"3 bytes, want 32"}},
		{"negative size", signText(t, "auditgate/gw-eu1\n-1\n"+b64(testRoot("r"))+"\ntime 2026-11-27T18:00:00.000000000Z\n", k.signer), ErrMalformedCheckpoint, []string{"size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, err := OpenCheckpoint(tt.msg, tr, "gw-eu1")
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenCheckpoint = %+v, %v; want %v", cp, err, tt.want)
			}
			for _, s := range tt.in {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestOpenCheckpointWrongOrigin(t *testing.T) {
	k := newTestKey(t, "gw")
	tr := mustParseTrust(t, k.vkey)
	for _, text := range []string{
		"auditgate/gw-eu2\n10\n" + b64(testRoot("r")) + "\ntime 2026-11-27T18:00:00.000000000Z\n",
		"example.com/log\n10\n" + b64(testRoot("r")) + "\ntime 2026-11-27T18:00:00.000000000Z\n",
	} {
		_, err := OpenCheckpoint(signText(t, text, k.signer), tr, "gw-eu1")
		if !errors.Is(err, ErrWrongOrigin) {
			t.Fatalf("err = %v, want ErrWrongOrigin", err)
		}
		origin, _, _ := strings.Cut(text, "\n")
		if !strings.Contains(err.Error(), `origin "`+origin+`", want "auditgate/gw-eu1"`) {
			t.Errorf("error %q does not name both origins", err)
		}
	}
}

func TestOpenCheckpointSignatures(t *testing.T) {
	k, unknown, retired := newTestKey(t, "gw"), newTestKey(t, "witness"), newTestKey(t, "gw")
	tr := mustParseTrust(t,
		k.vkey,
		retired.vkey+" not-after=2026-01-01T00:00:00Z",
	)
	root := testRoot("r")
	text := "auditgate/gw-eu1\n10\n" + b64(root) + "\ntime 2026-11-27T18:00:00.123456789Z\n"
	withBadSig := func(msg []byte, name string) []byte { return corruptSig(t, msg, name) }

	t.Run("one of two signatures unknown", func(t *testing.T) {
		for _, msg := range [][]byte{signText(t, text, unknown.signer, k.signer), signText(t, text, k.signer, unknown.signer)} {
			cp, err := OpenCheckpoint(msg, tr, "gw-eu1")
			if err != nil {
				t.Fatal(err)
			}
			if cp.KeyName != k.id() {
				t.Errorf("KeyName = %s, want %s", cp.KeyName, k.id())
			}
		}
	})
	t.Run("trusted key's bad signature beside a good one", func(t *testing.T) {
		other := newTestKey(t, "gw2")
		tr2 := mustParseTrust(t, k.vkey, other.vkey)
		msg := withBadSig(signText(t, text, k.signer, other.signer), "gw2")
		_, err := OpenCheckpoint(msg, tr2, "gw-eu1")
		if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), other.id()) {
			t.Fatalf("err = %v, want ErrBadSignature naming %s", err, other.id())
		}
	})
	t.Run("retired key after its window", func(t *testing.T) {
		_, err := OpenCheckpoint(signText(t, text, retired.signer), tr, "gw-eu1")
		if !errors.Is(err, ErrKeyOutsideWindow) {
			t.Fatalf("err = %v, want ErrKeyOutsideWindow", err)
		}
		want := "key " + retired.id() + " signed at 2026-11-27T18:00:00.123456789Z but is trusted only not-after 2026-01-01T00:00:00Z (trust.pub line 2)"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	})
	t.Run("retired key's bad signature", func(t *testing.T) {
		_, err := OpenCheckpoint(withBadSig(signText(t, text, retired.signer), "gw"), tr, "gw-eu1")
		if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), retired.id()) {
			t.Fatalf("err = %v, want ErrBadSignature naming %s", err, retired.id())
		}
	})
	t.Run("retired and unknown keys only", func(t *testing.T) {
		_, err := OpenCheckpoint(signText(t, text, unknown.signer, retired.signer), tr, "gw-eu1")
		if !errors.Is(err, ErrKeyOutsideWindow) {
			t.Fatalf("err = %v, want ErrKeyOutsideWindow", err)
		}
	})
	t.Run("several unknown keys", func(t *testing.T) {
		u2 := newTestKey(t, "witness2")
		_, err := OpenCheckpoint(signText(t, text, unknown.signer, u2.signer), tr, "gw-eu1")
		if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), unknown.id()+", "+u2.id()) {
			t.Fatalf("err = %v, want ErrUnknownKey naming both keys", err)
		}
	})
}

func TestOpenCheckpointRotation(t *testing.T) {
	old, cur := newTestKey(t, "gw"), newTestKey(t, "gw")
	rotated := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := mustParseTrust(t,
		"# rotated on 2026-01-01",
		old.vkey+" not-after=2026-01-01T00:00:00Z",
		cur.vkey+" not-before=2026-01-01T00:00:00Z",
	)
	tests := []struct {
		key  testKey
		at   time.Time
		want error
	}{
		{old, rotated.Add(-time.Hour), nil},
		{old, rotated, nil},
		{cur, rotated, nil},
		{cur, rotated.Add(time.Hour), nil},
		{old, rotated.Add(time.Nanosecond), ErrKeyOutsideWindow},
		{cur, rotated.Add(-time.Nanosecond), ErrKeyOutsideWindow},
	}
	for _, tt := range tests {
		msg, err := SignCheckpoint(tt.key.signer, "gw", 5, testRoot("r"), tt.at)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := OpenCheckpoint(msg, tr, "gw")
		if !errors.Is(err, tt.want) {
			t.Errorf("key %s at %s: err = %v, want %v", tt.key.id(), tt.at.Format(time.RFC3339Nano), err, tt.want)
			continue
		}
		if err == nil && cp.KeyName != tt.key.id() {
			t.Errorf("KeyName = %s, want %s", cp.KeyName, tt.key.id())
		}
	}
}

func FuzzOpenCheckpoint(f *testing.F) {
	k := newTestKey(f, "gw")
	tr := mustParseTrust(f, k.vkey+" not-before=2026-01-01T00:00:00Z")
	good, err := SignCheckpoint(k.signer, "gw", 7, testRoot("r"), fixedTime)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(signText(f, "auditgate/gw\n7\n"+b64(testRoot("r"))+"\ntime 2020-01-01T00:00:00Z\n", k.signer))
	f.Add(signText(f, "auditgate/gw\n7\nAAAA\nx\n", k.signer))
	f.Add([]byte("auditgate/gw\n1\n\n\n— gw AAAAAAAA\n"))
	f.Add([]byte{})
	sentinels := []error{ErrMalformedCheckpoint, ErrUnknownKey, ErrKeyOutsideWindow, ErrBadSignature, ErrWrongOrigin}
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := OpenCheckpoint(data, tr, "gw")
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v matches no sentinel", err)
		}
		// Whatever verifies must be exactly what SignCheckpoint writes.
		text := checkpointText(cp.Stream, cp.Size, cp.Root, cp.Time)
		if !bytes.HasPrefix(data, append(text, '\n')) {
			t.Fatalf("accepted text %q is not canonical %q", data, text)
		}
	})
}
