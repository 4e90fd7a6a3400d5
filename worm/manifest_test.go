package worm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func manifestTestHash(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// manifestTestValue is the manifest in testdata/manifest.golden.
func manifestTestValue() Manifest {
	return Manifest{
		V:             1,
		Stream:        "gw-eu1-7f3a",
		Segment:       SegmentKey("audit", "gw-eu1-7f3a", 1000, 1500),
		SegmentSHA256: manifestTestHash("segment"),
		Start:         1000,
		End:           1500,
		FirstTime:     time.Date(2026, 11, 27, 18, 0, 0, 123456789, time.UTC),
		LastTime:      time.Date(2026, 11, 27, 18, 4, 59, 500000000, time.UTC),
		SealedAt:      time.Date(2026, 11, 27, 18, 5, 0, 0, time.UTC),
		ChainHead:     manifestTestHash("chain"),
		Root:          manifestTestHash("root"),
		Range: [][32]byte{
			manifestTestHash("r0"), manifestTestHash("r1"), manifestTestHash("r2"),
			manifestTestHash("r3"), manifestTestHash("r4"), manifestTestHash("r5"),
			manifestTestHash("r6"), manifestTestHash("r7"),
		},
		Prev:  manifestTestHash("prev"),
		KeyID: "gw-eu1+0a1b2c3d",
	}
}

func manifestTestGolden(t testing.TB) []byte {
	t.Helper()
	golden, err := os.ReadFile(filepath.Join("testdata", "manifest.golden"))
	if err != nil {
		t.Fatal(err)
	}
	return golden
}

func TestManifestGolden(t *testing.T) {
	m := manifestTestValue()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	got := m.AppendJSON(nil)
	if want := manifestTestGolden(t); !bytes.Equal(got, want) {
		t.Errorf("AppendJSON:\n%s\nwant testdata/manifest.golden:\n%s", got, want)
	}
	if got := m.AppendJSON([]byte("x")); !bytes.HasPrefix(got, []byte(`x{"v":1,`)) {
		t.Errorf("AppendJSON does not append: %.20q", got)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	first := manifestTestValue()
	first.Start, first.End = 0, 1
	first.Segment = SegmentKey("", first.Stream, 0, 1)
	first.Range = first.Range[:1]
	first.Prev = [32]byte{}
	// Times in other zones come back in UTC.
	first.SealedAt = time.Date(2026, 11, 27, 19, 5, 0, 1, time.FixedZone("CET", 3600))
	for _, m := range []Manifest{manifestTestValue(), first} {
		body := m.AppendJSON(nil)
		got, err := ParseManifest(body)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if at, err := ManifestSealedAt(body); err != nil || !at.Equal(m.SealedAt) {
			t.Errorf("ManifestSealedAt = %v, %v; want %v", at, err, m.SealedAt)
		}
		if !got.SealedAt.Equal(m.SealedAt) || got.SealedAt.Location() != time.UTC {
			t.Errorf("sealed_at %v, want %v in UTC", got.SealedAt, m.SealedAt)
		}
		got.SealedAt, m.SealedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
		}
	}
}

// Every way a body can be wrong, each reported naming the key at fault.
func TestParseManifestStrict(t *testing.T) {
	golden := string(manifestTestGolden(t))
	hexOf := func(s string) string { h := manifestTestHash(s); return string(manifestAppendHash(nil, &h)) }
	replace := func(old, new string) string {
		if !strings.Contains(golden, old) {
			t.Fatalf("golden lacks %q", old)
		}
		return strings.Replace(golden, old, new, 1)
	}
	for _, tc := range []struct {
		name, body, why string
	}{
		{"empty", "", "not a JSON object"},
		{"array", "[]\n", "not a JSON object"},
		{"not JSON", "{v:1}\n", "read key"},
		{"truncated", golden[:len(golden)/2], ""},
		{"unknown key", replace(`{"v":1,`, `{"v":1,"extra":true,`), `key "extra": unknown key`},
		{"duplicate key", replace(`,"start":1000,`, `,"start":1000,"start":1000,`), `key "start" appears twice`},
		{"missing key", replace(`,"root":`+hexOf("root"), ``), `missing key "root"`},
		{"missing keys", replace(`{"v":1,"stream":"gw-eu1-7f3a",`, `{`), `missing key "v", "stream"`},
		{"data after", golden + "{}\n", "data after"},
		{"version 2", replace(`"v":1`, `"v":2`), `key "v": version 2`},
		{"version string", replace(`"v":1`, `"v":"1"`), `key "v": want an unsigned integer, got a string`},
		{"stream number", replace(`"stream":"gw-eu1-7f3a"`, `"stream":7`), `key "stream": want a string, got a number`},
		{"stream null", replace(`"stream":"gw-eu1-7f3a"`, `"stream":null`), `key "stream": want a string, got null`},
		{"stream invalid", strings.ReplaceAll(golden, "gw-eu1-7f3a", "GW"), `key "stream"`},
		{"segment object", replace(`"segment":"audit/`, `"segment":{},"x":"`), `key "segment": want a string, got an object`},
		{"segment not a key", replace(`"segment":"audit/`, `"segment":"../`), `key "segment"`},
		{"segment of a checkpoint", replace(`/seg/00000000000000001000-00000000000000001500.jsonl.zst`, `/checkpoint/00000000000000001500`), `key "segment": "audit/gw-eu1-7f3a/checkpoint/00000000000000001500" is a checkpoint key`},
		{"segment of other records", replace(`-00000000000000001500.jsonl`, `-00000000000000001501.jsonl`), `key "segment": "audit/gw-eu1-7f3a/seg/00000000000000001000-00000000000000001501.jsonl.zst" is not the segment of stream gw-eu1-7f3a records [1000, 1500)`},
		{"hash upper case", replace(hexOf("segment"), strings.ToUpper(hexOf("segment"))), `key "segment_sha256": `},
		{"hash short", replace(hexOf("chain"), hexOf("chain")[:40]+`"`), `key "chain_head": `},
		{"hash not hex", replace(hexOf("root"), `"`+strings.Repeat("g", 64)+`"`), `key "root": `},
		{"hash zero", replace(hexOf("root"), `"`+strings.Repeat("0", 64)+`"`), `key "root": hash is all zero`},
		{"hash array", replace(hexOf("root"), `[]`), `key "root": want a string, got an array`},
		{"start negative", replace(`"start":1000`, `"start":-1000`), `key "start": -1000 is not an unsigned decimal integer`},
		{"start float", replace(`"start":1000`, `"start":1000.0`), `key "start": 1000.0 is not an unsigned`},
		{"start exponent", replace(`"start":1000`, `"start":1e3`), `key "start": 1e3 is not an unsigned`},
		{"start leading zero", replace(`"start":1000`, `"start":01000`), `after key "start": invalid character '1'`},
		{"start overflow", replace(`"start":1000`, `"start":18446744073709551616`), `key "start": 18446744073709551616 does not fit`},
		{"start bool", replace(`"start":1000`, `"start":true`), `key "start": want an unsigned integer, got a boolean`},
		{"start equals end", replace(`"start":1000`, `"start":1500`), `key "end": 1500 is not above start 1500`},
		{"start above end", replace(`"end":1500`, `"end":999`), `key "end": 999 is not above start 1000`},
		{"time without nanoseconds", replace(`"sealed_at":"2026-11-27T18:05:00.000000000Z"`, `"sealed_at":"2026-11-27T18:05:00Z"`), `key "sealed_at": "2026-11-27T18:05:00Z" is not a UTC time`},
		{"time with offset", replace(`"first_time":"2026-11-27T18:00:00.123456789Z"`, `"first_time":"2026-11-27T19:00:00.123456789+01:00"`), `key "first_time": `},
		{"time number", replace(`"last_time":"2026-11-27T18:04:59.500000000Z"`, `"last_time":1`), `key "last_time": want a string, got a number`},
		{"time zero", replace(`"last_time":"2026-11-27T18:04:59.500000000Z"`, `"last_time":"0001-01-01T00:00:00.000000000Z"`), `key "last_time": time`},
		{"range empty", replace(`"range":[`+hexOf("r0")+`,`+hexOf("r1")+`,`+hexOf("r2")+`,`+hexOf("r3")+`,`+hexOf("r4")+`,`+hexOf("r5")+`,`+hexOf("r6")+`,`+hexOf("r7")+`]`, `"range":[]`), `key "range": empty, want 8 hashes for [1000, 1500)`},
		{"range short", replace(`,`+hexOf("r7")+`]`, `]`), `key "range": 7 hashes, want 8`},
		{"range long", replace(`,`+hexOf("r7")+`]`, `,`+hexOf("r7")+`,`+hexOf("r8")+`]`), `key "range": 9 hashes, want 8`},
		{"range bad element", replace(`,`+hexOf("r7")+`]`, `,"00"]`), `key "range": element 7: "00" is not 64`},
		{"range string", replace(`"range":[`+hexOf("r0")+`,`, `"range":`+hexOf("r0")+`,"x":[`), `key "range": want an array of hashes, got a string`},
		{"range null", replace(`"range":[`+hexOf("r0")+`,`, `"range":null,"x":[`), `key "range": want an array of hashes, got null`},
		{"prev zero", replace(hexOf("prev"), `"`+strings.Repeat("0", 64)+`"`), `key "prev_manifest_sha256": all zero, but a manifest starting at 1000`},
		{"key id without hash", replace(`"key_id":"gw-eu1+0a1b2c3d"`, `"key_id":"gw-eu1"`), `key "key_id": `},
		{"key id short hash", replace(`"key_id":"gw-eu1+0a1b2c3d"`, `"key_id":"gw-eu1+0a1b2c3"`), `key "key_id": `},
		{"key id upper hash", replace(`"key_id":"gw-eu1+0a1b2c3d"`, `"key_id":"gw-eu1+0A1B2C3D"`), `key "key_id": `},
		{"key id space", replace(`"key_id":"gw-eu1+0a1b2c3d"`, `"key_id":"gw eu1+0a1b2c3d"`), `key "key_id": `},
		{"key id empty name", replace(`"key_id":"gw-eu1+0a1b2c3d"`, `"key_id":"+0a1b2c3d"`), `key "key_id": `},
		{"key order", replace(`{"v":1,"stream":"gw-eu1-7f3a",`, `{"stream":"gw-eu1-7f3a","v":1,`), "not in canonical form"},
		{"spacing", replace(`{"v":1,`, `{"v": 1,`), "not in canonical form"},
		{"escaped character", replace(`"stream":"gw-eu1-7f3a"`, `"stream":"gw\u002deu1-7f3a"`), "not in canonical form"},
		{"no final newline", strings.TrimSuffix(golden, "\n"), "not in canonical form"},
		{"two final newlines", golden + "\n", "not in canonical form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.body))
			if err == nil {
				t.Fatalf("ParseManifest = %+v, want an error", m)
			}
			if !errors.Is(err, ErrMalformedManifest) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("ParseManifest: %v\nwant ErrMalformedManifest saying %q", err, tc.why)
			}
		})
	}
}

