package worm

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// tamperEnv is an honest trail of two streams: gw-a sealed as records
// [0, 10), [10, 20), [20, 30) and gw-b as [0, 10), [10, 20).
type tamperEnv struct {
	t    *testing.T
	st   *MemStore
	key  testKey
	a, b *vtTrail
	o    VerifyOptions
}

func (e *tamperEnv) get(key string) []byte {
	e.t.Helper()
	data, err := e.st.Get(context.Background(), key)
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}

func (e *tamperEnv) set(key string, data []byte) {
	e.t.Helper()
	if err := e.st.Set(key, data); err != nil {
		e.t.Fatal(err)
	}
}

// setLines re-encodes a segment with other lines and stores it in place.
func (e *tamperEnv) setLines(key string, lines [][]byte) {
	e.t.Helper()
	seg, err := EncodeSegment(nil, lines)
	if err != nil {
		e.t.Fatal(err)
	}
	e.set(key, seg)
}

// lines returns a copy of the records a segment holds.
func (e *tamperEnv) lines(key string) [][]byte {
	e.t.Helper()
	lines, err := DecodeSegment(e.get(key), 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([][]byte, len(lines))
	for i := range lines {
		out[i] = bytes.Clone(lines[i])
	}
	return out
}

// flipAfter changes the byte after the first occurrence of marker.
func flipAfter(t *testing.T, data []byte, marker string) []byte {
	t.Helper()
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		t.Fatalf("%q not in %q", marker, data)
	}
	out := bytes.Clone(data)
	j := i + len(marker)
	if out[j] == '0' {
		out[j] = '1'
	} else {
		out[j] = '0'
	}
	return out
}

type tamperWant struct{ code, object string }

