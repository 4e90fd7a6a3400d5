package worm

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/transparency-dev/merkle/compact"
)

// segment checks the segment a verified manifest names: present, stored
// bytes as hashed, records as many as the manifest's range, their leaves
// giving its range hashes and continuing the chain from chain (if
// chainOK), and each record of this stream and timed within the
// manifest's bounds. before is the compact range [0, m.Start), or nil if
// unknown, for proving checkpoints that fall inside the segment.
func (v *streamVerifier) segment(m *Manifest, mKey string, chain [32]byte, chainOK bool, before [][32]byte) error {
	key := m.Segment
	if _, ok := v.objs.segments[key]; !ok {
		v.find(key, FindingSegmentMissing, "segment %s (records [%d, %d)) named by manifest %s is missing", key, m.Start, m.End, mKey)
		return nil
	}
	v.referenced[key] = true
	var mid []uint64
	for _, s := range v.mid {
		if m.Start < s && s < m.End {
			mid = append(mid, s)
		}
	}
	if !v.inWindow(m) && len(mid) == 0 {
		return nil
	}
	data, found, err := v.get(key)
	if err != nil {
		return err
	}
	if !found {
		v.find(key, FindingSegmentMissing, "segment %s (records [%d, %d)) named by manifest %s was listed but cannot be read", key, m.Start, m.End, mKey)
		return nil
	}
	hashOK := true
	if sum := sha256.Sum256(data); sum != m.SegmentSHA256 {
		hashOK = false
		v.find(key, FindingSegmentHashMismatch, "segment %s: SHA-256 %s of the stored object is not %s that manifest %s states: the segment was altered or replaced", key, verifyHashHex(sum), verifyHashHex(m.SegmentSHA256), mKey)
	}
	sc := newRecordScan(v.rep.Stream, m)
	err = ForEachLine(bytes.NewReader(data), sc.line)
	v.rep.Records += uint64(len(sc.leaves))
	if err != nil {
		v.find(key, FindingSegmentMalformed, "segment %s does not decode: %v", key, err)
		return nil
	}
	sc.report(v, key)
	if n := uint64(len(sc.leaves)); n != m.End-m.Start {
		v.find(key, FindingSegmentRecordCount, "segment %s holds %d records, manifest %s states %d (records [%d, %d)): records were dropped or added", key, n, mKey, m.End-m.Start, m.Start, m.End)
		return nil
	}
	if got := segmentRangeOf(m.Start, sc.leaves); !equalHashes(got, m.Range) {
		v.find(key, FindingSegmentRangeMismatch, "segment %s: the records' leaf hashes do not give the range hashes manifest %s states for records [%d, %d): records were altered, reordered or replaced", key, mKey, m.Start, m.End)
		hashOK = false
	}
	if chainOK {
		c := chain
		for i := range sc.leaves {
			c = ChainNext(c, sc.leaves[i])
		}
		if c != m.ChainHead {
			v.find(key, FindingChainMismatch, "segment %s: the hash chain from the previous manifest's head through records [%d, %d) ends at %s, not at chain_head %s of manifest %s", key, m.Start, m.End, verifyHashHex(c), verifyHashHex(m.ChainHead), mKey)
		}
	}
	if hashOK && before != nil {
		for _, s := range mid {
			v.roots[s] = verifyRoot{root: rootInside(before, m.Start, sc.leaves[:s-m.Start]), proven: true}
		}
	}
	return nil
}

// segmentRangeOf is SegmentRange computed node by node with the
// allocation-free hashing of Tree: the verifier's hot path.
func segmentRangeOf(start uint64, leaves [][32]byte) [][32]byte {
	nodes := compact.RangeNodes(start, start+uint64(len(leaves)), nil)
	out := make([][32]byte, len(nodes))
	for i, id := range nodes {
		lo := id.Index<<id.Level - start
		out[i] = treeRootOf(leaves[lo : lo+1<<id.Level])
	}
	return out
}

// rootInside is the root at start+len(leaves), from the compact range
// [0, start) and the leaves after it.
func rootInside(before [][32]byte, start uint64, leaves [][32]byte) [32]byte {
	acc, err := treeFactory.NewRange(0, start, treeSlices(before))
	if err != nil {
		return [32]byte{}
	}
	for i := range leaves {
		_ = acc.Append(leaves[i][:], nil)
	}
	return treeFold(treeArrays(acc.Hashes()))
}

// inWindow reports whether the manifest's records may overlap [From, To].
func (v *streamVerifier) inWindow(m *Manifest) bool {
	lo, hi := minMaxTime(m.FirstTime, m.LastTime)
	return (v.o.To.IsZero() || !lo.After(v.o.To)) && (v.o.From.IsZero() || !hi.Before(v.o.From))
}

