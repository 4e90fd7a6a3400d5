package worm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"

	tlogproof "github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/compact"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Errors from building, checking and parsing proofs.
var (
	// ErrNodeUnavailable: a node a proof needs lies inside a segment whose
	// leaves were not given, and is not one of its compact-range nodes.
	ErrNodeUnavailable = errors.New("proof node not available from segment ranges")
	// ErrBadProof: a proof does not verify against the root(s) given.
	ErrBadProof = errors.New("proof does not verify")
	// ErrMalformedProof: proof text that does not parse, or is not in the
	// canonical form EncodeRecordProof and MarshalProof write.
	ErrMalformedProof = errors.New("malformed proof")
)

// InclusionProof proves that the leaf at index is in the tree of size. segs
// are every segment's range hashes from index 0 on (from the manifests); they
// must reach size, and segments starting at or after size are not used. seg
// names, by its bounds, the one segment holding index, and leaves are that
// segment's leaf hashes (leaves[k] is leaf seg.Start+k); they are checked
// against the segment's range hashes in segs.
//
// When size is a segment end, as at every checkpoint, no other leaves are
// needed: a node of the proof inside another segment is one of that
// segment's compact-range nodes, and a node across segment boundaries is
// built from its children. When size lies inside another segment, a node
// there may need that segment's leaves, and the proof fails with
// ErrNodeUnavailable.
func InclusionProof(index, size uint64, segs []SegmentHashes, seg SegmentHashes, leaves [][32]byte) ([][32]byte, error) {
	nodes, err := merkleproof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("prove inclusion of %d in tree of size %d: %w", index, size, err)
	}
	if index < seg.Start || index >= seg.End {
		return nil, fmt.Errorf("prove inclusion of %d: segment [%d, %d) does not hold it", index, seg.Start, seg.End)
	}
	r, err := newProofResolver(segs, size, nil)
	if err != nil {
		return nil, err
	}
	i, ok := r.find(seg)
	if !ok {
		return nil, fmt.Errorf("prove inclusion of %d: segment [%d, %d) is not among the segments given: %w", index, seg.Start, seg.End, ErrSegmentGap)
	}
	if err := r.setLeaves(i, leaves); err != nil {
		return nil, err
	}
	return r.build(nodes)
}

// ConsistencyProof proves that the tree of size2 extends the tree of size1,
// from segs as for InclusionProof (they must reach size2). When both sizes
// are segment ends, the range hashes suffice. When a size lies inside a
// segment, a node the proof needs can lie inside that segment without being
// one of its compact-range nodes; leavesOf, if not nil, fetches such a
// segment's leaf hashes (checked against its range hashes; at most the two
// segments holding the sizes are fetched). Without leavesOf such a proof
// fails with ErrNodeUnavailable.
func ConsistencyProof(size1, size2 uint64, segs []SegmentHashes, leavesOf func(SegmentHashes) ([][32]byte, error)) ([][32]byte, error) {
	nodes, err := merkleproof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("prove consistency of sizes %d and %d: %w", size1, size2, err)
	}
	r, err := newProofResolver(segs, size2, leavesOf)
	if err != nil {
		return nil, err
	}
	return r.build(nodes)
}

// VerifyInclusion checks an inclusion proof of leaf at index in the tree of
// size with the given root, with RFC 6962 hashing. A proof that does not
// verify gives an error wrapping ErrBadProof.
func VerifyInclusion(index, size uint64, leaf [32]byte, proofHashes [][32]byte, root [32]byte) error {
	err := merkleproof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], treeSlices(proofHashes), root[:])
	if err != nil {
		return fmt.Errorf("verify inclusion of %d in tree of size %d: %w: %w", index, size, ErrBadProof, proofError(err))
	}
	return nil
}

// proofError restates merkle's root mismatch, which prints the roots as
// lists of decimal bytes, with the roots in hex.
func proofError(err error) error {
	var rm *merkleproof.RootMismatchError
	if errors.As(err, &rm) {
		return fmt.Errorf("the proof gives root %x, the checkpoint signs root %x", rm.CalculatedRoot, rm.ExpectedRoot)
	}
	return err
}

