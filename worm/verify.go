package worm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// VerifyOptions say what Verify checks and against what.
type VerifyOptions struct {
	// Trust pins the keys that may sign checkpoints and manifests.
	Trust *Trust
	// Prefix is the trail's key prefix; empty for none.
	Prefix string
	// Stream limits the check to one stream; if empty, every stream found
	// under Prefix is checked.
	Stream string
	// SinceCheckpoint is a signed checkpoint the auditor kept; if set, the
	// trail must contain it: reach its size with its root.
	SinceCheckpoint []byte
	// From and To, if set, limit re-hashing to segments whose record times
	// overlap [From, To]. Manifests, their links, roots and checkpoints are
	// checked whatever the window.
	From, To time.Time
	// Progress, if set, is called on Verify's goroutine as each stream's
	// walk begins and ends, and between segments at most every 100 ms; it
	// should return quickly. If nil, nothing is reported.
	Progress func(VerifyProgress)
}

// VerifyProgress is how far Verify has come in one stream.
type VerifyProgress struct {
	Stream string
	// Segments is the number of the stream's manifests walked so far, and
	// SegmentsTotal the number listed.
	Segments, SegmentsTotal uint64
	// Records is the number of records re-hashed so far, and Bytes their
	// text, newlines included, as decompressed.
	Records, Bytes uint64
	// Done is set in the stream's last call.
	Done bool
}

// A Finding is one thing wrong with a trail.
type Finding struct {
	Stream string
	Object string // the object's key, or "" if none applies
	Code   string // stable, as in the Finding* constants
	Msg    string // what is wrong and where
}

func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Code)
	if f.Object != "" {
		b.WriteString(" " + f.Object)
	} else if f.Stream != "" {
		b.WriteString(" stream " + f.Stream)
	}
	b.WriteString(": " + f.Msg)
	return b.String()
}

// StreamReport is what Verify found in one stream.
type StreamReport struct {
	Stream string
	// Segments is the number of manifests walked; Records the number of
	// records re-hashed (all of them unless From or To is set).
	Segments, Records uint64
	// First and Last are the earliest and latest record times the
	// manifests state.
	First, Last time.Time
	// Size is the number of records the chain of manifests reaches, and
	// Root the Merkle root at Size.
	Size     uint64
	Root     [32]byte
	Findings []Finding
	// Lock sums up the Object Lock evidence, for a LockedStore; for any
	// other store, Lock.Unavailable says there is none.
	Lock LockReport
	// Notices are what the records themselves say an auditor should know
	// (gap records, silences longer than the heartbeat allows); they do
	// not make the trail invalid. Codes are the Notice* constants.
	Notices []Finding
}

// Report is the result of Verify.
type Report struct {
	Streams []StreamReport
	// Findings holds what is wrong outside any one stream, such as objects
	// that are not trail objects.
	Findings []Finding
}

// OK reports whether the trail verified without findings.
func (r *Report) OK() bool {
	if len(r.Findings) > 0 {
		return false
	}
	for i := range r.Streams {
		if len(r.Streams[i].Findings) > 0 {
			return false
		}
	}
	return true
}

// Finding codes. They are stable: tools and auditors match on them.
const (
	FindingUnexpectedObject        = "unexpected_object"
	FindingStreamNotFound          = "stream_not_found"
	FindingManifestMalformed       = "manifest_malformed"
	FindingManifestBadSignature    = "manifest_bad_signature"
	FindingManifestUnknownKey      = "manifest_unknown_key"
	FindingManifestKeyOutside      = "manifest_key_outside_window"
	FindingManifestMisplaced       = "manifest_misplaced"
	FindingManifestKeyID           = "manifest_key_id_mismatch"
	FindingManifestMissing         = "manifest_missing"
	FindingManifestOverlap         = "manifest_overlap"
	FindingManifestChainBroken     = "manifest_chain_broken"
	FindingManifestRootMismatch    = "manifest_root_mismatch"
	FindingSegmentMissing          = "segment_missing"
	FindingSegmentUnreferenced     = "segment_unreferenced"
	FindingSegmentHashMismatch     = "segment_hash_mismatch"
	FindingSegmentMalformed        = "segment_malformed"
	FindingSegmentRecordCount      = "segment_record_count"
	FindingSegmentRangeMismatch    = "segment_range_mismatch"
	FindingChainMismatch           = "chain_mismatch"
	FindingRecordWrongStream       = "record_wrong_stream"
	FindingRecordTimeOutside       = "record_time_outside"
	FindingRecordMalformed         = "record_malformed"
	FindingCheckpointMalformed     = "checkpoint_malformed"
	FindingCheckpointBadSignature  = "checkpoint_bad_signature"
	FindingCheckpointUnknownKey    = "checkpoint_unknown_key"
	FindingCheckpointKeyOutside    = "checkpoint_key_outside_window"
	FindingCheckpointWrongOrigin   = "checkpoint_wrong_origin"
	FindingCheckpointMisplaced     = "checkpoint_misplaced"
	FindingCheckpointForked        = "checkpoint_forked"
	FindingCheckpointUnprovable    = "checkpoint_unprovable"
	FindingCheckpointStale         = "checkpoint_stale"
	FindingSinceCheckpointInvalid  = "since_checkpoint_invalid"
	FindingSinceCheckpointTruncate = "since_checkpoint_truncated"
	FindingSinceCheckpointForked   = "since_checkpoint_forked"
)

