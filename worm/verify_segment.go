package worm

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"slices"
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
// unknown, for proving checkpoints that fall inside the segment. c is the
// segment's check, run ahead of the walk (nil when the segment is not
// read: missing, or outside the window).
func (v *streamVerifier) segment(m *Manifest, mKey string, chain [32]byte, chainOK bool, before [][32]byte, c *segCheck) error {
	key := m.Segment
	if _, ok := v.objs.segments[key]; !ok {
		v.find(key, FindingSegmentMissing, "segment %s (records [%d, %d)) named by manifest %s is missing", key, m.Start, m.End, mKey)
		v.sil.forget()
		return nil
	}
	v.referenced[key] = true
	if c == nil {
		v.sil.forget()
		return nil
	}
	<-c.done
	if c.err != nil {
		return c.err
	}
	if !c.found {
		v.find(key, FindingSegmentMissing, "segment %s (records [%d, %d)) named by manifest %s was listed but cannot be read", key, m.Start, m.End, mKey)
		return nil
	}
	hashOK := true
	if c.sum != m.SegmentSHA256 {
		hashOK = false
		v.find(key, FindingSegmentHashMismatch, "segment %s: SHA-256 %s of the stored object is not %s that manifest %s states: the segment was altered or replaced", key, verifyHashHex(c.sum), verifyHashHex(m.SegmentSHA256), mKey)
	}
	sc := &c.scan
	v.sil.replay(sc.start, sc.obs)
	v.rep.Records += uint64(len(sc.leaves))
	v.bytes += sc.bytes
	if c.decodeErr != nil {
		v.find(key, FindingSegmentMalformed, "segment %s does not decode: %v", key, c.decodeErr)
		return nil
	}
	sc.report(v, key)
	if n := uint64(len(sc.leaves)); n != m.End-m.Start {
		v.find(key, FindingSegmentRecordCount, "segment %s holds %d records, manifest %s states %d (records [%d, %d)): records were dropped or added", key, n, mKey, m.End-m.Start, m.Start, m.End)
		return nil
	}
	if !equalHashes(c.rangeHashes, m.Range) {
		v.find(key, FindingSegmentRangeMismatch, "segment %s: the records' leaf hashes do not give the range hashes manifest %s states for records [%d, %d): records were altered, reordered or replaced", key, mKey, m.Start, m.End)
		hashOK = false
	}
	if chainOK {
		end := c.chainEnd
		if !c.chained || c.chainFrom != chain {
			end = chain
			for i := range sc.leaves {
				end = ChainNext(end, sc.leaves[i])
			}
		}
		if c := end; c != m.ChainHead {
			v.find(key, FindingChainMismatch, "segment %s: the hash chain from the previous manifest's head through records [%d, %d) ends at %s, not at chain_head %s of manifest %s", key, m.Start, m.End, verifyHashHex(c), verifyHashHex(m.ChainHead), mKey)
		}
	}
	if hashOK && before != nil {
		for _, s := range v.midIn(m) {
			v.roots[s] = verifyRoot{root: rootInside(before, m.Start, sc.leaves[:s-m.Start]), proven: true}
		}
	}
	return nil
}

// midIn returns the checkpoint sizes that fall inside m's records.
func (v *streamVerifier) midIn(m *Manifest) []uint64 {
	var mid []uint64
	for _, s := range v.mid {
		if m.Start < s && s < m.End {
			mid = append(mid, s)
		}
	}
	return mid
}

// segmentRangeOf is SegmentRange computed node by node with the
// allocation-free hashing of Tree: the verifier's hot path.
func segmentRangeOf(start uint64, leaves [][32]byte) [][32]byte {
	nodes := compact.RangeNodes(start, start+uint64(len(leaves)), nil)
	out := make([][32]byte, len(nodes))
	for i, id := range nodes {
		lo := id.Index<<id.Level - start
		out[i] = perfectRoot(leaves[lo : lo+1<<id.Level])
	}
	return out
}