// VerifyConsistency checks a consistency proof between the tree of size1
// with root1 and the tree of size2 with root2. A proof that does not verify
// gives an error wrapping ErrBadProof.
func VerifyConsistency(size1, size2 uint64, root1, root2 [32]byte, proofHashes [][32]byte) error {
	err := merkleproof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, treeSlices(proofHashes), root1[:], root2[:])
	if err != nil {
		return fmt.Errorf("verify consistency of sizes %d and %d: %w: %w", size1, size2, ErrBadProof, proofError(err))
	}
	return nil
}

// proofResolver finds the hash of any tree node below size from the
// segments' compact ranges and, where given or fetchable, their leaves.
type proofResolver struct {
	segs     []SegmentHashes // checked, contiguous from 0, covering the size
	leaves   map[int][][32]byte
	leavesOf func(SegmentHashes) ([][32]byte, error)
}

func newProofResolver(segs []SegmentHashes, size uint64, leavesOf func(SegmentHashes) ([][32]byte, error)) (*proofResolver, error) {
	n, err := treeCheckSegments(segs, size)
	if err != nil {
		return nil, err
	}
	return &proofResolver{segs: segs[:n], leaves: map[int][][32]byte{}, leavesOf: leavesOf}, nil
}

// find returns the position of the segment with seg's bounds.
func (r *proofResolver) find(seg SegmentHashes) (int, bool) {
	i := r.locate(seg.Start)
	if i < len(r.segs) && r.segs[i].Start == seg.Start && r.segs[i].End == seg.End {
		return i, true
	}
	return 0, false
}

// locate returns the position of the segment holding leaf index, or
// len(r.segs) if none does.
func (r *proofResolver) locate(index uint64) int {
	return sort.Search(len(r.segs), func(i int) bool { return r.segs[i].End > index })
}

// setLeaves records segment i's leaves after checking them against its
// range hashes.
func (r *proofResolver) setLeaves(i int, leaves [][32]byte) error {
	s := r.segs[i]
	if uint64(len(leaves)) != s.End-s.Start {
		return fmt.Errorf("read segment [%d, %d): %d leaves, want %d: %w", s.Start, s.End, len(leaves), s.End-s.Start, ErrSegmentRange)
	}
	if !slices.Equal(SegmentRange(s.Start, leaves), s.Hashes) {
		return fmt.Errorf("read segment [%d, %d): leaves do not give its range hashes: %w", s.Start, s.End, ErrSegmentRange)
	}
	r.leaves[i] = leaves
	return nil
}

// build resolves every node of a proof and hashes its ephemeral node.
func (r *proofResolver) build(nodes merkleproof.Nodes) ([][32]byte, error) {
	hashes := make([][32]byte, len(nodes.IDs))
	for k, id := range nodes.IDs {
		h, err := r.hash(id)
		if err != nil {
			return nil, err
		}
		hashes[k] = h
	}
	out, err := nodes.Rehash(treeSlices(hashes), rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("rehash proof: %w", err)
	}
	return treeArrays(out), nil
}