func minMaxTime(a, b time.Time) (time.Time, time.Time) {
	if b.Before(a) {
		return b, a
	}
	return a, b
}

func equalHashes(a, b [][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// recordScan hashes a segment's records and reads only their "stream" and
// "time", without decoding the rest. Problems are counted per kind, with
// the first one described, so a bad segment gives a few findings, not one
// per record.
type recordScan struct {
	stream     string
	start      uint64
	lo, hi     time.Time
	loS, hiS   string // lo and hi in TimeLayout, compared as text
	h          hash.Hash
	leaves     [][32]byte
	bad        [3]int    // wrong stream, time outside, malformed
	firstBad   [3]string // the first of each
	leafPrefix [1]byte
	sum        [32]byte
}

func newRecordScan(stream string, m *Manifest) *recordScan {
	lo, hi := minMaxTime(m.FirstTime, m.LastTime)
	return &recordScan{
		stream: stream, start: m.Start, lo: lo, hi: hi,
		loS: lo.UTC().Format(TimeLayout), hiS: hi.UTC().Format(TimeLayout),
		h: sha256.New(), leaves: make([][32]byte, 0, m.End-m.Start),
	}
}

func (sc *recordScan) line(i int, line []byte) error {
	// Only the leaf hash's prefix byte is zero; the rest is the line.
	// Summing into a field of sc keeps the hash from escaping per record.
	sc.h.Reset()
	sc.h.Write(sc.leafPrefix[:])
	sc.h.Write(line)
	sc.leaves = append(sc.leaves, [32]byte(sc.h.Sum(sc.sum[:0])))

	// The line is only read during this call, so it is viewed as a string
	// without copying; gjson results point into it and are not kept.
	s := unsafe.String(unsafe.SliceData(line), len(line))
	idx := sc.start + uint64(i)
	st, tm := gjson.Get(s, "stream"), gjson.Get(s, "time")
	switch {
	case st.Type != gjson.String || tm.Type != gjson.String:
		sc.note(2, fmt.Sprintf("record %d (line %d) has no string \"stream\" or \"time\"", idx, i))
	case st.Str != sc.stream:
		sc.note(0, fmt.Sprintf("record %d (line %d) belongs to stream %q", idx, i, st.Str))
	}
	if tm.Type == gjson.String {
		switch in, ok := sc.timeIn(tm.Str); {
		case !ok:
			sc.note(2, fmt.Sprintf("record %d (line %d) has time %q, not an RFC 3339 time", idx, i, tm.Str))
		case !in:
			sc.note(1, fmt.Sprintf("record %d (line %d) has time %s", idx, i, tm.Str))
		}
	}
	return nil
}

func (sc *recordScan) note(kind int, what string) {
	if sc.bad[kind] == 0 {
		sc.firstBad[kind] = what
	}
	sc.bad[kind]++
}

// timeIn reports whether t lies within [lo, hi]. Times in TimeLayout,
// which the trail writes, compare as text; others are parsed.
func (sc *recordScan) timeIn(t string) (in, ok bool) {
	if layoutTime(t) {
		return sc.loS <= t && t <= sc.hiS, true
	}
	parsed, err := time.Parse(time.RFC3339Nano, t)
	if err != nil {
		return false, false
	}
	return !parsed.Before(sc.lo) && !parsed.After(sc.hi), true
}

// layoutTime reports whether t has TimeLayout's shape.
func layoutTime(t string) bool {
	if len(t) != len(TimeLayout) {
		return false
	}
	for i := 0; i < len(t); i++ {
		c, l := t[i], TimeLayout[i]
		if '0' <= l && l <= '9' {
			if c < '0' || c > '9' {
				return false
			}
		} else if c != l {
			return false
		}
	}
	return true
}

func (sc *recordScan) report(v *streamVerifier, key string) {
	more := func(n int) string {
		if n > 1 {
			return fmt.Sprintf(", and %d more", n-1)
		}
		return ""
	}
	if n := sc.bad[0]; n > 0 {
		v.find(key, FindingRecordWrongStream, "segment %s of stream %s: %s%s: records were moved between streams", key, v.rep.Stream, sc.firstBad[0], more(n))
	}
	if n := sc.bad[1]; n > 0 {
		v.find(key, FindingRecordTimeOutside, "segment %s: %s, outside [%s, %s] that its manifest states%s", key, sc.firstBad[1], sc.loS, sc.hiS, more(n))
	}
	if n := sc.bad[2]; n > 0 {
		v.find(key, FindingRecordMalformed, "segment %s: %s%s", key, sc.firstBad[2], more(n))
	}
}
