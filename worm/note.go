package worm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Errors from opening signed objects. Callers branch on them with errors.Is;
// the wrapping error names the key, field or origin at fault.
var (
	// ErrMalformedNote: the bytes are not a signed note (no signature block,
	// control characters, bad signature lines), or the body is not what the
	// object type requires.
	ErrMalformedNote = errors.New("malformed signed note")
	// ErrMalformedCheckpoint: a checkpoint whose envelope or body does not
	// parse. A malformed checkpoint envelope matches ErrMalformedNote too.
	ErrMalformedCheckpoint = errors.New("malformed checkpoint")
	// ErrUnknownKey: no signature is by a key in the trust file.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrKeyOutsideWindow: a trusted key signed, but the object's time lies
	// outside that key's validity window.
	ErrKeyOutsideWindow = errors.New("signing key outside its validity window")
	// ErrBadSignature: a signature by a trusted key does not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrWrongOrigin: a correctly signed checkpoint of another log or stream.
	ErrWrongOrigin = errors.New("wrong checkpoint origin")
)

// KeyID names a key as its verifier key string begins: "name+hash", with
// the hash as 8 hex digits. Names alone are ambiguous after a rotation that
// keeps the name.
func KeyID(name string, hash uint32) string {
	return fmt.Sprintf("%s+%08x", name, hash)
}

// SignJSON signs a JSON body (a manifest) as a signed note. A newline is
// appended if the body lacks one, since note text ends in a newline. The
// body must be valid JSON without tabs, carriage returns or blank lines (the
// note format forbids them); json.Marshal's output always qualifies.
func SignJSON(s note.Signer, body []byte) ([]byte, error) {
	if s == nil {
		return nil, errors.New("sign json: no signer")
	}
	text := make([]byte, 0, len(body)+1)
	text = append(text, body...)
	if len(text) == 0 || text[len(text)-1] != '\n' {
		text = append(text, '\n')
	}
	if !json.Valid(text) {
		return nil, errors.New("sign json: body is not valid JSON")
	}
	if err := checkNoteText(text); err != nil {
		return nil, fmt.Errorf("sign json: %w", err)
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		return nil, fmt.Errorf("sign json with key %s: %w", KeyID(s.Name(), s.KeyHash()), err)
	}
	return msg, nil
}

// OpenJSON verifies a note made by SignJSON and returns its body (as
// signed, ending in a newline) and the ID of the key that signed it (see
// KeyID). at extracts the signing time from the still unverified body; only
// keys valid at that time count. An error from at is returned wrapped,
// matching ErrMalformedNote as well.
func OpenJSON(data []byte, trust *Trust, at func(body []byte) (time.Time, error)) (body []byte, keyName string, err error) {
	if trust == nil || at == nil {
		return nil, "", errors.New("open signed json: no trust file or no time reader")
	}
	text, err := noteText(data)
	if err != nil {
		return nil, "", fmt.Errorf("open signed json: %w", err)
	}
	if !json.Valid(text) {
		return nil, "", fmt.Errorf("open signed json: %w: body is not valid JSON", ErrMalformedNote)
	}
	t, err := at(text)
	if err != nil {
		return nil, "", fmt.Errorf("open signed json: %w: read signing time: %w", ErrMalformedNote, err)
	}
	id, err := trust.verify(data, t)
	if err != nil {
		return nil, "", fmt.Errorf("open signed json: %w", err)
	}
	return text, id, nil
}

// noteText returns the text of a signed note without checking any
// signature, so that the time it states can pick the keys to check with.
func noteText(data []byte) ([]byte, error) {
	_, err := note.Open(data, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		// With no verifiers, a note that parses always ends here; the
		// library's other answer is a bare "malformed note".
		return nil, fmt.Errorf("%w: want UTF-8 text without control characters, a blank line, then lines \"— <key name> <base64 signature>\"", ErrMalformedNote)
	}
	return []byte(unverified.Note.Text), nil
}

// verify checks the signatures of data against the keys valid at t and
// returns the ID of the first key whose signature verifies. A signature by a
// key valid at t that does not verify fails the note even if another one
// does. When no valid key signed, it explains why: a trusted key's bad
// signature, a trusted key outside its window, or keys not in the file.
func (tr *Trust) verify(data []byte, t time.Time) (string, error) {
	n, err := note.Open(data, tr.Verifiers(t))
	var (
		invalid    *note.InvalidSignatureError
		unverified *note.UnverifiedNoteError
	)
	switch {
	case err == nil:
		return KeyID(n.Sigs[0].Name, n.Sigs[0].Hash), nil
	case errors.As(err, &invalid):
		return "", badSignature(KeyID(invalid.Name, invalid.Hash))
	case errors.As(err, &unverified):
		return "", tr.explainUnverified(unverified.Note, t)
	default:
		return "", fmt.Errorf("%w: %v", ErrMalformedNote, err)
	}
}

func (tr *Trust) explainUnverified(n *note.Note, t time.Time) error {
	var outside, unknown []string
	for _, s := range n.UnverifiedSigs {
		k, ok := tr.Lookup(s.Name, s.Hash)
		if !ok {
			unknown = append(unknown, KeyID(s.Name, s.Hash))
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || len(raw) < 4 || !k.verifier.Verify([]byte(n.Text), raw[4:]) {
			return badSignature(k.ID())
		}
		outside = append(outside, fmt.Sprintf("key %s signed at %s but is trusted only %s (%s line %d)",
			k.ID(), t.UTC().Format(time.RFC3339Nano), k.Window(), tr.name, k.Line))
	}
	if len(outside) > 0 {
		return fmt.Errorf("%w: %s", ErrKeyOutsideWindow, strings.Join(outside, "; "))
	}
	return fmt.Errorf("%w: signed only by %s, not in trust file %s", ErrUnknownKey, strings.Join(unknown, ", "), tr.name)
}

func badSignature(keyID string) error {
	return fmt.Errorf("%w: the signature by key %s does not match the signed text (text or signature altered)", ErrBadSignature, keyID)
}

// checkNoteText reports why text cannot be the text of a signed note that
// note.Open would accept back unchanged.
func checkNoteText(text []byte) error {
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return errors.New("note text must end in a newline")
	}
	if text[0] == '\n' || bytes.Contains(text, []byte("\n\n")) {
		return errors.New("note text must not contain blank lines")
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("note text has invalid UTF-8 at byte %d", i)
		}
		if r < 0x20 && r != '\n' {
			return fmt.Errorf("note text has control character %U at byte %d", r, i)
		}
		i += size
	}
	return nil
}