func TestVerifyDetectsTampering(t *testing.T) {
	segA := func(start, end uint64) string { return SegmentKey("audit", "gw-a", start, end) }
	cpA := func(size uint64) string { return CheckpointKey("audit", "gw-a", size) }
	mA := func(end uint64) string { return ManifestKey("audit", "gw-a", end) }
	segB := func(start, end uint64) string { return SegmentKey("audit", "gw-b", start, end) }

	for _, tc := range []struct {
		name   string
		tamper func(e *tamperEnv)
		want   []tamperWant
	}{
		{"record byte changed", func(e *tamperEnv) {
			lines := e.lines(segA(10, 20))
			lines[3] = bytes.Replace(lines[3], []byte(`"status":200`), []byte(`"status":201`), 1)
			e.setLines(segA(10, 20), lines)
		}, []tamperWant{{FindingSegmentHashMismatch, segA(10, 20)}, {FindingSegmentRangeMismatch, segA(10, 20)}, {FindingChainMismatch, segA(10, 20)}}},
		{"segment object byte changed", func(e *tamperEnv) {
			data := bytes.Clone(e.get(segA(10, 20)))
			data[len(data)/2] ^= 0x01
			e.set(segA(10, 20), data)
		}, []tamperWant{{FindingSegmentHashMismatch, segA(10, 20)}}},
		{"checkpoint byte changed", func(e *tamperEnv) {
			e.set(cpA(20), flipAfter(e.t, e.get(cpA(20)), "time 2026-11-27T18:00:20."))
		}, []tamperWant{{FindingCheckpointBadSignature, cpA(20)}}},
		{"manifest byte changed", func(e *tamperEnv) {
			e.set(mA(20), flipAfter(e.t, e.get(mA(20)), `"chain_head":"`))
		}, []tamperWant{{FindingManifestBadSignature, mA(20)}}},
		{"segment deleted", func(e *tamperEnv) {
			e.st.Delete(segA(10, 20))
		}, []tamperWant{{FindingSegmentMissing, segA(10, 20)}}},
		{"manifest deleted", func(e *tamperEnv) {
			e.st.Delete(mA(20))
		}, []tamperWant{{FindingManifestMissing, mA(20)}}},
		{"records swapped", func(e *tamperEnv) {
			lines := e.lines(segA(10, 20))
			lines[2], lines[3] = lines[3], lines[2]
			e.setLines(segA(10, 20), lines)
		}, []tamperWant{{FindingSegmentHashMismatch, segA(10, 20)}, {FindingSegmentRangeMismatch, segA(10, 20)}}},
		{"record dropped", func(e *tamperEnv) {
			lines := e.lines(segA(10, 20))
			e.setLines(segA(10, 20), append(lines[:4], lines[5:]...))
		}, []tamperWant{{FindingSegmentHashMismatch, segA(10, 20)}, {FindingSegmentRecordCount, segA(10, 20)}}},
		{"segments renamed into each other's place", func(e *tamperEnv) {
			first, second := e.get(segA(0, 10)), e.get(segA(10, 20))
			e.set(segA(0, 10), second)
			e.set(segA(10, 20), first)
		}, []tamperWant{{FindingSegmentHashMismatch, segA(0, 10)}, {FindingSegmentHashMismatch, segA(10, 20)}, {FindingRecordTimeOutside, segA(0, 10)}}},
		{"record moved between streams", func(e *tamperEnv) {
			a := e.lines(segA(10, 20))
			moved := a[5]
			e.setLines(segA(10, 20), append(a[:5], a[6:]...))
			e.setLines(segB(0, 10), append(e.lines(segB(0, 10)), moved))
		}, []tamperWant{{FindingRecordWrongStream, segB(0, 10)}, {FindingSegmentRecordCount, segA(10, 20)}, {FindingSegmentRecordCount, segB(0, 10)}}},
		{"checkpoint re-signed with an unknown key", func(e *tamperEnv) {
			other := newTestKey(e.t, "gw")
			cp, err := SignCheckpoint(other.signer, "gw-a", 20, e.a.states[1].Tree.Root(), vtTime(20))
			if err != nil {
				e.t.Fatal(err)
			}
			e.set(cpA(20), cp)
		}, []tamperWant{{FindingCheckpointUnknownKey, cpA(20)}}},
		{"key used outside its window", func(e *tamperEnv) {
			e.o.Trust = vtTrust(e.t, "not-after="+vtTime(15).Format(TimeLayout), e.key)
		}, []tamperWant{{FindingManifestKeyOutside, mA(20)}, {FindingManifestKeyOutside, mA(30)}, {FindingCheckpointKeyOutside, cpA(20)}}},
		{"tail truncated against a pinned checkpoint", func(e *tamperEnv) {
			e.o.SinceCheckpoint = e.a.cps[2]
			e.st.Delete(mA(30))
			e.st.Delete(segA(20, 30))
			e.st.Delete(cpA(30))
		}, []tamperWant{{FindingSinceCheckpointTruncate, ""}}},
		{"forked checkpoint", func(e *tamperEnv) {
			cp, err := SignCheckpoint(e.key.signer, "gw-a", 20, testRoot("fork"), vtTime(20))
			if err != nil {
				e.t.Fatal(err)
			}
			e.set(cpA(20), cp)
		}, []tamperWant{{FindingCheckpointForked, cpA(20)}}},
		{"forked pinned checkpoint", func(e *tamperEnv) {
			cp, err := SignCheckpoint(e.key.signer, "gw-a", 20, testRoot("fork"), vtTime(20))
			if err != nil {
				e.t.Fatal(err)
			}
			e.o.SinceCheckpoint = cp
		}, []tamperWant{{FindingSinceCheckpointForked, ""}}},
		{"checkpoint of another stream", func(e *tamperEnv) {
			e.set(cpA(20), e.get(CheckpointKey("audit", "gw-b", 20)))
		}, []tamperWant{{FindingCheckpointWrongOrigin, cpA(20)}}},
		{"manifest of another stream", func(e *tamperEnv) {
			e.set(mA(20), e.get(ManifestKey("audit", "gw-b", 20)))
		}, []tamperWant{{FindingManifestMisplaced, mA(20)}}},
		{"segment left without manifest", func(e *tamperEnv) {
			e.setLines(segA(30, 31), [][]byte{vtRecord("gw-a", 30)})
		}, []tamperWant{{FindingSegmentUnreferenced, segA(30, 31)}}},
		{"checkpoint without its manifest", func(e *tamperEnv) {
			e.st.Delete(mA(30))
		}, []tamperWant{{FindingManifestMissing, mA(30)}}},
		{"foreign object", func(e *tamperEnv) {
			e.set("audit/gw-a/seg/notes.txt", []byte("hello"))
		}, []tamperWant{{FindingUnexpectedObject, "audit/gw-a/seg/notes.txt"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &tamperEnv{t: t, st: NewMemStore(), key: newTestKey(t, "gw")}
			e.a = vtSeal(t, e.st, e.key, "audit", "gw-a", 10, 10, 10)
			e.b = vtSeal(t, e.st, e.key, "audit", "gw-b", 10, 10)
			e.o = VerifyOptions{Trust: vtTrust(t, "", e.key), Prefix: "audit"}
			tc.tamper(e)
			rep := vtVerify(t, e.st, e.o)
			if rep.OK() {
				t.Fatal("tampered trail verified")
			}
			found := rep.all()
			for _, w := range tc.want {
				ok := false
				for _, f := range found {
					ok = ok || f.Code == w.code && f.Object == w.object && strings.Contains(f.Msg, w.object)
				}
				if !ok {
					t.Errorf("no finding %s naming %q; got:", w.code, w.object)
					for _, f := range found {
						t.Logf("  %v", f)
					}
				}
			}
		})
	}
}

// FuzzVerifyTamper changes one byte of one object of an honest trail:
// Verify must not fail or panic, and a changed segment must be found.
func FuzzVerifyTamper(f *testing.F) {
	f.Add(uint8(0), uint16(10), uint8(1))
	f.Add(uint8(3), uint16(200), uint8(0x80))
	f.Add(uint8(7), uint16(40), uint8(4))
	k := newTestKey(f, "gw")
	trust := vtTrust(f, "", k)
	f.Fuzz(func(t *testing.T, object uint8, offset uint16, xor uint8) {
		st := NewMemStore()
		vtSeal(t, st, k, "", "gw-a", 3, 5, 2)
		keys, err := st.List(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		key := keys[int(object)%len(keys)]
		data, err := st.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		data[int(offset)%len(data)] ^= xor
		if err := st.Set(key, data); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(context.Background(), st, VerifyOptions{Trust: trust})
		if err != nil {
			t.Fatal(err)
		}
		if k, _ := ParseKey(key); xor != 0 && k.Kind == KindSegment && rep.OK() {
			t.Errorf("changed segment %s verified", key)
		}
	})
}
