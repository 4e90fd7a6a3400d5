package worm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// Prove builds a record proof (see EncodeRecordProof) for the sealed
// record with the given id, against the latest checkpoint of its stream
// that is stored at a segment end covering the record: then the proof
// needs only the manifests' range hashes and the record's own segment.
// With r.Trust set, the manifests and the checkpoint must verify under it.
// The proof is checked before it is returned.
func Prove(ctx context.Context, r *Reader, id string) ([]byte, error) {
	stream, index, line, m, err := r.Find(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("prove record: %w", err)
	}
	ms, err := r.Manifests(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("prove record %s: %w", id, err)
	}
	cpData, cp, err := r.latestCheckpoint(ctx, stream, index, ms)
	if err != nil {
		return nil, fmt.Errorf("prove record %s: %w", id, err)
	}
	var segs []SegmentHashes
	for _, sm := range ms {
		if sm.Start < cp.Size {
			segs = append(segs, SegmentHashes{Start: sm.Start, End: sm.End, Hashes: sm.Range})
		}
	}
	leaves := make([][32]byte, 0, m.End-m.Start)
	err = r.segmentLines(ctx, &m, func(_ uint64, l []byte) error {
		leaves = append(leaves, LeafHash(l))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prove record %s: %w", id, err)
	}
	proof, err := InclusionProof(index, cp.Size, segs, SegmentHashes{Start: m.Start, End: m.End, Hashes: m.Range}, leaves)
	if err != nil {
		return nil, fmt.Errorf("prove record %s: %w", id, err)
	}
	if err := VerifyInclusion(index, cp.Size, LeafHash(line), proof, cp.Root); err != nil {
		return nil, fmt.Errorf("prove record %s: the manifests of stream %s do not lead to the root of checkpoint %d: %w", id, stream, cp.Size, err)
	}
	out, err := EncodeRecordProof(cpData, index, proof, line)
	if err != nil {
		return nil, fmt.Errorf("prove record %s: %w", id, err)
	}
	return out, nil
}

// latestCheckpoint returns the latest checkpoint of stream whose size is a
// manifest's end past index, opened with r.Trust when set.
func (r *Reader) latestCheckpoint(ctx context.Context, stream string, index uint64, ms []Manifest) ([]byte, Checkpoint, error) {
	ends := make(map[uint64]bool, len(ms))
	for _, m := range ms {
		ends[m.End] = true
	}
	dir := r.streamPrefix(stream) + layoutCheckpointDir + "/"
	keys, err := r.Store.List(ctx, dir)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("list checkpoints of stream %s: %w", stream, err)
	}
	for i := len(keys) - 1; i >= 0; i-- {
		k, err := ParseKey(keys[i])
		if err != nil || k.Kind != KindCheckpoint || k.Stream != stream || k.Size <= index || !ends[k.Size] {
			continue
		}
		data, err := r.Store.Get(ctx, keys[i])
		if err != nil {
			return nil, Checkpoint{}, fmt.Errorf("read checkpoint: %w", err)
		}
		cp, err := r.openCheckpoint(data, stream)
		if err != nil {
			return nil, Checkpoint{}, fmt.Errorf("read checkpoint %s: %w", keys[i], err)
		}
		if cp.Size != k.Size {
			return nil, Checkpoint{}, fmt.Errorf("read checkpoint %s: it states size %d", keys[i], cp.Size)
		}
		return data, cp, nil
	}
	return nil, Checkpoint{}, fmt.Errorf("stream %s has no checkpoint at a segment end covering record %d", stream, index)
}

// openCheckpoint opens a checkpoint with r.Trust, or without checking its
// signatures when r has no trust.
func (r *Reader) openCheckpoint(data []byte, stream string) (Checkpoint, error) {
	if r.Trust != nil {
		return OpenCheckpoint(data, r.Trust, stream)
	}
	text, err := noteText(data)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	origin, cp, err := parseCheckpointText(text)
	if err != nil {
		return Checkpoint{}, err
	}
	if want := Origin(stream); origin != want {
		return Checkpoint{}, fmt.Errorf("%w: origin %q, want %q", ErrWrongOrigin, origin, want)
	}
	cp.Stream = stream
	return cp, nil
}

// VerifyRecordProof checks a record proof: its checkpoint must be signed
// by a key trust holds valid at the checkpoint's time, the record line must
// be included at index in the tree the checkpoint commits to, and the
// record must belong to the checkpoint's stream. It returns the record line,
// the checkpoint and the index. Errors name what failed and match
// ErrMalformedProof, ErrMalformedCheckpoint, the signature errors of
// OpenCheckpoint, or ErrBadProof.
func VerifyRecordProof(data []byte, trust *Trust) (line []byte, cp Checkpoint, index uint64, err error) {
	if trust == nil {
		return nil, Checkpoint{}, 0, errors.New("verify record proof: no trust file")
	}
	cpData, index, proof, line, err := DecodeRecordProof(data)
	if err != nil {
		return nil, Checkpoint{}, 0, fmt.Errorf("verify record proof: %w", err)
	}
	text, err := noteText(cpData)
	if err != nil {
		return nil, Checkpoint{}, 0, fmt.Errorf("verify record proof: checkpoint: %w: %w", ErrMalformedCheckpoint, err)
	}
	origin, _, err := parseCheckpointText(text)
	if err != nil {
		return nil, Checkpoint{}, 0, fmt.Errorf("verify record proof: checkpoint: %w", err)
	}
	stream, ok := strings.CutPrefix(origin, OriginPrefix)
	if !ok {
		return nil, Checkpoint{}, 0, fmt.Errorf("verify record proof: %w: checkpoint origin %q is not an auditgate stream's (%s<stream>)", ErrWrongOrigin, origin, OriginPrefix)
	}
	cp, err = OpenCheckpoint(cpData, trust, stream)
	if err != nil {
		return nil, Checkpoint{}, 0, fmt.Errorf("verify record proof: checkpoint signature: %w", err)
	}
	id := gjson.GetBytes(line, "id").String()
	if index >= cp.Size {
		return nil, Checkpoint{}, 0, fmt.Errorf("verify record proof: %w: index %d is outside the checkpoint's tree of size %d", ErrBadProof, index, cp.Size)
	}
	if err := VerifyInclusion(index, cp.Size, LeafHash(line), proof, cp.Root); err != nil {
		return nil, Checkpoint{}, 0, fmt.Errorf("verify record proof: record %q at index %d is not in stream %s's tree of size %d (the record line, the index or the proof hashes were altered): %w", id, index, stream, cp.Size, err)
	}
	if !gjson.ValidBytes(line) {
		return nil, Checkpoint{}, 0, fmt.Errorf("verify record proof: %w: the record line is not JSON", ErrMalformedProof)
	}
	if got := gjson.GetBytes(line, "stream").String(); got != stream {
		return nil, Checkpoint{}, 0, fmt.Errorf("verify record proof: %w: record %q names stream %q, but the checkpoint is of stream %s", ErrBadProof, id, got, stream)
	}
	return line, cp, index, nil
}
