package worm

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The reference below follows RFC 6962 section 2.1 literally, from all the
// leaves, sharing no code with the package.

func refNode(l, r [32]byte) [32]byte {
	return sha256.Sum256(slices.Concat([]byte{1}, l[:], r[:]))
}

// refSplit is the largest power of two smaller than n (n > 1).
func refSplit(n int) int { return 1 << (bits.Len(uint(n-1)) - 1) }

// refRoot is MTH(D[n]).
func refRoot(d [][32]byte) [32]byte {
	switch len(d) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return d[0]
	}
	k := refSplit(len(d))
	return refNode(refRoot(d[:k]), refRoot(d[k:]))
}

// refPath is PATH(m, D[n]), the inclusion proof of leaf m.
func refPath(m int, d [][32]byte) [][32]byte {
	if len(d) <= 1 {
		return nil
	}
	k := refSplit(len(d))
	if m < k {
		return append(refPath(m, d[:k]), refRoot(d[k:]))
	}
	return append(refPath(m-k, d[k:]), refRoot(d[:k]))
}

// refConsistency is PROOF(m, D[n]).
func refConsistency(m int, d [][32]byte) [][32]byte {
	if m == 0 || m == len(d) {
		return nil
	}
	return refSubproof(m, d, true)
}

func refSubproof(m int, d [][32]byte, complete bool) [][32]byte {
	if m == len(d) {
		if complete {
			return nil
		}
		return [][32]byte{refRoot(d)}
	}
	k := refSplit(len(d))
	if m <= k {
		return append(refSubproof(m, d[:k], complete), refRoot(d[k:]))
	}
	return append(refSubproof(m-k, d[k:], false), refRoot(d[:k]))
}

// trLeaves returns the leaf hashes of n distinct record lines.
func trLeaves(n int) [][32]byte {
	out := make([][32]byte, n)
	for i := range out {
		out[i] = LeafHash(fmt.Appendf(nil, `{"v":1,"n":%d}`, i))
	}
	return out
}

// trSegmentation cuts leaves into segments of random lengths 1..maxLen.
func trSegmentation(seed uint64, leaves [][32]byte, maxLen int) []SegmentHashes {
	rng := rand.New(rand.NewPCG(seed, 0x5e6))
	var segs []SegmentHashes
	for start := 0; start < len(leaves); {
		end := min(start+1+rng.IntN(maxLen), len(leaves))
		segs = append(segs, SegmentHashes{
			Start:  uint64(start),
			End:    uint64(end),
			Hashes: SegmentRange(uint64(start), leaves[start:end]),
		})
		start = end
	}
	return segs
}

func mustHex32(t testing.TB, s string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hex %q", s)
	}
	return [32]byte(b)
}

func TestLeafHash(t *testing.T) {
	// RFC 6962 leaf hash of the empty leaf, as in merkle's test vectors.
	if got, want := LeafHash(nil), mustHex32(t, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"); got != want {
		t.Errorf("LeafHash(empty) = %x, want %x", got, want)
	}
	for _, line := range []string{"", "a", `{"v":1}`, string(make([]byte, 2048))} {
		if got, want := LeafHash([]byte(line)), sha256.Sum256(append([]byte{0}, line...)); got != want {
			t.Errorf("LeafHash(%.20q) = %x, want %x", line, got, want)
		}
		if got, want := LeafHash([]byte(line)), rfc6962.DefaultHasher.HashLeaf([]byte(line)); !slices.Equal(got[:], want) {
			t.Errorf("LeafHash(%.20q) = %x, merkle says %x", line, got, want)
		}
	}
}

func TestChain(t *testing.T) {
	leaves := trLeaves(50)
	tree := NewTree()
	if got := tree.Chain(); got != ([32]byte{}) {
		t.Fatalf("empty chain = %x, want zeros", got)
	}
	var want [32]byte
	for i, l := range leaves {
		want = sha256.Sum256(slices.Concat(want[:], l[:]))
		if got := ChainNext(tree.Chain(), l); got != want {
			t.Fatalf("ChainNext at %d = %x, want %x", i, got, want)
		}
		tree.Append(l)
		if got := tree.Chain(); got != want {
			t.Fatalf("Chain after %d records = %x, want %x", i+1, got, want)
		}
	}
}

