package worm

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Errors from the tree and from segment ranges. The wrapping error names the
// segment or size at fault.
var (
	// ErrSegmentGap: segment ranges do not follow one another from index 0
	// (a gap, an overlap, a range ending before it starts), or they stop
	// before the tree size asked for.
	ErrSegmentGap = errors.New("segment ranges not contiguous")
	// ErrSegmentRange: a segment's compact-range hashes do not fit its
	// bounds, or the segment's leaves do not give those hashes.
	ErrSegmentRange = errors.New("segment range hashes do not fit the segment")
	// ErrTreeState: a stored tree state (size, range hashes, root) is not
	// self-consistent.
	ErrTreeState = errors.New("inconsistent tree state")
)

// LeafHash is RFC 6962's leaf hash of one record line (without its newline):
// SHA-256(0x00 || line).
func LeafHash(line []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	h.Write(line)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ChainNext extends the hash chain: SHA-256(prev || leaf). The chain before
// the first record is 32 zero bytes.
func ChainNext(prev, leaf [32]byte) [32]byte {
	var buf [64]byte
	copy(buf[:32], prev[:])
	copy(buf[32:], leaf[:])
	return sha256.Sum256(buf[:])
}

// treeHashChildren is RFC 6962's interior node hash, SHA-256(0x01 || l || r),
// on arrays so that appending to a tree does not allocate.
func treeHashChildren(l, r [32]byte) [32]byte {
	var buf [65]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:33], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

// treeEmptyRoot is the RFC 6962 root of the empty tree, SHA-256("").
var treeEmptyRoot = sha256.Sum256(nil)

// Tree is the append-only state of one stream: its size, the hash chain head
// and the Merkle compact range [0, size). The zero value is not ready for
// use; call NewTree or ResumeTree. Not safe for concurrent use (the
// sequencer owns it; hand others a Clone).
type Tree struct {
	size  uint64
	chain [32]byte
	// hashes is the compact range of [0, size): the roots of the perfect
	// subtrees that size decomposes into, largest (leftmost) first, one per
	// set bit of size. It is the order compact.Range uses, so stored states
	// can be handed to merkle's compact package as they are.
	hashes [][32]byte
}

// NewTree returns the tree of an empty stream.
func NewTree() *Tree { return &Tree{} }

// ResumeTree restores a tree from a checkpointed state: its size, chain head,
// and the compact-range hashes of [0, size) as RangeHashes returned them. It
// checks that the hashes give root and returns an error wrapping
// ErrTreeState otherwise. The chain head cannot be checked here; the caller
// checks it against the last record.
func ResumeTree(size uint64, chain [32]byte, rangeHashes [][32]byte, root [32]byte) (*Tree, error) {
	if got, want := len(rangeHashes), bits.OnesCount64(size); got != want {
		return nil, fmt.Errorf("resume tree at size %d: %d range hashes, want %d: %w", size, got, want, ErrTreeState)
	}
	t := &Tree{size: size, chain: chain, hashes: append([][32]byte(nil), rangeHashes...)}
	if t.Root() != root {
		return nil, fmt.Errorf("resume tree at size %d: range hashes do not give the stored root: %w", size, ErrTreeState)
	}
	return t, nil
}

// Append adds the leaf hash of the next record, extends the chain, and
// returns the record's index. It does not allocate once the range has grown
// to its largest width so far.
func (t *Tree) Append(leaf [32]byte) (index uint64) {
	index = t.size
	t.chain = ChainNext(t.chain, leaf)
	// Each trailing one bit of the old size is a perfect subtree that the new
	// leaf completes into one twice as large.
	seed := leaf
	for s := index; s&1 == 1; s >>= 1 {
		last := len(t.hashes) - 1
		seed = treeHashChildren(t.hashes[last], seed)
		t.hashes = t.hashes[:last]
	}
	t.hashes = append(t.hashes, seed)
	t.size++
	return index
}

// Size is the number of records appended.
func (t *Tree) Size() uint64 { return t.size }

// Chain is the hash chain head after the last record (32 zero bytes for an
// empty tree).
func (t *Tree) Chain() [32]byte { return t.chain }

// Root is the RFC 6962 root of the leaves [0, size); for size 0 it is the
// hash of the empty string.
func (t *Tree) Root() [32]byte { return treeFold(t.hashes) }

// RangeHashes returns a copy of the compact range of [0, size), largest
// subtree first, for persisting with a checkpoint (see ResumeTree).
func (t *Tree) RangeHashes() [][32]byte {
	return append(make([][32]byte, 0, len(t.hashes)), t.hashes...)
}

// Clone returns an independent copy of the tree.
func (t *Tree) Clone() *Tree {
	c := *t
	c.hashes = t.RangeHashes()
	return &c
}

// treeFold hashes a compact range that starts at index 0 into its root,
// right to left, as RFC 6962 splits an unbalanced tree.
func treeFold(hashes [][32]byte) [32]byte {
	n := len(hashes)
	if n == 0 {
		return treeEmptyRoot
	}
	h := hashes[n-1]
	for i := n - 2; i >= 0; i-- {
		h = treeHashChildren(hashes[i], h)
	}
	return h
}

// treeRootOf is the RFC 6962 root of a list of leaf hashes.
func treeRootOf(leaves [][32]byte) [32]byte {
	t := Tree{hashes: make([][32]byte, 0, bits.Len64(uint64(len(leaves))))}
	for _, l := range leaves {
		t.Append(l)
	}
	return t.Root()
}

// SegmentHashes is a segment's part of the tree: the leaves [Start, End) and
// their compact-range hashes (see SegmentRange), as a manifest stores them.
type SegmentHashes struct {
	Start, End uint64
	Hashes     [][32]byte
}

// treeFactory builds merkle compact ranges with RFC 6962 hashing.
var treeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// SegmentRange returns the compact-range hashes of the leaves
// [start, start+len(leaves)): the roots of the largest perfect subtrees
// lying wholly inside the segment, left to right. A manifest stores them so
// that roots and proofs can be built without reading every segment.
func SegmentRange(start uint64, leaves [][32]byte) [][32]byte {
	r := treeFactory.NewEmptyRange(start)
	for i := range leaves {
		// Append only fails on ranges from another factory.
		_ = r.Append(leaves[i][:], nil)
	}
	return treeArrays(r.Hashes())
}

// RootFromSegments merges consecutive segments' ranges into the root of
// [0, End of the last segment); no segments give the empty tree's root. It
// returns an error wrapping ErrSegmentGap if the segments do not follow one
// another from 0, or ErrSegmentRange if a segment has the wrong number of
// hashes for its bounds. The verifier uses it to check each manifest's root.
func RootFromSegments(segs []SegmentHashes) ([32]byte, error) {
	if len(segs) == 0 {
		return treeEmptyRoot, nil
	}
	n, err := treeCheckSegments(segs, segs[len(segs)-1].End)
	if err != nil {
		return [32]byte{}, err
	}
	acc := treeFactory.NewEmptyRange(0)
	for _, s := range segs[:n] {
		r, err := treeFactory.NewRange(s.Start, s.End, treeSlices(s.Hashes))
		if err != nil {
			return [32]byte{}, fmt.Errorf("merge segment [%d, %d): %v: %w", s.Start, s.End, err, ErrSegmentRange)
		}
		if err := acc.AppendRange(r, nil); err != nil {
			return [32]byte{}, fmt.Errorf("merge segment [%d, %d): %v: %w", s.Start, s.End, err, ErrSegmentRange)
		}
	}
	return treeFold(treeArrays(acc.Hashes())), nil
}

// treeCheckSegments checks that segs follow one another from index 0, that
// each has as many hashes as its bounds call for, and that they reach size.
// It returns how many segments are needed to cover [0, size); later ones are
// checked but not needed.
func treeCheckSegments(segs []SegmentHashes, size uint64) (int, error) {
	var next uint64
	n := 0
	for _, s := range segs {
		if s.Start != next || s.End < s.Start {
			return 0, fmt.Errorf("check segment [%d, %d): want start %d: %w", s.Start, s.End, next, ErrSegmentGap)
		}
		if got, want := len(s.Hashes), compact.RangeSize(s.Start, s.End); got != want {
			return 0, fmt.Errorf("check segment [%d, %d): %d range hashes, want %d: %w", s.Start, s.End, got, want, ErrSegmentRange)
		}
		if s.Start < size {
			n++
		}
		next = s.End
	}
	if next < size {
		return 0, fmt.Errorf("check segments: they end at %d, before tree size %d: %w", next, size, ErrSegmentGap)
	}
	return n, nil
}

// treeArrays copies merkle's hash slices into arrays.
func treeArrays(hs [][]byte) [][32]byte {
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		copy(out[i][:], h)
	}
	return out
}

// treeSlices returns slices over copies of hs, for merkle's APIs, which may
// keep and reorder the outer slice.
func treeSlices(hs [][32]byte) [][]byte {
	cp := append([][32]byte(nil), hs...)
	out := make([][]byte, len(cp))
	for i := range cp {
		out[i] = cp[i][:]
	}
	return out
}