func TestManifestValidatePrev(t *testing.T) {
	m := manifestTestValue()
	m.Start = 0
	m.Segment = SegmentKey("", m.Stream, 0, m.End)
	m.Range = m.Range[:manifestRangeLen(0, m.End)]
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), `key "prev_manifest_sha256": set, but the first manifest`) {
		t.Errorf("first manifest with a previous one: %v", err)
	}
	m.Prev = [32]byte{}
	if err := m.Validate(); err != nil {
		t.Errorf("first manifest: %v", err)
	}
}

// AppendJSON always writes JSON, even for values Validate refuses.
func TestManifestAppendJSONEscapes(t *testing.T) {
	m := manifestTestValue()
	m.Stream = "a\"b\\c\n\t\x01\xff\u2028é"
	m.KeyID = "</script>"
	body := m.AppendJSON(nil)
	if bytes.Count(body, []byte("\n")) != 1 {
		t.Errorf("body holds a raw newline: %q", body)
	}
	got, err := manifestDecode(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\"b\\c\n\t\x01\ufffd\u2028é"; got.Stream != want || got.KeyID != m.KeyID {
		t.Errorf("decoded stream %q, key id %q; want %q, %q", got.Stream, got.KeyID, want, m.KeyID)
	}
}

// manifestTestRangeLen counts the nodes of the compact range [begin, end)
// the slow way: from the left, the largest aligned subtree that fits.
func manifestTestRangeLen(begin, end uint64) int {
	n := 0
	for pos := begin; pos < end; n++ {
		size := uint64(1)
		for pos%(size*2) == 0 && pos+size*2 <= end && size < 1<<62 {
			size *= 2
		}
		pos += size
	}
	return n
}

func TestManifestRangeLen(t *testing.T) {
	for begin := uint64(0); begin < 300; begin++ {
		for end := begin + 1; end <= 300; end++ {
			if got, want := manifestRangeLen(begin, end), manifestTestRangeLen(begin, end); got != want {
				t.Fatalf("manifestRangeLen(%d, %d) = %d, want %d", begin, end, got, want)
			}
		}
	}
	for _, c := range [][2]uint64{{1 << 40, 1<<40 + 12345}, {1<<40 - 7, 1<<41 + 3}, {123456789, 987654321}} {
		if got, want := manifestRangeLen(c[0], c[1]), manifestTestRangeLen(c[0], c[1]); got != want {
			t.Errorf("manifestRangeLen(%d, %d) = %d, want %d", c[0], c[1], got, want)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(manifestTestGolden(f))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"range":[1,{}],"v":[]}`))
	f.Add([]byte("{\"v\":1,\"v\":2}\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseManifest(body)
		if err != nil {
			return
		}
		// A manifest has one encoding.
		if got := m.AppendJSON(nil); !bytes.Equal(got, body) {
			t.Fatalf("parsed %q, which encodes as %q", body, got)
		}
	})
}
