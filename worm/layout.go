package worm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The trail's object keys, relative to a store:
//
//	<prefix>/<stream>/seg/<start:020d>-<end:020d>.jsonl.zst
//	<prefix>/<stream>/checkpoint/<size:020d>
//	<prefix>/<stream>/manifest/<end:020d>
//
// Numbers are zero-padded to 20 digits so that the lexical order of keys,
// which is what object stores list in, is their numeric order.

const (
	layoutSegmentDir    = "seg"
	layoutCheckpointDir = "checkpoint"
	layoutManifestDir   = "manifest"
	layoutSegmentSuffix = ".jsonl.zst"
	layoutDigits        = 20
	// maxObjectKeyLen is S3's limit on key length.
	maxObjectKeyLen = 1024
)

// KeyKind is the kind of trail object a key names.
type KeyKind uint8

// The kinds of trail objects. The zero KeyKind names none.
const (
	KindSegment KeyKind = iota + 1
	KindCheckpoint
	KindManifest
)

func (k KeyKind) String() string {
	switch k {
	case KindSegment:
		return "segment"
	case KindCheckpoint:
		return "checkpoint"
	case KindManifest:
		return "manifest"
	}
	return "KeyKind(" + strconv.Itoa(int(k)) + ")"
}

// Key is a parsed trail object key.
type Key struct {
	Prefix string // without surrounding slashes; empty if none
	Stream string
	Kind   KeyKind
	// Start and End are the records [Start, End) of a segment; End alone is
	// set for a manifest, the end of the segment it describes.
	Start, End uint64
	// Size is a checkpoint's tree size.
	Size uint64
}

// String returns the key as it is stored.
func (k Key) String() string {
	switch k.Kind {
	case KindSegment:
		return SegmentKey(k.Prefix, k.Stream, k.Start, k.End)
	case KindCheckpoint:
		return CheckpointKey(k.Prefix, k.Stream, k.Size)
	case KindManifest:
		return ManifestKey(k.Prefix, k.Stream, k.End)
	}
	return fmt.Sprintf("invalid key (kind %v)", k.Kind)
}

// SegmentKey returns the key of the segment holding records [start, end) of
// stream. Slashes around prefix are dropped; an empty prefix means none. The
// key builders do not validate: check prefix and stream once, with
// ValidatePrefix and ValidateStream, where they are configured.
func SegmentKey(prefix, stream string, start, end uint64) string {
	b := layoutAppendDir(nil, prefix, stream, layoutSegmentDir)
	b = layoutAppendNumber(b, start)
	b = append(b, '-')
	b = layoutAppendNumber(b, end)
	return string(append(b, layoutSegmentSuffix...))
}

// CheckpointKey returns the key of stream's checkpoint at tree size size.
func CheckpointKey(prefix, stream string, size uint64) string {
	return string(layoutAppendNumber(layoutAppendDir(nil, prefix, stream, layoutCheckpointDir), size))
}

// ManifestKey returns the key of the manifest of stream's segment ending at
// end.
func ManifestKey(prefix, stream string, end uint64) string {
	return string(layoutAppendNumber(layoutAppendDir(nil, prefix, stream, layoutManifestDir), end))
}

func layoutAppendDir(b []byte, prefix, stream, dir string) []byte {
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		b = append(b, prefix...)
		b = append(b, '/')
	}
	b = append(b, stream...)
	b = append(b, '/')
	b = append(b, dir...)
	return append(b, '/')
}

func layoutAppendNumber(b []byte, n uint64) []byte {
	var digits [layoutDigits]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, digits[:]...)
}

