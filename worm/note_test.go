package worm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func b64(h [32]byte) string { return base64.StdEncoding.EncodeToString(h[:]) }

// manifestTime reads the "sealed" field, as a manifest reader would.
func manifestTime(body []byte) (time.Time, error) {
	var m struct {
		Sealed time.Time `json:"sealed"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return time.Time{}, err
	}
	if m.Sealed.IsZero() {
		return time.Time{}, errors.New("no sealed time")
	}
	return m.Sealed, nil
}

func TestSignJSONRoundTrip(t *testing.T) {
	k := newTestKey(t, "gw")
	tr := mustParseTrust(t, k.vkey)
	for _, body := range []string{
		`{"stream":"gw-eu1","sealed":"2026-11-27T18:00:00Z"}`,
		`{"stream":"gw-eu1","sealed":"2026-11-27T18:00:00Z"}` + "\n",
		"{\"a\":1,\n\"sealed\":\"2026-11-27T18:00:00Z\"}\n",
	} {
		msg, err := SignJSON(k.signer, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		got, keyName, err := OpenJSON(msg, tr, manifestTime)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(body, "\n") + "\n"; string(got) != want {
			t.Errorf("body = %q, want %q", got, want)
		}
		if keyName != k.id() {
			t.Errorf("keyName = %s, want %s", keyName, k.id())
		}
	}
}

func TestSignJSONRejects(t *testing.T) {
	k := newTestKey(t, "gw")
	for name, body := range map[string]string{
		"empty":       "",
		"not JSON":    "hello",
		"tab":         "{\t\"a\":1}",
		"CR":          "{\"a\":1}\r\n",
		"blank line":  "{\"a\":\n\n1}",
		"leading LF":  "\n{}",
		"bad UTF-8":   "{\"a\":\"\xff\"}",
		"two objects": "{}\n{}",
	} {
		if _, err := SignJSON(k.signer, []byte(body)); err == nil {
			t.Errorf("%s: SignJSON(%q) succeeded", name, body)
		}
	}
	if _, err := SignJSON(nil, []byte("{}")); err == nil {
		t.Error("SignJSON without a signer succeeded")
	}
}

func TestOpenJSONRejects(t *testing.T) {
	k, other, retired := newTestKey(t, "gw"), newTestKey(t, "gw"), newTestKey(t, "gw")
	tr := mustParseTrust(t, k.vkey, retired.vkey+" not-after=2026-01-01T00:00:00Z")
	body := []byte(`{"stream":"gw-eu1","sealed":"2026-11-27T18:00:00Z"}`)
	sign := func(k testKey, body []byte) []byte {
		msg, err := SignJSON(k.signer, body)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	good := sign(k, body)
	failingAt := func([]byte) (time.Time, error) { return time.Time{}, errors.New("no sealed time") }

	tests := []struct {
		name string
		msg  []byte
		at   func([]byte) (time.Time, error)
		want error
		in   string
	}{
		{"body changed", bytes.Replace(good, []byte("eu1"), []byte("eu2"), 1), manifestTime, ErrBadSignature, k.id()},
		{"unknown key", sign(other, body), manifestTime, ErrUnknownKey, other.id()},
		{"key outside window", sign(retired, body), manifestTime, ErrKeyOutsideWindow, "not-after 2026-01-01T00:00:00Z"},
		{"retired key backdated is in window", sign(retired, []byte(`{"sealed":"2025-06-01T00:00:00Z"}`)), manifestTime, nil, ""},
		{"time unreadable", good, failingAt, ErrMalformedNote, "read signing time: no sealed time"},
		{"not a note", []byte("{}\n"), manifestTime, ErrMalformedNote, ""},
		{"not JSON", signText(t, "hello\n", k.signer), manifestTime, ErrMalformedNote, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := OpenJSON(tt.msg, tr, tt.at)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q does not mention %q", err, tt.in)
			}
		})
	}
}