// hash returns the hash of node id. A node inside one segment is one of its
// compact-range nodes or is built from its leaves; a node across segment
// boundaries is built from its two children.
func (r *proofResolver) hash(id compact.NodeID) ([32]byte, error) {
	begin, end := id.Coverage()
	i := r.locate(begin)
	if i == len(r.segs) {
		return [32]byte{}, fmt.Errorf("resolve node [%d, %d): beyond the segments: %w", begin, end, ErrSegmentGap)
	}
	s := r.segs[i]
	if end > s.End {
		left, err := r.hash(compact.NewNodeID(id.Level-1, id.Index*2))
		if err != nil {
			return [32]byte{}, err
		}
		right, err := r.hash(compact.NewNodeID(id.Level-1, id.Index*2+1))
		if err != nil {
			return [32]byte{}, err
		}
		return treeHashChildren(left, right), nil
	}
	for k, cid := range compact.RangeNodes(s.Start, s.End, nil) {
		if cid == id {
			return s.Hashes[k], nil
		}
	}
	leaves, ok := r.leaves[i]
	if !ok {
		if r.leavesOf == nil {
			return [32]byte{}, fmt.Errorf("resolve node [%d, %d) inside segment [%d, %d): %w", begin, end, s.Start, s.End, ErrNodeUnavailable)
		}
		fetched, err := r.leavesOf(s)
		if err != nil {
			return [32]byte{}, fmt.Errorf("read segment [%d, %d): %w", s.Start, s.End, err)
		}
		if err := r.setLeaves(i, fetched); err != nil {
			return [32]byte{}, err
		}
		leaves = fetched
	}
	return treeRootOf(leaves[begin-s.Start : end-s.Start]), nil
}

// proofMaxHashes bounds a parsed proof: an inclusion proof in a tree of up
// to 2^64 leaves has at most 64 hashes.
const proofMaxHashes = 64

// MarshalProof writes the c2sp.org/tlog-proof text of an inclusion proof of
// the leaf at index in the tree that checkpoint commits to: the format's
// header line, the index, the proof hashes in base64 one per line, a blank
// line, and the checkpoint (a signed note) to the end of the text:
//
//	c2sp.org/tlog-proof@v1
//	index 1234
//	<base64 of proof hash 1>
//	<base64 of proof hash 2>
//	...
//
//	auditgate/gw-eu1-7f3a
//	1300
//	<base64 of the Merkle root>
//	time 2026-11-27T18:00:00.123456789Z
//
//	— <key name> <base64 of key hash and signature>
//
// The format's optional "extra" line is not used. The checkpoint is carried
// as it is; it must end in a newline and have no carriage returns, so that
// ParseProof returns it byte for byte.
func MarshalProof(checkpoint []byte, index uint64, proofHashes [][32]byte) ([]byte, error) {
	if err := proofCheckCheckpoint(checkpoint); err != nil {
		return nil, fmt.Errorf("marshal proof: %w", err)
	}
	if len(proofHashes) > proofMaxHashes {
		return nil, fmt.Errorf("marshal proof: %d hashes, at most %d", len(proofHashes), proofMaxHashes)
	}
	p := tlogproof.TLogProof{Index: index, Hashes: proofHashes, Checkpoint: checkpoint}
	return p.Marshal(), nil
}

// proofCheckCheckpoint checks that a checkpoint survives the line-by-line
// reading of the tlog-proof format unchanged.
func proofCheckCheckpoint(checkpoint []byte) error {
	switch {
	case len(checkpoint) == 0:
		return errors.New("no checkpoint")
	case checkpoint[len(checkpoint)-1] != '\n':
		return errors.New("checkpoint does not end in a newline")
	case bytes.IndexByte(checkpoint, '\r') >= 0:
		return errors.New("checkpoint contains a carriage return")
	}
	return nil
}

// ParseProof reads c2sp.org/tlog-proof text as MarshalProof writes it. Text
// that does not parse, carries extra data, or is not in that canonical form
// (so that one proof has one encoding) gives an error wrapping
// ErrMalformedProof. The checkpoint is returned unopened: the caller opens
// it (OpenCheckpoint) and verifies the proof against its size and root.
func ParseProof(data []byte) (checkpoint []byte, index uint64, proofHashes [][32]byte, err error) {
	var p tlogproof.TLogProof
	if err := p.Unmarshal(data); err != nil {
		return nil, 0, nil, fmt.Errorf("parse proof: %w: %w", ErrMalformedProof, err)
	}
	switch {
	case p.ExtraData != nil:
		return nil, 0, nil, fmt.Errorf("parse proof: unexpected extra data: %w", ErrMalformedProof)
	case proofCheckCheckpoint(p.Checkpoint) != nil:
		return nil, 0, nil, fmt.Errorf("parse proof: %w: %w", proofCheckCheckpoint(p.Checkpoint), ErrMalformedProof)
	case len(p.Hashes) > proofMaxHashes:
		return nil, 0, nil, fmt.Errorf("parse proof: %d hashes, at most %d: %w", len(p.Hashes), proofMaxHashes, ErrMalformedProof)
	case !bytes.Equal(p.Marshal(), data):
		return nil, 0, nil, fmt.Errorf("parse proof: not in canonical form: %w", ErrMalformedProof)
	}
	return p.Checkpoint, p.Index, p.Hashes, nil
}

