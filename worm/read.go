package worm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// ErrRecordNotFound: no sealed record has the id asked for.
var ErrRecordNotFound = errors.New("record not found")

// findSlack widens the time window in which Find looks for a record first:
// a UUIDv7's time and the record's time are taken moments apart.
const findSlack = time.Minute

// Reader reads a trail: its streams, manifests and records. It checks what
// it reads only as far as reading needs (manifests parse, signatures when
// Trust is set, segment hashes); Verify checks a trail in full.
type Reader struct {
	Store  Store
	Prefix string // the trail's key prefix; empty for none
	// Trust, if not nil, is checked against every manifest and checkpoint
	// read; if nil, signatures are not checked.
	Trust *Trust
}

// Filter selects records. Zero fields select everything.
type Filter struct {
	Stream  string // only this stream
	KeyID   string // caller.key_id
	Subject string // caller.subject
	Model   string // model.requested or model.served
	Route   string
	Kind    string
	// From and To bound the record's time, both inclusive.
	From, To time.Time
	ID       string
}

// overlaps reports whether a segment with records timed in
// [first, last] may hold records the filter's time bounds select.
func (f *Filter) overlaps(first, last time.Time) bool {
	return (f.To.IsZero() || !first.After(f.To)) && (f.From.IsZero() || !last.Before(f.From))
}

// match reads only the keys the filter needs from a record line.
func (f *Filter) match(line []byte) bool {
	if f.ID != "" && !bytes.Contains(line, []byte(f.ID)) {
		return false
	}
	r := gjson.GetManyBytes(line, "id", "kind", "route", "caller.key_id", "caller.subject",
		"model.requested", "model.served", "time")
	switch {
	case f.ID != "" && r[0].String() != f.ID,
		f.Kind != "" && r[1].String() != f.Kind,
		f.Route != "" && r[2].String() != f.Route,
		f.KeyID != "" && r[3].String() != f.KeyID,
		f.Subject != "" && r[4].String() != f.Subject,
		f.Model != "" && r[5].String() != f.Model && r[6].String() != f.Model:
		return false
	}
	if f.From.IsZero() && f.To.IsZero() {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, r[7].String())
	if err != nil {
		return false
	}
	return (f.From.IsZero() || !t.Before(f.From)) && (f.To.IsZero() || !t.After(f.To))
}

// streamPrefix is the list prefix of the trail, or of one stream in it.
func (r *Reader) streamPrefix(stream string) string {
	p := strings.Trim(r.Prefix, "/")
	if p != "" {
		p += "/"
	}
	if stream != "" {
		p += stream + "/"
	}
	return p
}

func (r *Reader) check() error {
	if r == nil || r.Store == nil {
		return errors.New("read trail: no store")
	}
	return ValidatePrefix(r.Prefix)
}

// Streams returns the names of the streams in the trail, sorted. Objects
// that are not trail objects under the reader's prefix are ignored.
func (r *Reader) Streams(ctx context.Context) ([]string, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	keys, err := r.Store.List(ctx, r.streamPrefix(""))
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	prefix := strings.Trim(r.Prefix, "/")
	var streams []string
	for _, key := range keys {
		k, err := ParseKey(key)
		if err != nil || k.Prefix != prefix {
			continue
		}
		// Keys are sorted, so one stream's keys are together.
		if n := len(streams); n == 0 || streams[n-1] != k.Stream {
			streams = append(streams, k.Stream)
		}
	}
	return streams, nil
}

