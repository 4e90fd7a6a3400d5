package worm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustParseTrust(t testing.TB, lines ...string) *Trust {
	t.Helper()
	tr, err := ParseTrust("trust.pub", []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestParseTrust(t *testing.T) {
	a, b, c := newTestKey(t, "gw-a"), newTestKey(t, "gw-b"), newTestKey(t, "gw-a")
	data := "# auditgate trust file\r\n" +
		"\n" +
		a.vkey + "   # no bounds\r\n" +
		"   \t\n" +
		b.vkey + " not-after=2026-01-01T00:00:00Z\n" +
		c.vkey + " not-after=2027-06-30T12:00:00.5+02:00 not-before=2026-01-01T00:00:00Z"
	tr, err := ParseTrust("trust.pub", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	keys := tr.Keys()
	if len(keys) != 3 {
		t.Fatalf("got %d keys, want 3", len(keys))
	}
	want := []struct {
		key       testKey
		line      int
		notBefore string
		notAfter  string
	}{
		{a, 3, "", ""},
		{b, 5, "", "2026-01-01T00:00:00Z"},
		{c, 6, "2026-01-01T00:00:00Z", "2027-06-30T10:00:00.5Z"},
	}
	format := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339Nano)
	}
	for i, w := range want {
		k := keys[i]
		if k.ID() != w.key.id() || k.Key != w.key.vkey || k.Line != w.line ||
			format(k.NotBefore) != w.notBefore || format(k.NotAfter) != w.notAfter {
			t.Errorf("key %d = %s line %d [%s, %s], want %s line %d [%s, %s]", i,
				k.ID(), k.Line, format(k.NotBefore), format(k.NotAfter),
				w.key.id(), w.line, w.notBefore, w.notAfter)
		}
		got, ok := tr.Lookup(w.key.signer.Name(), w.key.signer.KeyHash())
		if !ok || got.Line != w.line {
			t.Errorf("Lookup(%s) = line %d, %v", w.key.id(), got.Line, ok)
		}
	}
	if _, ok := tr.Lookup("gw-a", a.signer.KeyHash()+1); ok {
		t.Error("Lookup found a key by name with the wrong hash")
	}
	if _, ok := tr.Lookup("gw-z", a.signer.KeyHash()); ok {
		t.Error("Lookup found a key by hash with the wrong name")
	}
}

func TestParseTrustProblems(t *testing.T) {
	a, b := newTestKey(t, "gw-a"), newTestKey(t, "gw-b")
	data := strings.Join([]string{
		"# every problem, reported at once",
		a.vkey,
		"gw-a+00000000+AAAA",
		b.vkey + " not-before=2026-02-30T00:00:00Z",
		b.vkey + " not-before=2027-01-01T00:00:00Z not-after=2026-01-01T00:00:00Z",
		a.vkey + " not-before=2020-01-01T00:00:00Z",
		b.vkey + " expires=2026-01-01",
		b.vkey + " not-after=2026-01-01T00:00:00Z not-after=2027-01-01T00:00:00Z",
		a.skey,
		b.vkey + " not-after=tomorrow",
		b.vkey + " not-before=2026-01-01",
		b.vkey + " not-after=2026-01-01T00:00:00Z",
		b.vkey,
	}, "\n")
	_, err := ParseTrust("keys/trust.pub", []byte(data))
	var te *TrustError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want *TrustError", err)
	}
	want := []string{
		`keys/trust.pub:3: malformed verifier key "gw-a+00000000+AAAA": invalid verifier hash`,
		`keys/trust.pub:4: bad not-before "2026-02-30T00:00:00Z": want an RFC 3339 time like 2026-01-02T15:04:05Z`,
		`keys/trust.pub:5: not-before 2027-01-01T00:00:00Z is after not-after 2026-01-01T00:00:00Z`,
		`keys/trust.pub:6: duplicate key ` + a.id() + ` (first on line 2)`,
		`keys/trust.pub:7: unknown field "expires=2026-01-01" (want not-before=TIME or not-after=TIME)`,
		`keys/trust.pub:8: not-after given twice`,
		`keys/trust.pub:9: this is a private signing key; a trust file holds verifier keys only (remove it and keep it secret)`,
		`keys/trust.pub:10: bad not-after "tomorrow": want an RFC 3339 time like 2026-01-02T15:04:05Z`,
		`keys/trust.pub:11: bad not-before "2026-01-01": want an RFC 3339 time like 2026-01-02T15:04:05Z`,
		`keys/trust.pub:13: duplicate key ` + b.id() + ` (first on line 12)`,
	}
	if got := strings.Join(te.Problems, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if err.Error() != strings.Join(want, "\n") {
		t.Errorf("Error() = %q", err.Error())
	}
	if strings.Contains(err.Error(), a.skey) {
		t.Error("a problem message reveals the private key")
	}
}

func TestParseTrustNoKeys(t *testing.T) {
	for _, data := range []string{"", "\n\n", "# only a comment\n"} {
		_, err := ParseTrust("trust.pub", []byte(data))
		if err == nil || err.Error() != "trust.pub: no verifier keys" {
			t.Errorf("ParseTrust(%q) = %v, want no verifier keys", data, err)
		}
	}
}

func TestTrustedKeyWindow(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		key  TrustedKey
		at   time.Time
		want bool
	}{
		{TrustedKey{}, time.Time{}, true},
		{TrustedKey{}, na.AddDate(100, 0, 0), true},
		{TrustedKey{NotBefore: nb}, nb.Add(-time.Nanosecond), false},
		{TrustedKey{NotBefore: nb}, nb, true},
		{TrustedKey{NotAfter: na}, na, true},
		{TrustedKey{NotAfter: na}, na.Add(time.Nanosecond), false},
		{TrustedKey{NotBefore: nb, NotAfter: na}, nb.AddDate(0, 6, 0), true},
		{TrustedKey{NotBefore: nb, NotAfter: na}, na.AddDate(0, 6, 0), false},
		{TrustedKey{NotBefore: nb, NotAfter: na}, nb.AddDate(0, -6, 0), false},
	}
	for _, tt := range tests {
		if got := tt.key.ValidAt(tt.at); got != tt.want {
			t.Errorf("key valid %s: ValidAt(%s) = %v, want %v", tt.key.Window(), tt.at.Format(time.RFC3339Nano), got, tt.want)
		}
	}
	if got, want := (TrustedKey{NotBefore: nb, NotAfter: na}).Window(), "not-before 2026-01-01T00:00:00Z, not-after 2027-01-01T00:00:00Z"; got != want {
		t.Errorf("Window() = %q, want %q", got, want)
	}
}

