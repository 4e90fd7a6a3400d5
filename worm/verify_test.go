package worm

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// vtBase is when test trails' records begin.
var vtBase = time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)

// vtRecord is record index of stream, timed a second apart from vtBase.
func vtRecord(stream string, index int) []byte {
	return fmt.Appendf(nil, `{"v":1,"id":"rec-%s-%06d","time":"%s","kind":"inference","stream":"%s","status":200,"latency_us":%d}`,
		stream, index, vtBase.Add(time.Duration(index)*time.Second).Format(TimeLayout), stream, index*37%1000)
}

func vtTime(index int) time.Time { return vtBase.Add(time.Duration(index) * time.Second) }

// vtTrust is a trust file holding k, optionally with a window.
func vtTrust(t testing.TB, window string, keys ...testKey) *Trust {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.vkey + " " + window + "\n")
	}
	tr, err := ParseTrust("trust.pub", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// vtTrail seals batches of records into st and returns every record and
// the state after the last seal. Sealing times follow the records.
type vtTrail struct {
	stream string
	lines  [][]byte
	states []SealState
	// cps holds the checkpoint bytes after each seal.
	cps [][]byte
}

func vtSeal(t testing.TB, st Store, k testKey, prefix, stream string, batches ...int) *vtTrail {
	t.Helper()
	tr := &vtTrail{stream: stream}
	state := SealState{Stream: stream}
	for _, n := range batches {
		start := len(tr.lines)
		var lines [][]byte
		for i := start; i < start+n; i++ {
			lines = append(lines, vtRecord(stream, i))
		}
		end := start + n
		s := &Sealer{Store: st, Signer: k.signer, Prefix: prefix, Now: func() time.Time { return vtTime(end) }}
		next, err := s.Seal(context.Background(), state, lines, vtTime(start), vtTime(end-1))
		if err != nil {
			t.Fatal(err)
		}
		state = next
		tr.lines = append(tr.lines, lines...)
		tr.states = append(tr.states, state)
		cp, err := st.Get(context.Background(), CheckpointKey(prefix, stream, uint64(end)))
		if err != nil {
			t.Fatal(err)
		}
		tr.cps = append(tr.cps, cp)
	}
	return tr
}

func vtVerify(t testing.TB, st Store, o VerifyOptions) *Report {
	t.Helper()
	rep, err := Verify(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (r *Report) all() []Finding {
	fs := append([]Finding(nil), r.Findings...)
	for _, s := range r.Streams {
		fs = append(fs, s.Findings...)
	}
	return fs
}

func TestVerifyHonestTrail(t *testing.T) {
	k := newTestKey(t, "gw")
	st := NewMemStore()
	a := vtSeal(t, st, k, "audit", "gw-a", 10, 1, 33, 64)
	b := vtSeal(t, st, k, "audit", "gw-b", 5, 7)
	rep := vtVerify(t, st, VerifyOptions{Trust: vtTrust(t, "", k), Prefix: "audit"})
	if !rep.OK() {
		t.Fatalf("honest trail has findings: %v", rep.all())
	}
	if len(rep.Streams) != 2 {
		t.Fatalf("got %d streams, want 2", len(rep.Streams))
	}
	for i, want := range []struct {
		tr       *vtTrail
		segments uint64
	}{{a, 4}, {b, 2}} {
		got := rep.Streams[i]
		n := uint64(len(want.tr.lines))
		last := want.tr.states[len(want.tr.states)-1]
		if got.Stream != want.tr.stream || got.Segments != want.segments || got.Records != n || got.Size != n ||
			got.Root != last.Tree.Root() || !got.First.Equal(vtTime(0)) || !got.Last.Equal(vtTime(int(n)-1)) {
			t.Errorf("stream %d: got %+v, want %s with %d segments, %d records, root %x", i, got, want.tr.stream, want.segments, n, last.Tree.Root())
		}
	}

	// One stream alone, a pinned checkpoint it extends, and a time window.
	rep = vtVerify(t, st, VerifyOptions{Trust: vtTrust(t, "", k), Prefix: "audit", Stream: "gw-a",
		SinceCheckpoint: a.cps[1], From: vtTime(50), To: vtTime(60)})
	if !rep.OK() || len(rep.Streams) != 1 || rep.Streams[0].Size != 108 {
		t.Fatalf("stream gw-a: %+v", rep)
	}
	if got := rep.Streams[0].Records; got != 64 {
		t.Errorf("window [50s, 60s] re-hashed %d records, want the 64 of the last segment", got)
	}
}

func TestVerifyProgress(t *testing.T) {
	k := newTestKey(t, "gw")
	st := NewMemStore()
	a := vtSeal(t, st, k, "", "gw-a", 10, 1, 33, 64)
	b := vtSeal(t, st, k, "", "gw-b", 5)
	var got []VerifyProgress
	rep := vtVerify(t, st, VerifyOptions{Trust: vtTrust(t, "", k), Progress: func(p VerifyProgress) { got = append(got, p) }})
	if !rep.OK() {
		t.Fatalf("honest trail has findings: %v", rep.all())
	}
	text := func(tr *vtTrail) (n uint64) {
		for _, l := range tr.lines {
			n += uint64(len(l)) + 1
		}
		return n
	}
	// Each stream's walk reports as it begins and as it ends; a slow walk
	// may report in between.
	for _, w := range []struct {
		first, last VerifyProgress
	}{
		{VerifyProgress{Stream: "gw-a", SegmentsTotal: 4},
			VerifyProgress{Stream: "gw-a", Segments: 4, SegmentsTotal: 4, Records: 108, Bytes: text(a), Done: true}},
		{VerifyProgress{Stream: "gw-b", SegmentsTotal: 1},
			VerifyProgress{Stream: "gw-b", Segments: 1, SegmentsTotal: 1, Records: 5, Bytes: text(b), Done: true}},
	} {
		var calls []VerifyProgress
		for _, p := range got {
			if p.Stream == w.first.Stream {
				calls = append(calls, p)
			}
		}
		if len(calls) < 2 || calls[0] != w.first || calls[len(calls)-1] != w.last {
			t.Errorf("stream %s: progress %+v, want from %+v to %+v", w.first.Stream, calls, w.first, w.last)
			continue
		}
		for i := 1; i < len(calls)-1; i++ {
			p, q := calls[i-1], calls[i]
			if q.Done || q.Segments < p.Segments || q.Records < p.Records || q.Bytes < p.Bytes {
				t.Errorf("stream %s: progress goes back or ends early: %+v after %+v", w.first.Stream, q, p)
			}
		}
	}
	if got[len(got)-1].Stream != "gw-b" {
		t.Errorf("streams reported out of order: %+v", got)
	}
}

func TestVerifyCheckpointInsideSegment(t *testing.T) {
	k := newTestKey(t, "gw")
	st := NewMemStore()
	tr := vtSeal(t, st, k, "", "gw-a", 10, 10)
	mid := NewTree()
	for _, l := range tr.lines[:15] {
		mid.Append(LeafHash(l))
	}
	cp, err := SignCheckpoint(k.signer, "gw-a", 15, mid.Root(), vtTime(15))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(context.Background(), CheckpointKey("", "gw-a", 15), cp); err != nil {
		t.Fatal(err)
	}
	if rep := vtVerify(t, st, VerifyOptions{Trust: vtTrust(t, "", k), SinceCheckpoint: cp}); !rep.OK() {
		t.Fatalf("provable checkpoint inside a segment: %v", rep.all())
	}
}

func TestVerifyOptionsErrors(t *testing.T) {
	k := newTestKey(t, "gw")
	st := NewMemStore()
	for _, o := range []VerifyOptions{
		{},
		{Trust: vtTrust(t, "", k), Prefix: "a//b"},
		{Trust: vtTrust(t, "", k), Stream: "Upper"},
	} {
		if _, err := Verify(context.Background(), st, o); err == nil {
			t.Errorf("Verify(%+v) succeeded", o)
		}
	}
	rep := vtVerify(t, st, VerifyOptions{Trust: vtTrust(t, "", k), Stream: "gw-x"})
	if rep.OK() || rep.Streams[0].Findings[0].Code != FindingStreamNotFound {
		t.Errorf("missing stream: %+v", rep)
	}
}

// BenchmarkVerify verifies a trail of 64 segments of 1024 records of
// about 600 bytes; bytes are the segments' uncompressed text.
func BenchmarkVerify(b *testing.B) {
	k := newTestKey(b, "gw")
	st := NewMemStore()
	const segments, perSegment = 32, 1024
	pad := strings.Repeat("x", 1900) // records of about 2 KB, as BenchmarkLeafHash2KB hashes
	state := SealState{Stream: "gw-bench"}
	var text int64
	for s := 0; s < segments; s++ {
		lines := make([][]byte, perSegment)
		for i := range lines {
			idx := s*perSegment + i
			lines[i] = fmt.Appendf(nil, `{"v":1,"id":"rec-%08d","time":"%s","kind":"inference","stream":"gw-bench","input":{"text":"%s"},"status":200}`,
				idx, vtTime(idx).Format(TimeLayout), pad)
			text += int64(len(lines[i]) + 1)
		}
		end := (s + 1) * perSegment
		sealer := &Sealer{Store: st, Signer: k.signer, Now: func() time.Time { return vtTime(end) }}
		var err error
		state, err = sealer.Seal(context.Background(), state, lines, vtTime(s*perSegment), vtTime(end-1))
		if err != nil {
			b.Fatal(err)
		}
	}
	trust := vtTrust(b, "", k)
	b.SetBytes(text)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(context.Background(), st, VerifyOptions{Trust: trust})
		if err != nil || !rep.OK() {
			b.Fatalf("verify: %v %v", err, rep.all())
		}
	}
	b.ReportMetric(float64(segments*perSegment)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func TestSegmentRangeOfMatchesSegmentRange(t *testing.T) {
	var leaves [][32]byte
	for i := range 70 {
		leaves = append(leaves, LeafHash(vtRecord("gw-a", i)))
	}
	for start := uint64(0); start < 40; start++ {
		for n := 1; int(start)+n <= len(leaves); n += 3 {
			got := segmentRangeOf(start, leaves[start:int(start)+n])
			if want := SegmentRange(start, leaves[start:int(start)+n]); !equalHashes(got, want) {
				t.Fatalf("range of [%d, %d): got %x, want %x", start, int(start)+n, got, want)
			}
		}
	}
}

// recordHeadCases are lines recordHead must read as gjson does, or leave
// to it.
var recordHeadCases = []string{
	`{"v":1,"id":"0193a5e2-7c1d-7c3e-9a4b-1f2e3d4c5b6a","time":"2026-11-27T18:00:00.123456789Z","kind":"inference","stream":"gw-eu1-7f3a","route":"openai"}`,
	`{"v":1,"id":"a","time":"t","kind":"k","stream":"s"}`,
	`{"v":1,"id":"a","time":"t","kind":"k","stream":"s"` + "\xff\xfe garbage after the head",
	`{"v":1,"id":"a","time":"t","kind":"k","stream":"s\xff"}`,
	`{"v":1,"id":"a","stream":"s","time":"t"}`,
	`{"v":1,"id":"a","time":"t","time":"u","kind":"k","stream":"s","stream":"x"}`,
	`{"v":1,"id":"a","time":1,"kind":"k","stream":"s"}`,
	`{"v":1,"id":"a","time":"t","kind":"k","stream":2}`,
	`{"v":1,"id":"a","time":"t","kind":"k","stream":null}`,
	`{"v":1,"id":"a\"b","time":"t","kind":"k","stream":"s"}`,
	`{"v":1,"id":"a","time":"t\u0031","kind":"k","stream":"s"}`,
	`{"v":1,"id":"a","ti\u006de":"t","kind":"k","stream":"s"}`,
	`{"v": 1,"id":"a","time":"t","kind":"k","stream":"s"}`,
	` {"v":1,"id":"a","time":"t","kind":"k","stream":"s"}`,
	`{"v":1,"id":"a","time":"t","kind":"k","a":1,"b":2,"c":3,"d":4,"stream":"s"}`,
	`{"v":1,"id":"a","time":"t","kind":"k","x":{"stream":"s"},"stream":"r"}`,
	`{"v":1,"id":"a","time":"t","kind":"k"}`,
	`{"v":1,"id":"a","time":"t","kind":"k","stream":"s`,
	`{"v":1,"id":"a","time":"t","kind":"k","stream"`,
	`{"v":-1,"id":"a","time":"t","kind":"k","stream":"s"}`,
	`{"v":1.5,"id":"a","time":"t","kind":"k","stream":"s"}`,
	`["stream","s","time","t"]`,
	`"stream"`,
	`{}`,
	`{`,
	``,
}

func TestRecordHeadAgreesWithGJSON(t *testing.T) {
	fast := 0
	for _, line := range recordHeadCases {
		if recordHeadCheck(t, line) {
			fast++
		}
	}
	if fast < 5 {
		t.Errorf("recordHead read only %d of the cases", fast)
	}
}

// recordHeadCheck fails t if recordHead reads line other than gjson does,
// and reports whether it read it.
func recordHeadCheck(t *testing.T, line string) bool {
	t.Helper()
	st, tm, _, ok := recordHead(line)
	if !ok {
		return false
	}
	gst, gtm := gjson.Get(line, "stream"), gjson.Get(line, "time")
	if gst.Type != gjson.String || gtm.Type != gjson.String || gst.Str != st || gtm.Str != tm {
		t.Errorf("recordHead(%q) = %q, %q; gjson finds %v %q, %v %q", line, st, tm, gst.Type, gst.Str, gtm.Type, gtm.Str)
	}
	return true
}

func FuzzRecordHead(f *testing.F) {
	for _, line := range recordHeadCases {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) { recordHeadCheck(t, line) })
}

func BenchmarkRecordHead(b *testing.B) {
	line := recordHeadCases[0]
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, ok := recordHead(line); !ok {
			b.Fatal("not read")
		}
	}
}
