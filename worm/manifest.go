package worm

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ManifestVersion is the manifest body's format version, its "v".
const ManifestVersion = 1

// TimeLayout is RFC 3339 in UTC with exactly nine fractional
// digits, the layout of record times, so times have one spelling.
// TimeLayout is how the trail writes times: RFC 3339 in UTC with exactly
// nine fractional digits, as records do, so that every time has one
// spelling and times sort as text.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// ErrMalformedManifest: a manifest body that does not parse or does not
// hold together. The wrapping error names the key at fault.
var ErrMalformedManifest = errors.New("malformed manifest")

// Manifest describes one sealed segment and links it to the manifest
// before it. Its body is JSON with a fixed key order (AppendJSON), signed
// as a note (SignJSON).
type Manifest struct {
	V             int      // ManifestVersion
	Stream        string   // the stream's id
	Segment       string   // the segment's key
	SegmentSHA256 [32]byte // of the segment object as stored (compressed)
	// Start and End are the segment's records [Start, End).
	Start, End uint64
	// FirstTime and LastTime are the earliest and latest record times in
	// the segment; every record's time lies between them. (Records are
	// timed before they are sequenced, so these need not be the times of
	// records Start and End-1.)
	FirstTime, LastTime time.Time
	// SealedAt is when the segment was sealed; trust windows of signing
	// keys are checked against it.
	SealedAt  time.Time
	ChainHead [32]byte // chain value after record End-1
	Root      [32]byte // Merkle root of the tree of records [0, End)
	// Range holds the compact-range hashes of leaves [Start, End), left to
	// right, as github.com/transparency-dev/merkle/compact.Range.Hashes
	// returns them.
	Range [][32]byte
	// Prev is the SHA-256 of the previous manifest object (the signed
	// note), all zero for the first manifest, which alone starts at 0.
	Prev  [32]byte
	KeyID string // the signing key as "name+hash" (see KeyID)
}

// The body's keys, in their order.
var manifestKeys = [...]string{
	"v", "stream", "segment", "segment_sha256", "start", "end",
	"first_time", "last_time", "sealed_at", "chain_head", "root", "range",
	"prev_manifest_sha256", "key_id",
}

// AppendJSON appends the manifest body: one line of compact JSON with the
// keys in manifestKeys' order, hashes in lower-case hex, times in UTC with
// nine fractional digits, ending in "\n". It does not validate (see
// Validate); JSON strings are escaped, so the output is always JSON.
func (m *Manifest) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(m.V), 10)
	dst = append(dst, `,"stream":`...)
	dst = manifestAppendString(dst, m.Stream)
	dst = append(dst, `,"segment":`...)
	dst = manifestAppendString(dst, m.Segment)
	dst = append(dst, `,"segment_sha256":`...)
	dst = manifestAppendHash(dst, &m.SegmentSHA256)
	dst = append(dst, `,"start":`...)
	dst = strconv.AppendUint(dst, m.Start, 10)
	dst = append(dst, `,"end":`...)
	dst = strconv.AppendUint(dst, m.End, 10)
	dst = append(dst, `,"first_time":`...)
	dst = manifestAppendTime(dst, m.FirstTime)
	dst = append(dst, `,"last_time":`...)
	dst = manifestAppendTime(dst, m.LastTime)
	dst = append(dst, `,"sealed_at":`...)
	dst = manifestAppendTime(dst, m.SealedAt)
	dst = append(dst, `,"chain_head":`...)
	dst = manifestAppendHash(dst, &m.ChainHead)
	dst = append(dst, `,"root":`...)
	dst = manifestAppendHash(dst, &m.Root)
	dst = append(dst, `,"range":[`...)
	for i := range m.Range {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = manifestAppendHash(dst, &m.Range[i])
	}
	dst = append(dst, `],"prev_manifest_sha256":`...)
	dst = manifestAppendHash(dst, &m.Prev)
	dst = append(dst, `,"key_id":`...)
	dst = manifestAppendString(dst, m.KeyID)
	return append(dst, "}\n"...)
}

func manifestAppendHash(dst []byte, h *[32]byte) []byte {
	dst = append(dst, '"')
	dst = hex.AppendEncode(dst, h[:])
	return append(dst, '"')
}

func manifestAppendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, TimeLayout)
	return append(dst, '"')
}

// manifestAppendString appends s as a JSON string, escaping what JSON
// requires and replacing invalid UTF-8 with U+FFFD, as encoding/json does.
func manifestAppendString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		dst = utf8.AppendRune(dst, r) // RuneError for invalid bytes
		i += size
	}
	return append(dst, '"')
}

// ParseManifest parses a manifest body. It is strict: the body must be a
// JSON object with exactly the manifest's keys, each once and of its type,
// the values must pass Validate, and the body must be exactly what
// AppendJSON writes, so a manifest has one encoding. Errors match
// ErrMalformedManifest and name the key at fault.
func ParseManifest(body []byte) (Manifest, error) {
	m, err := manifestDecode(body)
	if err == nil {
		err = m.Validate()
	}
	if err == nil {
		err = manifestCheckCanonical(&m, body)
	}
	if err != nil {
		if !errors.Is(err, ErrMalformedManifest) {
			err = fmt.Errorf("%w: %w", ErrMalformedManifest, err)
		}
		return Manifest{}, fmt.Errorf("parse manifest: %w", err)
	}
	return m, nil
}