// Verify checks the trail in st offline: signatures against the trust
// file, the chain of manifests, every segment's hash, records, hash chain
// and range, the Merkle root at every manifest and checkpoint, and that
// checkpoints never disagree. It returns an error only when the options are
// unusable or the store cannot be read; everything wrong with the trail is
// a Finding in the report.
func Verify(ctx context.Context, st Store, o VerifyOptions) (*Report, error) {
	if st == nil || o.Trust == nil {
		return nil, errors.New("verify: no store or no trust file")
	}
	if err := ValidatePrefix(o.Prefix); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if o.Stream != "" {
		if err := ValidateStream(o.Stream); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	prefix := strings.Trim(o.Prefix, "/")
	list := ""
	if prefix != "" {
		list = prefix + "/"
	}
	if o.Stream != "" {
		list += o.Stream + "/"
	}
	keys, err := st.List(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := &Report{}
	streams := make(map[string]*verifyObjects)
	for _, key := range keys {
		k, err := ParseKey(key)
		if err == nil && k.Prefix != prefix {
			err = fmt.Errorf("key prefix %q is not the trail's prefix %q", k.Prefix, prefix)
		}
		if err != nil {
			rep.Findings = append(rep.Findings, Finding{Object: key, Code: FindingUnexpectedObject,
				Msg: fmt.Sprintf("object %s is not a trail object: %v", key, err)})
			continue
		}
		objs := streams[k.Stream]
		if objs == nil {
			objs = newVerifyObjects()
			streams[k.Stream] = objs
		}
		objs.add(k, key)
	}

	var since *verifySince
	if len(o.SinceCheckpoint) > 0 {
		since = openSince(o, rep)
		if since != nil && streams[since.cp.Stream] == nil {
			streams[since.cp.Stream] = newVerifyObjects()
		}
	}
	if o.Stream != "" && streams[o.Stream] == nil {
		streams[o.Stream] = newVerifyObjects()
	}

	names := make([]string, 0, len(streams))
	for name := range streams {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := &streamVerifier{ctx: ctx, store: st, o: o, prefix: prefix, objs: streams[name],
			rep: StreamReport{Stream: name}, sil: silence{stream: name}}
		if since != nil && since.cp.Stream == name {
			v.since = since
		}
		if err := v.run(); err != nil {
			return nil, err
		}
		if ls, ok := st.(LockedStore); ok {
			if err := v.checkLocks(ctx, ls); err != nil {
				return nil, err
			}
		} else {
			v.rep.Lock.Unavailable = "the store keeps no Object Lock evidence; retention was not checked"
		}
		v.rep.Notices = v.sil.notices
		rep.Streams = append(rep.Streams, v.rep)
	}
	return rep, nil
}

// verifySince is the auditor's pinned checkpoint.
type verifySince struct {
	cp Checkpoint
}

// openSince opens the pinned checkpoint, whose origin names its stream.
func openSince(o VerifyOptions, rep *Report) *verifySince {
	bad := func(msg string) *verifySince {
		rep.Findings = append(rep.Findings, Finding{Stream: o.Stream, Code: FindingSinceCheckpointInvalid, Msg: msg})
		return nil
	}
	_, err := note.Open(o.SinceCheckpoint, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return bad("the pinned checkpoint is not a signed note")
	}
	origin, _, err := parseCheckpointText([]byte(unverified.Note.Text))
	if err != nil {
		return bad(fmt.Sprintf("the pinned checkpoint does not parse: %v", err))
	}
	stream, ok := strings.CutPrefix(origin, OriginPrefix)
	if !ok || ValidateStream(stream) != nil {
		return bad(fmt.Sprintf("the pinned checkpoint's origin %q is not auditgate/<stream>", origin))
	}
	if o.Stream != "" && stream != o.Stream {
		return bad(fmt.Sprintf("the pinned checkpoint is of stream %s, not of stream %s being verified", stream, o.Stream))
	}
	cp, err := OpenCheckpoint(o.SinceCheckpoint, o.Trust, stream)
	if err != nil {
		return bad(fmt.Sprintf("the pinned checkpoint does not verify: %v", err))
	}
	return &verifySince{cp: cp}
}

// verifyObjects are one stream's objects as listed.
type verifyObjects struct {
	manifests   []Key
	checkpoints []Key
	segments    map[string]Key
}

func newVerifyObjects() *verifyObjects {
	return &verifyObjects{segments: make(map[string]Key)}
}

func (v *verifyObjects) add(k Key, key string) {
	switch k.Kind {
	case KindManifest:
		v.manifests = append(v.manifests, k)
	case KindCheckpoint:
		v.checkpoints = append(v.checkpoints, k)
	case KindSegment:
		v.segments[key] = k
	}
}

// signedCode maps an error from OpenJSON or OpenCheckpoint to a finding
// code for an object of kind ("manifest" or "checkpoint").
func signedCode(kind string, err error) string {
	switch {
	case errors.Is(err, ErrUnknownKey):
		return kind + "_unknown_key"
	case errors.Is(err, ErrKeyOutsideWindow):
		return kind + "_key_outside_window"
	case errors.Is(err, ErrBadSignature):
		return kind + "_bad_signature"
	case errors.Is(err, ErrWrongOrigin):
		return kind + "_wrong_origin"
	}
	return kind + "_malformed"
}

// verifyHashHex abbreviates a hash for messages.
func verifyHashHex(h [32]byte) string { return fmt.Sprintf("%x", h[:8]) }

// verifySHA256 is sha256.Sum256, named for the reader of the walk.
func verifySHA256(b []byte) [32]byte { return sha256.Sum256(b) }
