package worm

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// OriginPrefix begins every checkpoint origin; the stream name follows.
const OriginPrefix = "auditgate/"

const maxStreamLen = 64

// timeExtension starts the checkpoint's one extension line, which carries
// the sealing time that trust windows are checked against.
const timeExtension = "time "

// A Checkpoint is a verified checkpoint: the stream's Merkle root over its
// first Size records, sealed at Time, signed by KeyName.
type Checkpoint struct {
	Stream  string
	Size    uint64
	Root    [32]byte
	Time    time.Time // UTC
	KeyName string    // the signing key as "name+hash" (see KeyID)
}

// ValidateStream reports whether stream can name a stream: 1 to 64 of
// a-z, 0-9, '.', '_' and '-'. The name becomes part of object keys and of
// the checkpoint origin.
func ValidateStream(stream string) error {
	if stream == "" || len(stream) > maxStreamLen {
		return fmt.Errorf("stream name %q must have 1 to %d characters", stream, maxStreamLen)
	}
	for _, c := range []byte(stream) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("stream name %q may hold only a-z, 0-9, '.', '_' and '-'", stream)
		}
	}
	if stream == "." || stream == ".." {
		// A stream is a path element in the store's keys.
		return fmt.Errorf("stream name %q is a path element, not a name", stream)
	}
	return nil
}

// Origin returns the checkpoint origin of a stream.
func Origin(stream string) string { return OriginPrefix + stream }

// SignCheckpoint signs the checkpoint of stream at size with Merkle root
// root, sealed at t.
func SignCheckpoint(s note.Signer, stream string, size uint64, root [32]byte, t time.Time) ([]byte, error) {
	if s == nil {
		return nil, errors.New("sign checkpoint: no signer")
	}
	if err := ValidateStream(stream); err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	if t.IsZero() || t.Year() < 1 || t.UTC().Year() > 9999 {
		return nil, fmt.Errorf("sign checkpoint %s at size %d: time %v is not a sealing time", Origin(stream), size, t)
	}
	text := checkpointText(stream, size, root, t)
	msg, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint %s at size %d with key %s: %w", Origin(stream), size, KeyID(s.Name(), s.KeyHash()), err)
	}
	return msg, nil
}

func checkpointText(stream string, size uint64, root [32]byte, t time.Time) []byte {
	body := log.Checkpoint{Origin: Origin(stream), Size: size, Hash: root[:]}.Marshal()
	return fmt.Appendf(body, "%s%s\n", timeExtension, t.UTC().Format(TimeLayout))
}

// OpenCheckpoint verifies a signed checkpoint of stream against the keys
// that trust holds valid at the checkpoint's own sealing time. Errors match
// ErrMalformedCheckpoint, ErrUnknownKey, ErrKeyOutsideWindow,
// ErrBadSignature or ErrWrongOrigin.
func OpenCheckpoint(data []byte, trust *Trust, stream string) (Checkpoint, error) {
	if err := ValidateStream(stream); err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w", err)
	}
	if trust == nil {
		return Checkpoint{}, errors.New("open checkpoint: no trust file")
	}
	text, err := noteText(data)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w: %w", ErrMalformedCheckpoint, err)
	}
	origin, cp, err := parseCheckpointText(text)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w", err)
	}
	keyID, err := trust.verify(data, cp.Time)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint %s at size %d: %w", origin, cp.Size, err)
	}
	if want := Origin(stream); origin != want {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w: origin %q, want %q", ErrWrongOrigin, origin, want)
	}
	cp.Stream = stream
	cp.KeyName = keyID
	return cp, nil
}

// parseCheckpointText parses a checkpoint's note text, accepting only the
// form SignCheckpoint writes, so that one checkpoint has one encoding.
func parseCheckpointText(text []byte) (origin string, cp Checkpoint, err error) {
	var lc log.Checkpoint
	rest, err := lc.Unmarshal(text)
	if err != nil {
		return "", Checkpoint{}, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	if len(lc.Hash) != len(cp.Root) {
		return "", Checkpoint{}, fmt.Errorf("%w: root hash has %d bytes, want %d", ErrMalformedCheckpoint, len(lc.Hash), len(cp.Root))
	}
	if canonical := lc.Marshal(); !bytes.HasPrefix(text, canonical) {
		return "", Checkpoint{}, fmt.Errorf("%w: size or root hash not in canonical form (decimal without leading zeros, padded standard base64)", ErrMalformedCheckpoint)
	}
	line, more, _ := bytes.Cut(rest, []byte("\n"))
	value, ok := strings.CutPrefix(string(line), timeExtension)
	if !ok {
		return "", Checkpoint{}, fmt.Errorf("%w: line 4 is %q, want %q followed by the sealing time", ErrMalformedCheckpoint, line, timeExtension)
	}
	t, err := time.Parse(TimeLayout, value)
	if err != nil || t.UTC().Format(TimeLayout) != value {
		return "", Checkpoint{}, fmt.Errorf("%w: time %q is not an RFC 3339 UTC time like 2026-01-02T15:04:05.123456789Z", ErrMalformedCheckpoint, value)
	}
	if len(more) > 0 {
		extra, _, _ := bytes.Cut(more, []byte("\n"))
		return "", Checkpoint{}, fmt.Errorf("%w: unexpected extension line %q after the time", ErrMalformedCheckpoint, extra)
	}
	cp.Size = lc.Size
	copy(cp.Root[:], lc.Hash)
	cp.Time = t.UTC()
	return lc.Origin, cp, nil
}