// ManifestSealedAt returns the sealing time of a manifest body: the time
// OpenJSON checks signing keys against.
func ManifestSealedAt(body []byte) (time.Time, error) {
	m, err := ParseManifest(body)
	if err != nil {
		return time.Time{}, err
	}
	return m.SealedAt, nil
}

func manifestDecode(body []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return m, errors.New("body is not a JSON object")
	}
	seen := make(map[string]bool, len(manifestKeys))
	last := ""
	for dec.More() {
		tok, err := dec.Token()
		if err != nil && last != "" {
			return m, fmt.Errorf("after key %q: %v", last, err)
		}
		if err != nil {
			return m, fmt.Errorf("read key: %v", err)
		}
		key := tok.(string) // object keys are always strings
		last = key
		if seen[key] {
			return m, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		if err := manifestDecodeValue(dec, &m, key); err != nil {
			return m, fmt.Errorf("key %q: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return m, fmt.Errorf("after key %q: %v", last, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return m, errors.New("data after the JSON object")
	}
	var missing []string
	for _, k := range manifestKeys {
		if !seen[k] {
			missing = append(missing, strconv.Quote(k))
		}
	}
	if len(missing) > 0 {
		return m, fmt.Errorf("missing key %s", strings.Join(missing, ", "))
	}
	return m, nil
}

func manifestDecodeValue(dec *json.Decoder, m *Manifest, key string) error {
	var err error
	switch key {
	case "v":
		var v uint64
		if v, err = manifestDecodeUint(dec); err == nil {
			if v != ManifestVersion {
				return fmt.Errorf("version %d is not supported (want %d)", v, ManifestVersion)
			}
			m.V = int(v)
		}
	case "stream":
		m.Stream, err = manifestDecodeString(dec)
	case "segment":
		m.Segment, err = manifestDecodeString(dec)
	case "segment_sha256":
		m.SegmentSHA256, err = manifestDecodeHash(dec)
	case "start":
		m.Start, err = manifestDecodeUint(dec)
	case "end":
		m.End, err = manifestDecodeUint(dec)
	case "first_time":
		m.FirstTime, err = manifestDecodeTime(dec)
	case "last_time":
		m.LastTime, err = manifestDecodeTime(dec)
	case "sealed_at":
		m.SealedAt, err = manifestDecodeTime(dec)
	case "chain_head":
		m.ChainHead, err = manifestDecodeHash(dec)
	case "root":
		m.Root, err = manifestDecodeHash(dec)
	case "range":
		m.Range, err = manifestDecodeHashes(dec)
	case "prev_manifest_sha256":
		m.Prev, err = manifestDecodeHash(dec)
	case "key_id":
		m.KeyID, err = manifestDecodeString(dec)
	default:
		return errors.New("unknown key")
	}
	return err
}

// manifestToken returns the next value's token, describing a value that
// is an object or array as such.
func manifestToken(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("read value: %v", err)
	}
	return tok, nil
}

func manifestTypeName(tok any) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

func manifestDecodeString(dec *json.Decoder) (string, error) {
	tok, err := manifestToken(dec)
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", manifestTypeName(tok))
	}
	return s, nil
}

// manifestDecodeUint accepts a decimal integer without sign, fraction,
// exponent or leading zeros that fits in 64 bits.
func manifestDecodeUint(dec *json.Decoder) (uint64, error) {
	tok, err := manifestToken(dec)
	if err != nil {
		return 0, err
	}
	num, ok := tok.(json.Number)
	if !ok {
		return 0, fmt.Errorf("want an unsigned integer, got %s", manifestTypeName(tok))
	}
	s := string(num)
	if strings.ContainsAny(s, "-+.eE") || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%s is not an unsigned decimal integer", s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s does not fit in 64 bits", s)
	}
	return v, nil
}

func manifestDecodeHash(dec *json.Decoder) ([32]byte, error) {
	s, err := manifestDecodeString(dec)
	if err != nil {
		return [32]byte{}, err
	}
	return manifestParseHash(s)
}

// manifestParseHash accepts 64 lower-case hex digits.
func manifestParseHash(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 2*len(h) || strings.ToLower(s) != s {
		return h, fmt.Errorf("%q is not 64 lower-case hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%q is not 64 lower-case hex digits", s)
	}
	return h, nil
}

func manifestDecodeHashes(dec *json.Decoder) ([][32]byte, error) {
	tok, err := manifestToken(dec)
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("want an array of hashes, got %s", manifestTypeName(tok))
	}
	var hashes [][32]byte
	for i := 0; dec.More(); i++ {
		h, err := manifestDecodeHash(dec)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		hashes = append(hashes, h)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("read value: %v", err)
	}
	return hashes, nil
}