// ParseKey parses a trail object key, rejecting every key that SegmentKey,
// CheckpointKey and ManifestKey cannot produce from a valid prefix and
// stream, including a segment with start >= end and a manifest at end 0.
func ParseKey(key string) (Key, error) {
	if err := ValidateObjectKey(key); err != nil {
		return Key{}, err
	}
	parts := strings.Split(key, "/")
	if len(parts) < 3 {
		return Key{}, fmt.Errorf("parse key %q: not a trail object key: want <prefix>/<stream>/{seg,checkpoint,manifest}/<name>", key)
	}
	n := len(parts)
	k := Key{Prefix: strings.Join(parts[:n-3], "/"), Stream: parts[n-3]}
	if err := ValidateStream(k.Stream); err != nil {
		return Key{}, fmt.Errorf("parse key %q: %w", key, err)
	}
	dir, name := parts[n-2], parts[n-1]
	var err error
	switch dir {
	case layoutSegmentDir:
		k.Kind = KindSegment
		k.Start, k.End, err = layoutParseSegmentName(name)
	case layoutCheckpointDir:
		k.Kind = KindCheckpoint
		k.Size, err = layoutParseNumber(name)
	case layoutManifestDir:
		k.Kind = KindManifest
		k.End, err = layoutParseNumber(name)
		if err == nil && k.End == 0 {
			err = errors.New("a manifest cannot end at 0")
		}
	default:
		err = fmt.Errorf("directory %q is not seg, checkpoint or manifest", dir)
	}
	if err != nil {
		return Key{}, fmt.Errorf("parse key %q: %w", key, err)
	}
	return k, nil
}

func layoutParseSegmentName(name string) (start, end uint64, err error) {
	numbers, ok := strings.CutSuffix(name, layoutSegmentSuffix)
	if !ok || len(numbers) != 2*layoutDigits+1 || numbers[layoutDigits] != '-' {
		return 0, 0, fmt.Errorf("segment name %q is not <start:020d>-<end:020d>%s", name, layoutSegmentSuffix)
	}
	if start, err = layoutParseNumber(numbers[:layoutDigits]); err != nil {
		return 0, 0, err
	}
	if end, err = layoutParseNumber(numbers[layoutDigits+1:]); err != nil {
		return 0, 0, err
	}
	if start >= end {
		return 0, 0, fmt.Errorf("segment start %d is not below its end %d", start, end)
	}
	return start, end, nil
}

// layoutParseNumber accepts exactly 20 decimal digits that fit in a uint64.
func layoutParseNumber(s string) (uint64, error) {
	if len(s) != layoutDigits {
		return 0, fmt.Errorf("%q is not a %d-digit number", s, layoutDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a %d-digit number", s, layoutDigits)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q does not fit in 64 bits", s)
	}
	return n, nil
}

// ValidatePrefix reports whether prefix can begin trail keys: empty, or
// slash-separated elements of A-Z, a-z, 0-9, '.', '_' and '-', none empty,
// "." or "..". Surrounding slashes are allowed and dropped by the key
// builders.
func ValidatePrefix(prefix string) error {
	if p := strings.Trim(prefix, "/"); p != "" {
		if err := layoutCheckPath(p); err != nil {
			return fmt.Errorf("key prefix %q: %w", prefix, err)
		}
	}
	return nil
}

// ValidateObjectKey reports whether key may name an object in a Store:
// 1 to 1024 bytes of slash-separated elements of A-Z, a-z, 0-9, '.', '_'
// and '-', none of them empty, "." or "..". So no key is absolute, holds a
// backslash, or climbs out of a directory, and every key is a plain
// relative path on every file system. Errors match ErrInvalidKey.
func ValidateObjectKey(key string) error {
	if len(key) > maxObjectKeyLen {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidKey, len(key), maxObjectKeyLen)
	}
	if err := layoutCheckPath(key); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidKey, key, err)
	}
	return nil
}

func layoutCheckPath(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	for elem := range strings.SplitSeq(p, "/") {
		switch elem {
		case "":
			return errors.New("empty path element (leading, trailing or double slash)")
		case ".", "..":
			return fmt.Errorf("path element %q", elem)
		}
		for i := 0; i < len(elem); i++ {
			if !layoutKeyChar(elem[i]) {
				return fmt.Errorf("character %q not allowed (only A-Z, a-z, 0-9, '.', '_', '-' and '/')", elem[i])
			}
		}
	}
	return nil
}

func layoutKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}
