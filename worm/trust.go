package worm

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// A Trust is a parsed trust file: the verifier keys an auditor pins, each
// valid within an optional window. It is read-only after parsing and safe
// for concurrent use.
//
// The file holds one key per line, optionally followed by bounds, in any
// order, each at most once:
//
//	# retired at the 2026 rotation
//	gw+1a2b3c4d+AXk...= not-after=2026-01-01T00:00:00Z
//	gw+5e6f7a8b+AZq...= not-before=2026-01-01T00:00:00Z
//
// Both bounds are inclusive. A field starting with '#' starts a comment that
// runs to the end of the line; blank lines are ignored.
type Trust struct {
	name string
	keys []TrustedKey
	byID map[keyRef]int
}

type keyRef struct {
	name string
	hash uint32
}

// A TrustedKey is one line of a trust file.
type TrustedKey struct {
	Name string // the key name, as in signatures
	Hash uint32 // the key hash, as in signatures
	Key  string // the verifier key as written in the file
	// NotBefore and NotAfter bound the times at which the key is trusted,
	// both inclusive; if zero, that side is unbounded.
	NotBefore, NotAfter time.Time
	Line                int // line in the trust file, from 1

	verifier note.Verifier
}

// ID returns the key's "name+hash" (see KeyID).
func (k TrustedKey) ID() string { return KeyID(k.Name, k.Hash) }

// ValidAt reports whether the key is trusted at t.
func (k TrustedKey) ValidAt(t time.Time) bool {
	return (k.NotBefore.IsZero() || !t.Before(k.NotBefore)) &&
		(k.NotAfter.IsZero() || !t.After(k.NotAfter))
}

// Window describes the key's validity window for messages, for example
// "not-after 2026-01-01T00:00:00Z".
func (k TrustedKey) Window() string {
	var parts []string
	if !k.NotBefore.IsZero() {
		parts = append(parts, "not-before "+k.NotBefore.Format(time.RFC3339Nano))
	}
	if !k.NotAfter.IsZero() {
		parts = append(parts, "not-after "+k.NotAfter.Format(time.RFC3339Nano))
	}
	if len(parts) == 0 {
		return "without bounds"
	}
	return strings.Join(parts, ", ")
}

// A TrustError lists every problem found in a trust file, each as
// "name:line: message" (or "name: message" for the file as a whole).
type TrustError struct {
	Problems []string
}

func (e *TrustError) Error() string { return strings.Join(e.Problems, "\n") }

// LoadTrust reads and parses the trust file at path.
func LoadTrust(path string) (*Trust, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	return ParseTrust(path, data)
}

// ParseTrust parses a trust file's contents; name is used in messages. It
// reports every problem at once as a *TrustError: malformed or private keys,
// unknown fields, bad or repeated bounds, a window that ends before it
// starts, a key listed twice, and a file without keys.
func ParseTrust(name string, data []byte) (*Trust, error) {
	tr := &Trust{name: name, byID: make(map[keyRef]int)}
	var problems []string
	bad := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		lineNo := i + 1
		fields := strings.Fields(string(raw))
		if j := slices.IndexFunc(fields, func(f string) bool { return strings.HasPrefix(f, "#") }); j >= 0 {
			fields = fields[:j]
		}
		if len(fields) == 0 {
			continue
		}
		k, lineProblems := parseTrustLine(fields)
		for _, p := range lineProblems {
			bad(lineNo, "%s", p)
		}
		if len(lineProblems) > 0 {
			continue
		}
		k.Line = lineNo
		ref := keyRef{k.Name, k.Hash}
		if first, dup := tr.byID[ref]; dup {
			bad(lineNo, "duplicate key %s (first on line %d)", k.ID(), tr.keys[first].Line)
			continue
		}
		tr.byID[ref] = len(tr.keys)
		tr.keys = append(tr.keys, k)
	}
	if len(problems) == 0 && len(tr.keys) == 0 {
		problems = append(problems, name+": no verifier keys")
	}
	if len(problems) > 0 {
		return nil, &TrustError{Problems: problems}
	}
	return tr, nil
}

// parseTrustLine parses the fields of one non-empty line.
func parseTrustLine(fields []string) (TrustedKey, []string) {
	var (
		k        TrustedKey
		problems []string
	)
	key := fields[0]
	if strings.HasPrefix(key, "PRIVATE+") {
		// Never echo a private key into a message or log.
		problems = append(problems, "this is a private signing key; a trust file holds verifier keys only (remove it and keep it secret)")
	} else if v, err := note.NewVerifier(key); err != nil {
		problems = append(problems, fmt.Sprintf("malformed verifier key %q: %v", key, err))
	} else {
		k = TrustedKey{Name: v.Name(), Hash: v.KeyHash(), Key: key, verifier: v}
	}

	var seenBefore, seenAfter bool
	for _, f := range fields[1:] {
		opt, value, ok := strings.Cut(f, "=")
		var (
			dst  *time.Time
			seen *bool
		)
		switch {
		case ok && opt == "not-before":
			dst, seen = &k.NotBefore, &seenBefore
		case ok && opt == "not-after":
			dst, seen = &k.NotAfter, &seenAfter
		default:
			problems = append(problems, fmt.Sprintf("unknown field %q (want not-before=TIME or not-after=TIME)", f))
			continue
		}
		if *seen {
			problems = append(problems, opt+" given twice")
			continue
		}
		*seen = true
		t, err := time.Parse(time.RFC3339Nano, value)
		if err != nil {
			problems = append(problems, fmt.Sprintf("bad %s %q: want an RFC 3339 time like 2026-01-02T15:04:05Z", opt, value))
			continue
		}
		*dst = t.UTC()
	}
	if !k.NotBefore.IsZero() && !k.NotAfter.IsZero() && k.NotBefore.After(k.NotAfter) {
		problems = append(problems, fmt.Sprintf("not-before %s is after not-after %s",
			k.NotBefore.Format(time.RFC3339Nano), k.NotAfter.Format(time.RFC3339Nano)))
	}
	return k, problems
}

// Name returns the name the trust file was parsed under (its path for
// LoadTrust).
func (tr *Trust) Name() string { return tr.name }

// Keys returns the trusted keys in file order.
func (tr *Trust) Keys() []TrustedKey { return slices.Clone(tr.keys) }

// Lookup finds a key by the name and hash a signature carries, whatever its
// window, so that a verifier can tell a key outside its window from one that
// is not trusted at all.
func (tr *Trust) Lookup(name string, hash uint32) (entry TrustedKey, found bool) {
	i, ok := tr.byID[keyRef{name, hash}]
	if !ok {
		return TrustedKey{}, false
	}
	return tr.keys[i], true
}

// Verifiers returns the keys trusted at t, for note.Open.
func (tr *Trust) Verifiers(at time.Time) note.Verifiers {
	var vs []note.Verifier
	for _, k := range tr.keys {
		if k.ValidAt(at) {
			vs = append(vs, k.verifier)
		}
	}
	return note.VerifierList(vs...)
}