func manifestDecodeTime(dec *json.Decoder) (time.Time, error) {
	s, err := manifestDecodeString(dec)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a UTC time like 2026-11-27T18:00:00.123456789Z", s)
	}
	return t, nil
}

// Validate checks that the manifest holds together on its own: a
// supported version, a valid stream, a segment key naming this stream's
// records [Start, End), set times and hashes, as many range hashes as
// [Start, End) has compact-range nodes, a previous-manifest hash exactly
// when Start is not 0, and a key ID of the form "name+hash". Errors name
// the key at fault. Links to other objects are the verifier's business.
func (m *Manifest) Validate() error {
	if err := m.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedManifest, err)
	}
	return nil
}

func (m *Manifest) validate() error {
	if m.V != ManifestVersion {
		return fmt.Errorf("key \"v\": version %d is not supported (want %d)", m.V, ManifestVersion)
	}
	if err := ValidateStream(m.Stream); err != nil {
		return fmt.Errorf("key \"stream\": %w", err)
	}
	if m.Start >= m.End {
		return fmt.Errorf("key \"end\": %d is not above start %d", m.End, m.Start)
	}
	k, err := ParseKey(m.Segment)
	switch {
	case err != nil:
		return fmt.Errorf("key \"segment\": %w", err)
	case k.Kind != KindSegment:
		return fmt.Errorf("key \"segment\": %q is a %v key", m.Segment, k.Kind)
	case k.Stream != m.Stream || k.Start != m.Start || k.End != m.End:
		return fmt.Errorf("key \"segment\": %q is not the segment of stream %s records [%d, %d)", m.Segment, m.Stream, m.Start, m.End)
	}
	for _, f := range []struct {
		key string
		t   time.Time
	}{{"first_time", m.FirstTime}, {"last_time", m.LastTime}, {"sealed_at", m.SealedAt}} {
		if y := f.t.UTC().Year(); f.t.IsZero() || y < 1 || y > 9999 {
			return fmt.Errorf("key %q: time %v is not set or out of range", f.key, f.t)
		}
	}
	var zero [32]byte
	for _, f := range []struct {
		key string
		h   *[32]byte
	}{{"segment_sha256", &m.SegmentSHA256}, {"chain_head", &m.ChainHead}, {"root", &m.Root}} {
		if *f.h == zero {
			return fmt.Errorf("key %q: hash is all zero", f.key)
		}
	}
	if want := manifestRangeLen(m.Start, m.End); len(m.Range) != want {
		if len(m.Range) == 0 {
			return fmt.Errorf("key \"range\": empty, want %d hashes for [%d, %d)", want, m.Start, m.End)
		}
		return fmt.Errorf("key \"range\": %d hashes, want %d for [%d, %d)", len(m.Range), want, m.Start, m.End)
	}
	switch {
	case m.Start == 0 && m.Prev != zero:
		return errors.New("key \"prev_manifest_sha256\": set, but the first manifest (start 0) has no previous one")
	case m.Start != 0 && m.Prev == zero:
		return fmt.Errorf("key \"prev_manifest_sha256\": all zero, but a manifest starting at %d has a previous one", m.Start)
	}
	if err := manifestCheckKeyID(m.KeyID); err != nil {
		return fmt.Errorf("key \"key_id\": %w", err)
	}
	return nil
}

// manifestRangeLen is the number of nodes in the compact range of leaves
// [begin, end): the nodes right of the path to leaf begin-1 and left of the
// path to leaf end, below where the two paths meet (as in
// github.com/transparency-dev/merkle/compact.Decompose).
func manifestRangeLen(begin, end uint64) int {
	if begin == 0 {
		return bits.OnesCount64(end)
	}
	xbegin := begin - 1
	mask := uint64(1)<<(bits.Len64(xbegin^end)-1) - 1
	return bits.OnesCount64(^xbegin&mask) + bits.OnesCount64(end&mask)
}

// manifestCheckKeyID accepts KeyID's form: a signed-note key name (no
// spaces, controls or '+'), '+', and 8 lower-case hex digits.
func manifestCheckKeyID(id string) error {
	name, hash, ok := strings.Cut(id, "+")
	if !ok || name == "" || len(hash) != 8 || strings.ToLower(hash) != hash {
		return fmt.Errorf("%q is not name+hash with 8 lower-case hex digits", id)
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return fmt.Errorf("%q is not name+hash with 8 lower-case hex digits", id)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("key name %q holds a space, control or invalid character", name)
		}
	}
	return nil
}

// manifestCheckCanonical requires body to be what AppendJSON writes for m.
func manifestCheckCanonical(m *Manifest, body []byte) error {
	want := m.AppendJSON(nil)
	if bytes.Equal(want, body) {
		return nil
	}
	i := 0
	for i < len(want) && i < len(body) && want[i] == body[i] {
		i++
	}
	return fmt.Errorf("not in canonical form (spacing, key order, escapes or final newline), differs from byte %d", i)
}
