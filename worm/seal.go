package worm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// SealState is what a stream's writer must persist between seals: the tree
// after the last sealed record and the last manifest object's SHA-256.
// The zero value, with Stream set, is the state of a new stream.
type SealState struct {
	Stream string
	// Tree is the stream's tree after the last sealed record; nil means
	// empty. Seal never modifies it.
	Tree *Tree
	// PrevManifest is the SHA-256 of the last manifest object written, all
	// zero before the first.
	PrevManifest [32]byte
	// LastSigned is the size of the last checkpoint signed.
	LastSigned uint64
}

// Sealer writes sealed segments with their checkpoints and manifests. It
// holds no state of its own, so one Sealer may seal many streams; calls
// for one stream must be serialized by the caller, each with the state the
// previous one returned.
type Sealer struct {
	Store  Store
	Signer note.Signer
	Prefix string // key prefix; empty for none
	// Now gives the sealing time; if nil, time.Now.
	Now func() time.Time
}

// Seal writes records [st.Tree.Size(), +len(lines)) as one segment, then
// its checkpoint, then its manifest, in that order so that a manifest never
// names a missing object, all through Store.Put, and returns the new state.
// lines are the record JSON lines without newlines; firstTime and lastTime
// are the earliest and latest of the records' times, which the verifier
// requires every record's time to lie between.
//
// A Seal that failed part way may be retried with the same arguments: the
// segment's bytes are deterministic, and a checkpoint or manifest already
// stored for the same records is adopted rather than signed again with a
// new time.
//
// Seal signs only a checkpoint of st's tree extended by lines, so a writer
// that keeps its state never signs two inconsistent checkpoints; a segment
// already stored with other records makes Put fail with ErrConflict before
// anything is signed.
func (s *Sealer) Seal(ctx context.Context, st SealState, lines [][]byte, firstTime, lastTime time.Time) (SealState, error) {
	return s.SealHashed(ctx, st, lines, nil, firstTime, lastTime)
}

// SealHashed is Seal for a caller that has the lines' leaf hashes already;
// leaves[i] must be LeafHash(lines[i]). With nil leaves it computes them.
func (s *Sealer) SealHashed(ctx context.Context, st SealState, lines [][]byte, leaves [][32]byte, firstTime, lastTime time.Time) (SealState, error) {
	if len(lines) == 0 {
		return st, fmt.Errorf("seal stream %s: no records", st.Stream)
	}
	if leaves == nil {
		leaves = make([][32]byte, len(lines))
		for i, line := range lines {
			leaves[i] = LeafHash(line)
		}
	} else if len(leaves) != len(lines) {
		return st, fmt.Errorf("seal stream %s: %d leaf hashes for %d records", st.Stream, len(leaves), len(lines))
	}
	seg, err := EncodeSegment(nil, lines)
	if err != nil {
		return st, fmt.Errorf("seal stream %s: %w", st.Stream, err)
	}
	return s.sealSegment(ctx, st, leaves, seg, firstTime, lastTime)
}