// perfectRoot is the root of a perfect subtree, whose number of leaves is a
// power of two. Unlike treeRootOf it computes no hash chain, which would
// cost as much hashing again as the tree's interior nodes.
func perfectRoot(leaves [][32]byte) [32]byte {
	var stack [64][32]byte
	n := 0
	for i := range leaves {
		h := leaves[i]
		for s := i; s&1 == 1; s >>= 1 {
			n--
			h = treeHashChildren(stack[n], h)
		}
		stack[n] = h
		n++
	}
	return stack[0]
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
// per record. A streamVerifier keeps one for all its segments, so that the
// hash and the leaves' memory are reused.
type recordScan struct {
	stream     string
	start      uint64
	lo, hi     time.Time
	loS, hiS   string // lo and hi in TimeLayout, compared as text
	h          hash.Hash
	leaves     [][32]byte
	bytes      uint64    // text scanned, newlines included
	bad        [3]int    // wrong stream, time outside, malformed
	firstBad   [3]string // the first of each
	leafPrefix [1]byte
	sum        [32]byte
	obs        []silenceObs // record times and kinds, for the stream's silence
}

// recordScanPresize bounds the leaves allocated ahead of a segment's
// records: the manifest's count is signed, but a segment holding fewer
// lines should not cost memory for more.
const recordScanPresize = 1 << 16

func (sc *recordScan) reset(stream string, m *Manifest) {
	lo, hi := minMaxTime(m.FirstTime, m.LastTime)
	if sc.h == nil {
		sc.h = sha256.New()
	}
	n := int(min(m.End-m.Start, recordScanPresize))
	*sc = recordScan{
		stream: stream, start: m.Start, lo: lo, hi: hi,
		loS: lo.UTC().Format(TimeLayout), hiS: hi.UTC().Format(TimeLayout),
		h: sc.h, leaves: slices.Grow(sc.leaves[:0], n), obs: slices.Grow(sc.obs[:0], n),
	}
}

func (sc *recordScan) line(i int, line []byte) error {
	// Only the leaf hash's prefix byte is zero; the rest is the line.
	// Summing into a field of sc keeps the hash from escaping per record.
	sc.h.Reset()
	sc.h.Write(sc.leafPrefix[:])
	sc.h.Write(line)
	sc.leaves = append(sc.leaves, [32]byte(sc.h.Sum(sc.sum[:0])))
	sc.bytes += uint64(len(line)) + 1

	// The line is only read during this call, so it is viewed as a string
	// without copying; the strings read from it are not kept.
	s := unsafe.String(unsafe.SliceData(line), len(line))
	st, tm, kind, ok := recordHead(s)
	if !ok {
		sc.lookup(i, s)
		return nil
	}
	if st != sc.stream && sc.first(0) {
		sc.firstBad[0] = fmt.Sprintf("record %d (line %d) belongs to stream %q", sc.start+uint64(i), i, st)
	}
	sc.checkTime(i, tm)
	sc.obs = appendSilenceObs(sc.obs, tm, kind, s)
	return nil
}

// lookup reads "stream" and "time" from a record that recordHead cannot
// read, wherever they are.
func (sc *recordScan) lookup(i int, s string) {
	st, tm := gjson.Get(s, "stream"), gjson.Get(s, "time")
	switch {
	case st.Type != gjson.String || tm.Type != gjson.String:
		if sc.first(2) {
			sc.firstBad[2] = fmt.Sprintf("record %d (line %d) has no string \"stream\" or \"time\"", sc.start+uint64(i), i)
		}
	case st.Str != sc.stream:
		if sc.first(0) {
			sc.firstBad[0] = fmt.Sprintf("record %d (line %d) belongs to stream %q", sc.start+uint64(i), i, st.Str)
		}
	}
	if tm.Type == gjson.String {
		sc.checkTime(i, tm.Str)
		sc.obs = appendSilenceObs(sc.obs, tm.Str, gjson.Get(s, "kind").Str, s)
	} else {
		sc.obs = append(sc.obs, silenceObs{})
	}
}

func (sc *recordScan) checkTime(i int, t string) {
	switch in, ok := sc.timeIn(t); {
	case !ok:
		if sc.first(2) {
			sc.firstBad[2] = fmt.Sprintf("record %d (line %d) has time %q, not an RFC 3339 time", sc.start+uint64(i), i, t)
		}
	case !in:
		if sc.first(1) {
			sc.firstBad[1] = fmt.Sprintf("record %d (line %d) has time %s", sc.start+uint64(i), i, t)
		}
	}
}

// first counts a problem of a kind and reports whether it is the first,
// the one to describe: the others are only counted, and cost no message.
func (sc *recordScan) first(kind int) bool {
	sc.bad[kind]++
	return sc.bad[kind] == 1
}

// recordHeadKeys is how many keys recordHead reads before giving up; the
// trail writes "stream" fifth.
const recordHeadKeys = 8

// recordHead reads "stream" and "time" from a record line as the trail
// writes it: an object whose first keys are "v":1, "id", "time", "kind"
// and "stream", without spaces, with plain strings and integers as values.
// It stops at the value of "stream", so a record's body costs nothing
// here. ok is false for a line that does not begin in that shape (another
// value, an escape, a space, "stream" or "time" not among the first keys);
// where ok is true the values are those gjson finds, the first of each
// key.
func recordHead(s string) (stream, tm, kind string, ok bool) {
	if len(s) == 0 || s[0] != '{' {
		return "", "", "", false
	}
	var haveStream, haveTime bool
	i := 1
	for range recordHeadKeys {
		key, j, ok := recordHeadString(s, i)
		if !ok || j >= len(s) || s[j] != ':' {
			return "", "", "", false
		}
		i = j + 1
		if val, j, ok := recordHeadString(s, i); ok {
			switch {
			case key == "time" && !haveTime:
				tm, haveTime = val, true
			case key == "stream" && !haveStream:
				stream, haveStream = val, true
			case key == "kind" && kind == "":
				kind = val
			}
			i = j
		} else {
			j := i
			for j < len(s) && '0' <= s[j] && s[j] <= '9' {
				j++
			}
			// A first "time" or "stream" that is no string leaves the
			// verdict to the full lookup.
			if j == i || (key == "time" && !haveTime) || (key == "stream" && !haveStream) {
				return "", "", "", false
			}
			i = j
		}
		if haveStream && haveTime {
			return stream, tm, kind, true
		}
		if i >= len(s) || s[i] != ',' {
			return "", "", "", false
		}
		i++
	}
	return "", "", "", false
}

// recordHeadString reads the string starting at s[i], without escapes,
// and returns it and the index after its closing quote. The strings it
// reads are short, where a loop beats IndexByte's setup.
func recordHeadString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '"':
			return s[i+1 : j], j + 1, true
		case '\\':
			return "", 0, false
		}
	}
	return "", 0, false
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