func TestTreeRootMatchesReference(t *testing.T) {
	leaves := trLeaves(300)
	tree := NewTree()
	for n := 0; n <= len(leaves); n++ {
		if got := tree.Size(); got != uint64(n) {
			t.Fatalf("Size = %d, want %d", got, n)
		}
		if got, want := tree.Root(), refRoot(leaves[:n]); got != want {
			t.Fatalf("Root at size %d = %x, want %x", n, got, want)
		}
		if n < len(leaves) {
			if idx := tree.Append(leaves[n]); idx != uint64(n) {
				t.Fatalf("Append returned index %d, want %d", idx, n)
			}
		}
	}
}

func TestTreeRangeHashesMatchCompact(t *testing.T) {
	leaves := trLeaves(300)
	f := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	ref := f.NewEmptyRange(0)
	tree := NewTree()
	for n, l := range leaves {
		tree.Append(l)
		if err := ref.Append(l[:], nil); err != nil {
			t.Fatal(err)
		}
		got := tree.RangeHashes()
		want := ref.Hashes()
		if len(got) != len(want) {
			t.Fatalf("size %d: %d range hashes, compact has %d", n+1, len(got), len(want))
		}
		for i := range got {
			if !slices.Equal(got[i][:], want[i]) {
				t.Fatalf("size %d: range hash %d = %x, compact has %x", n+1, i, got[i], want[i])
			}
		}
	}
}

func TestResumeTree(t *testing.T) {
	leaves := trLeaves(300)
	for _, size := range []int{0, 1, 2, 3, 7, 8, 9, 64, 100, 255, 256, 257, 299, 300} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			orig := NewTree()
			for _, l := range leaves[:size] {
				orig.Append(l)
			}
			got, err := ResumeTree(orig.Size(), orig.Chain(), orig.RangeHashes(), orig.Root())
			if err != nil {
				t.Fatalf("ResumeTree: %v", err)
			}
			if got.Size() != orig.Size() || got.Chain() != orig.Chain() || got.Root() != orig.Root() {
				t.Fatalf("resumed state differs from the original")
			}
			for n := size; n < len(leaves); n++ {
				got.Append(leaves[n])
				orig.Append(leaves[n])
				if got.Root() != refRoot(leaves[:n+1]) || got.Chain() != orig.Chain() {
					t.Fatalf("after resuming at %d: wrong root or chain at size %d", size, n+1)
				}
			}
		})
	}
}

func TestResumeTreeRejects(t *testing.T) {
	leaves := trLeaves(13) // 13 = 8+4+1: three range hashes
	tree := NewTree()
	for _, l := range leaves {
		tree.Append(l)
	}
	hs, root := tree.RangeHashes(), tree.Root()
	tampered := slices.Clone(hs)
	tampered[1][0] ^= 1
	otherRoot := root
	otherRoot[31] ^= 1
	tests := []struct {
		name   string
		size   uint64
		hashes [][32]byte
		root   [32]byte
	}{
		{"wrong root", 13, hs, otherRoot},
		{"tampered hash", 13, tampered, root},
		{"missing hash", 13, hs[:2], root},
		{"extra hash", 13, append(slices.Clone(hs), hs[0]), root},
		{"size with fewer subtrees", 12, hs, root},
		{"size with more subtrees", 15, hs, root},
		{"empty with hashes", 0, hs[:1], sha256.Sum256(nil)},
		{"empty with wrong root", 0, nil, root},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ResumeTree(tt.size, tree.Chain(), tt.hashes, tt.root); !errors.Is(err, ErrTreeState) {
				t.Fatalf("ResumeTree = %v, want ErrTreeState", err)
			}
		})
	}
}

func TestTreeCloneIsIndependent(t *testing.T) {
	leaves := trLeaves(10)
	tree := NewTree()
	for _, l := range leaves[:7] {
		tree.Append(l)
	}
	c := tree.Clone()
	c.Append(leaves[7])
	if tree.Size() != 7 || tree.Root() != refRoot(leaves[:7]) {
		t.Fatal("appending to a clone changed the original")
	}
	tree.Append(leaves[9])
	if c.Size() != 8 || c.Root() != refRoot(leaves[:8]) {
		t.Fatal("appending to the original changed the clone")
	}
	hs := tree.RangeHashes()
	hs[0][0] ^= 1
	if tree.Root() != refRoot(append(slices.Clone(leaves[:7]), leaves[9])) {
		t.Fatal("changing RangeHashes' result changed the tree")
	}
}