// Manifests returns the manifests of stream in index order, each opened
// with Trust when it is set. A manifest that does not open, or belongs to
// another stream or key, is an error naming its key.
func (r *Reader) Manifests(ctx context.Context, stream string) ([]Manifest, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	if err := ValidateStream(stream); err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	dir := r.streamPrefix(stream) + layoutManifestDir + "/"
	keys, err := r.Store.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list manifests of stream %s: %w", stream, err)
	}
	var ms []Manifest
	for _, key := range keys {
		k, err := ParseKey(key)
		if err != nil || k.Kind != KindManifest || k.Stream != stream {
			continue
		}
		m, err := r.manifest(ctx, key)
		if err != nil {
			return nil, err
		}
		if m.Stream != stream || m.End != k.End {
			return nil, fmt.Errorf("read manifest %s: it describes stream %s records [%d, %d), not its key's", key, m.Stream, m.Start, m.End)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func (r *Reader) manifest(ctx context.Context, key string) (Manifest, error) {
	data, err := r.Store.Get(ctx, key)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	var body []byte
	if r.Trust != nil {
		body, _, err = OpenJSON(data, r.Trust, ManifestSealedAt)
	} else {
		body, err = noteText(data)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", key, err)
	}
	m, err := ParseManifest(body)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", key, err)
	}
	return m, nil
}

// Scan calls fn with every sealed record that f selects, stream by stream
// (sorted) and in index order within a stream. Segments whose records all
// lie outside f's time bounds are not read. line is valid only during the
// call. An error from fn stops the scan and is returned as it is.
func (r *Reader) Scan(ctx context.Context, f Filter, fn func(stream string, index uint64, line []byte) error) error {
	return r.scan(ctx, f, func(m *Manifest) bool { return f.overlaps(m.FirstTime, m.LastTime) },
		func(m *Manifest, index uint64, line []byte) error { return fn(m.Stream, index, line) })
}

// scan walks the segments that pick selects and calls fn with their
// records that f selects.
func (r *Reader) scan(ctx context.Context, f Filter, pick func(*Manifest) bool, fn func(m *Manifest, index uint64, line []byte) error) error {
	streams := []string{f.Stream}
	if f.Stream == "" {
		var err error
		if streams, err = r.Streams(ctx); err != nil {
			return err
		}
	}
	for _, stream := range streams {
		ms, err := r.Manifests(ctx, stream)
		if err != nil {
			return err
		}
		for i := range ms {
			m := &ms[i]
			if !pick(m) {
				continue
			}
			err := r.segmentLines(ctx, m, func(index uint64, line []byte) error {
				if !f.match(line) {
					return nil
				}
				return fn(m, index, line)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// segmentReadError marks errors of reading a segment, as opposed to errors
// the caller's function returned.
type segmentReadError struct{ err error }

func (e *segmentReadError) Error() string { return e.err.Error() }
func (e *segmentReadError) Unwrap() error { return e.err }

// segmentLines reads the segment m names, checks it against m's hash and
// bounds, and calls fn with each line and its index.
func (r *Reader) segmentLines(ctx context.Context, m *Manifest, fn func(index uint64, line []byte) error) error {
	data, err := r.Store.Get(ctx, m.Segment)
	if err != nil {
		return fmt.Errorf("read segment: %w", err)
	}
	if sum := sha256.Sum256(data); sum != m.SegmentSHA256 {
		return fmt.Errorf("read segment %s: SHA-256 %s is not %s that its manifest states: the segment was altered", m.Segment, hex.EncodeToString(sum[:8]), hex.EncodeToString(m.SegmentSHA256[:8]))
	}
	var n uint64
	err = ForEachLine(bytes.NewReader(data), func(i int, line []byte) error {
		n = uint64(i) + 1
		if m.Start+uint64(i) >= m.End {
			return &segmentReadError{fmt.Errorf("more records than its manifest's [%d, %d)", m.Start, m.End)}
		}
		return fn(m.Start+uint64(i), line)
	})
	var se *segmentReadError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("read segment %s: %w", m.Segment, se.err)
	case errors.Is(err, ErrBadSegment):
		return fmt.Errorf("read segment %s: %w", m.Segment, err)
	case err != nil:
		return err
	case n != m.End-m.Start:
		return fmt.Errorf("read segment %s: %d records, its manifest states [%d, %d)", m.Segment, n, m.Start, m.End)
	}
	return nil
}

// errFound stops a scan once Find has its record.
var errFound = errors.New("found")

// Find returns the sealed record with the given id: its stream, index,
// line and the manifest of its segment. An id that is a UUIDv7 is looked
// for first in the segments whose times are near the id's; if it is not
// there (or the id has no time) every segment is searched. A missing
// record gives an error matching ErrRecordNotFound.
func (r *Reader) Find(ctx context.Context, id string) (stream string, index uint64, line []byte, m Manifest, err error) {
	if id == "" {
		return "", 0, nil, Manifest{}, errors.New("find record: empty id")
	}
	f := Filter{ID: id}
	found := func(fm *Manifest, i uint64, l []byte) error {
		stream, index, line, m = fm.Stream, i, bytes.Clone(l), *fm
		return errFound
	}
	all := func(*Manifest) bool { return true }
	if t, ok := uuidV7Time(id); ok {
		near := func(m *Manifest) bool {
			return !t.Before(m.FirstTime.Add(-findSlack)) && !t.After(m.LastTime.Add(findSlack))
		}
		err = r.scan(ctx, f, near, found)
		if errors.Is(err, errFound) {
			return stream, index, line, m, nil
		} else if err != nil {
			return "", 0, nil, Manifest{}, fmt.Errorf("find record %s: %w", id, err)
		}
		all = func(m *Manifest) bool { return !near(m) }
	}
	err = r.scan(ctx, f, all, found)
	if errors.Is(err, errFound) {
		return stream, index, line, m, nil
	} else if err != nil {
		return "", 0, nil, Manifest{}, fmt.Errorf("find record %s: %w", id, err)
	}
	return "", 0, nil, Manifest{}, fmt.Errorf("find record %s: %w", id, ErrRecordNotFound)
}

// uuidV7Time returns the time in a UUIDv7's first 48 bits (Unix
// milliseconds), if id is a UUID of version 7 in its usual spelling.
func uuidV7Time(id string) (time.Time, bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' || id[14] != '7' {
		return time.Time{}, false
	}
	b, err := hex.DecodeString(id[:8] + id[9:13])
	if err != nil {
		return time.Time{}, false
	}
	var ms int64
	for _, c := range b {
		ms = ms<<8 | int64(c)
	}
	return time.UnixMilli(ms).UTC(), true
}