// sealSegment is seal for a segment object already encoded: seg holds the
// records whose leaf hashes are leaves.
func (s *Sealer) sealSegment(ctx context.Context, st SealState, leaves [][32]byte, seg []byte, firstTime, lastTime time.Time) (SealState, error) {
	if s.Store == nil || s.Signer == nil {
		return st, errors.New("seal: sealer has no store or no signer")
	}
	if err := ValidateStream(st.Stream); err != nil {
		return st, fmt.Errorf("seal: %w", err)
	}
	if err := ValidatePrefix(s.Prefix); err != nil {
		return st, fmt.Errorf("seal: %w", err)
	}
	tree := NewTree()
	if st.Tree != nil {
		tree = st.Tree.Clone()
	}
	start := tree.Size()
	var zero [32]byte
	switch {
	case start == 0 && st.PrevManifest != zero:
		return st, fmt.Errorf("seal stream %s: inconsistent state: an empty tree, but a previous manifest hash", st.Stream)
	case start != 0 && st.PrevManifest == zero:
		return st, fmt.Errorf("seal stream %s: inconsistent state: tree size %d, but no previous manifest hash", st.Stream, start)
	}
	if len(leaves) == 0 {
		return st, fmt.Errorf("seal stream %s at %d: no records", st.Stream, start)
	}
	for _, leaf := range leaves {
		tree.Append(leaf)
	}
	end := tree.Size()
	segKey := SegmentKey(s.Prefix, st.Stream, start, end)
	if err := s.Store.Put(ctx, segKey, seg); err != nil {
		return st, fmt.Errorf("seal: put segment %s: %w", segKey, err)
	}

	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	sealedAt := now().UTC()
	cpKey := CheckpointKey(s.Prefix, st.Stream, end)
	if t, ok, err := s.storedCheckpoint(ctx, cpKey, st.Stream, end, tree.Root()); err != nil {
		return st, err
	} else if ok {
		sealedAt = t
	} else {
		cp, err := SignCheckpoint(s.Signer, st.Stream, end, tree.Root(), sealedAt)
		if err != nil {
			return st, fmt.Errorf("seal: %w", err)
		}
		if err := s.Store.Put(ctx, cpKey, cp); err != nil {
			return st, fmt.Errorf("seal: put checkpoint %s: %w", cpKey, err)
		}
	}

	m := Manifest{
		V:             ManifestVersion,
		Stream:        st.Stream,
		Segment:       segKey,
		SegmentSHA256: sha256.Sum256(seg),
		Start:         start,
		End:           end,
		FirstTime:     firstTime.UTC(),
		LastTime:      lastTime.UTC(),
		SealedAt:      sealedAt,
		ChainHead:     tree.Chain(),
		Root:          tree.Root(),
		Range:         SegmentRange(start, leaves),
		Prev:          st.PrevManifest,
		KeyID:         KeyID(s.Signer.Name(), s.Signer.KeyHash()),
	}
	if err := m.Validate(); err != nil {
		return st, fmt.Errorf("seal stream %s records [%d, %d): %w", st.Stream, start, end, err)
	}
	mf, err := SignJSON(s.Signer, m.AppendJSON(nil))
	if err != nil {
		return st, fmt.Errorf("seal stream %s records [%d, %d): %w", st.Stream, start, end, err)
	}
	mKey := ManifestKey(s.Prefix, st.Stream, end)
	if err := s.Store.Put(ctx, mKey, mf); err != nil {
		return st, fmt.Errorf("seal: put manifest %s: %w", mKey, err)
	}
	return SealState{Stream: st.Stream, Tree: tree, PrevManifest: sha256.Sum256(mf), LastSigned: end}, nil
}

// storedCheckpoint looks for a checkpoint a failed earlier attempt left at
// key. It returns that checkpoint's sealing time if it commits to the same
// size and root under this sealer's key, and an error if it commits to
// anything else: signing again would make a second checkpoint at one size.
func (s *Sealer) storedCheckpoint(ctx context.Context, key, stream string, size uint64, root [32]byte) (time.Time, bool, error) {
	data, err := s.Store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("seal: read checkpoint %s: %w", key, err)
	}
	_, err = note.Open(data, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return time.Time{}, false, fmt.Errorf("seal: checkpoint %s exists and is not a signed note: %w", key, ErrConflict)
	}
	origin, cp, err := parseCheckpointText([]byte(unverified.Note.Text))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("seal: checkpoint %s exists: %w: %w", key, ErrConflict, err)
	}
	ours := false
	for _, sig := range unverified.Note.UnverifiedSigs {
		ours = ours || sig.Name == s.Signer.Name() && sig.Hash == s.Signer.KeyHash()
	}
	if origin != Origin(stream) || cp.Size != size || cp.Root != root || !ours {
		return time.Time{}, false, fmt.Errorf("seal: checkpoint %s exists for another tree or key: %w", key, ErrConflict)
	}
	return cp.Time, true, nil
}