func TestTreeAppendDoesNotAllocate(t *testing.T) {
	tree := NewTree()
	leaf := LeafHash([]byte("x"))
	for range 1 << 12 {
		tree.Append(leaf)
	}
	if n := testing.AllocsPerRun(1000, func() { tree.Append(leaf) }); n != 0 {
		t.Errorf("Append allocates %v times per call, want 0", n)
	}
}

func TestSegmentRangeMatchesCompact(t *testing.T) {
	leaves := trLeaves(100)
	f := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	for start := 0; start < len(leaves); start += 7 {
		for end := start; end <= len(leaves); end += 5 {
			got := SegmentRange(uint64(start), leaves[start:end])
			ref := f.NewEmptyRange(uint64(start))
			for _, l := range leaves[start:end] {
				if err := ref.Append(l[:], nil); err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != len(ref.Hashes()) || len(got) != compact.RangeSize(uint64(start), uint64(end)) {
				t.Fatalf("[%d, %d): %d hashes, want %d", start, end, len(got), len(ref.Hashes()))
			}
			for i, h := range ref.Hashes() {
				if !slices.Equal(got[i][:], h) {
					t.Fatalf("[%d, %d): hash %d = %x, want %x", start, end, i, got[i], h)
				}
			}
		}
	}
}

func TestRootFromSegmentsMatchesReference(t *testing.T) {
	leaves := trLeaves(300)
	for seed := range uint64(200) {
		segs := trSegmentation(seed, leaves, 37)
		for i := range segs {
			end := segs[i].End
			got, err := RootFromSegments(segs[:i+1])
			if err != nil {
				t.Fatalf("seed %d: RootFromSegments up to %d: %v", seed, end, err)
			}
			if want := refRoot(leaves[:end]); got != want {
				t.Fatalf("seed %d: root up to %d = %x, want %x", seed, end, got, want)
			}
		}
	}
	got, err := RootFromSegments(nil)
	if err != nil || got != sha256.Sum256(nil) {
		t.Errorf("RootFromSegments(nil) = %x, %v; want the empty root", got, err)
	}
}

func TestRootFromSegmentsRejects(t *testing.T) {
	leaves := trLeaves(40)
	seg := func(start, end int) SegmentHashes {
		return SegmentHashes{Start: uint64(start), End: uint64(end), Hashes: SegmentRange(uint64(start), leaves[start:end])}
	}
	short := seg(10, 23)
	short.Hashes = short.Hashes[1:]
	long := seg(10, 23)
	long.Hashes = append(long.Hashes, long.Hashes[0])
	tests := []struct {
		name string
		segs []SegmentHashes
		want error
	}{
		{"not from zero", []SegmentHashes{seg(1, 10)}, ErrSegmentGap},
		{"gap", []SegmentHashes{seg(0, 10), seg(11, 20)}, ErrSegmentGap},
		{"overlap", []SegmentHashes{seg(0, 10), seg(9, 20)}, ErrSegmentGap},
		{"overlap at the end", []SegmentHashes{seg(0, 10), seg(10, 20), seg(15, 20)}, ErrSegmentGap},
		{"out of order", []SegmentHashes{seg(10, 20), seg(0, 10)}, ErrSegmentGap},
		{"end before start", []SegmentHashes{seg(0, 10), {Start: 10, End: 5}}, ErrSegmentGap},
		{"too few hashes", []SegmentHashes{seg(0, 10), short}, ErrSegmentRange},
		{"too many hashes", []SegmentHashes{seg(0, 10), long}, ErrSegmentRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := RootFromSegments(tt.segs); !errors.Is(err, tt.want) {
				t.Fatalf("RootFromSegments = %v, want %v", err, tt.want)
			}
		})
	}
}

func BenchmarkTreeAppend(b *testing.B) {
	tree := NewTree()
	leaf := LeafHash([]byte(`{"v":1}`))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tree.Append(leaf)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkLeafHash2KB(b *testing.B) {
	line := make([]byte, 2048)
	for i := range line {
		line[i] = 'a' + byte(i%26)
	}
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	var sink [32]byte
	for range b.N {
		sink = LeafHash(line)
	}
	_ = sink
}