const (
	recordProofHeader = "auditgate-record-proof@v1\n"
	recordProofPrefix = "record "
)

// EncodeRecordProof writes a record proof: the proof of one record for
// someone who holds no other record (a customer, a regulator). It is
// line-oriented text: a header line, "record " followed by the record line
// exactly as stored in its segment (one JSON object, without its newline),
// a blank line, and then the c2sp.org/tlog-proof text of MarshalProof, which
// runs to the end:
//
//	auditgate-record-proof@v1
//	record {"v":1,"id":"0193a5e2-…","kind":"inference",…}
//
//	c2sp.org/tlog-proof@v1
//	index 1234
//	<base64 of proof hash 1>
//	...
//
//	<checkpoint signed note>
//
// The record comes first because a tlog-proof's checkpoint extends to the
// end of its text; everything from the tlog-proof header on is a standard
// tlog-proof that other tools can read. To check a record proof: open the
// checkpoint with the pinned keys (OpenCheckpoint), take LeafHash of the
// record line, and VerifyInclusion at the index against the checkpoint's
// size and root.
//
// line is the record at index, and proofHashes its inclusion proof in the
// tree checkpoint commits to. The line must not contain a newline or a
// carriage return.
func EncodeRecordProof(checkpoint []byte, index uint64, proofHashes [][32]byte, line []byte) ([]byte, error) {
	if bytes.ContainsAny(line, "\r\n") {
		return nil, fmt.Errorf("encode record proof: record line %d contains a line break", index)
	}
	p, err := MarshalProof(checkpoint, index, proofHashes)
	if err != nil {
		return nil, fmt.Errorf("encode record proof: %w", err)
	}
	out := make([]byte, 0, len(recordProofHeader)+len(recordProofPrefix)+len(line)+2+len(p))
	out = append(out, recordProofHeader...)
	out = append(out, recordProofPrefix...)
	out = append(out, line...)
	out = append(out, '\n', '\n')
	return append(out, p...), nil
}

// DecodeRecordProof reads a record proof as EncodeRecordProof writes it.
// Anything else gives an error wrapping ErrMalformedProof. Nothing is
// verified: see the format description for the checks that follow.
func DecodeRecordProof(data []byte) (checkpoint []byte, index uint64, proofHashes [][32]byte, line []byte, err error) {
	rest, ok := bytes.CutPrefix(data, []byte(recordProofHeader))
	if !ok {
		return nil, 0, nil, nil, fmt.Errorf("decode record proof: missing %q header: %w", recordProofHeader[:len(recordProofHeader)-1], ErrMalformedProof)
	}
	rest, ok = bytes.CutPrefix(rest, []byte(recordProofPrefix))
	if !ok {
		return nil, 0, nil, nil, fmt.Errorf("decode record proof: missing record line: %w", ErrMalformedProof)
	}
	line, rest, ok = bytes.Cut(rest, []byte("\n\n"))
	if !ok || bytes.IndexByte(line, '\n') >= 0 || bytes.IndexByte(line, '\r') >= 0 {
		return nil, 0, nil, nil, fmt.Errorf("decode record proof: record line not followed by a blank line: %w", ErrMalformedProof)
	}
	checkpoint, index, proofHashes, err = ParseProof(rest)
	if err != nil {
		return nil, 0, nil, nil, fmt.Errorf("decode record proof: %w", err)
	}
	return checkpoint, index, proofHashes, bytes.Clone(line), nil
}