func TestTrustVerifiers(t *testing.T) {
	old, cur := newTestKey(t, "gw"), newTestKey(t, "gw")
	tr := mustParseTrust(t,
		old.vkey+" not-after=2026-01-01T00:00:00Z",
		cur.vkey+" not-before=2026-01-01T00:00:00Z",
	)
	check := func(at time.Time, k testKey, want bool) {
		t.Helper()
		_, err := tr.Verifiers(at).Verifier(k.signer.Name(), k.signer.KeyHash())
		if got := err == nil; got != want {
			t.Errorf("at %s, key %s offered = %v, want %v", at.Format(time.RFC3339), k.id(), got, want)
		}
	}
	before := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	after := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	check(before, old, true)
	check(before, cur, false)
	check(after, old, false)
	check(after, cur, true)
}

func FuzzParseTrust(f *testing.F) {
	k := newTestKey(f, "gw")
	f.Add([]byte(k.vkey + "\n"))
	f.Add([]byte("# c\n" + k.vkey + " not-before=2026-01-01T00:00:00Z not-after=2027-01-01T00:00:00Z # x\n"))
	f.Add([]byte(k.vkey + " not-after=x not-after=y z\n" + k.vkey + "\n" + k.skey + "\n"))
	f.Add([]byte("gw+00000000+AQ==\n\xff\x00 not-before=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseTrust("f", data)
		if err != nil {
			var te *TrustError
			if !errors.As(err, &te) || len(te.Problems) == 0 {
				t.Fatalf("err = %v, want a *TrustError with problems", err)
			}
			for _, p := range te.Problems {
				if !strings.HasPrefix(p, "f:") {
					t.Fatalf("problem %q does not name the file", p)
				}
			}
			return
		}
		for _, k := range tr.Keys() {
			if k.Line < 1 || k.verifier == nil {
				t.Fatalf("key %s: line %d, verifier %v", k.ID(), k.Line, k.verifier)
			}
			if !k.NotBefore.IsZero() && !k.NotAfter.IsZero() && k.NotBefore.After(k.NotAfter) {
				t.Fatalf("key %s: window %s accepted", k.ID(), k.Window())
			}
		}
		tr.Verifiers(time.Now())
	})
}
