package worm

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestKeyBuilders(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"segment", SegmentKey("audit/prod", "gw-eu1-7f3a", 0, 1024),
			"audit/prod/gw-eu1-7f3a/seg/00000000000000000000-00000000000000001024.jsonl.zst"},
		{"segment without prefix", SegmentKey("", "s", 7, 8),
			"s/seg/00000000000000000007-00000000000000000008.jsonl.zst"},
		{"prefix slashes dropped", SegmentKey("/audit/", "s", 1, 2),
			"audit/s/seg/00000000000000000001-00000000000000000002.jsonl.zst"},
		{"segment at the top", SegmentKey("p", "s", math.MaxUint64-1, math.MaxUint64),
			"p/s/seg/18446744073709551614-18446744073709551615.jsonl.zst"},
		{"checkpoint", CheckpointKey("p", "s", 42), "p/s/checkpoint/00000000000000000042"},
		{"checkpoint at 0", CheckpointKey("", "s", 0), "s/checkpoint/00000000000000000000"},
		{"manifest", ManifestKey("a/b/c", "s.1_x", 1024), "a/b/c/s.1_x/manifest/00000000000000001024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got  %s\nwant %s", tc.got, tc.want)
			}
		})
	}
}

func TestParseKeyRoundTrip(t *testing.T) {
	for _, k := range []Key{
		{Prefix: "audit/prod", Stream: "gw-eu1-7f3a", Kind: KindSegment, Start: 0, End: 1024},
		{Stream: "s", Kind: KindSegment, Start: 1023, End: 1024},
		{Prefix: "P_1.x", Stream: "s", Kind: KindSegment, Start: math.MaxUint64 - 1, End: math.MaxUint64},
		{Prefix: "p", Stream: "s", Kind: KindCheckpoint, Size: 0},
		{Prefix: "p", Stream: "s", Kind: KindCheckpoint, Size: math.MaxUint64},
		{Prefix: "a/b", Stream: strings.Repeat("z", 64), Kind: KindManifest, End: 1},
		{Stream: "...", Kind: KindManifest, End: 99},
	} {
		t.Run(k.String(), func(t *testing.T) {
			got, err := ParseKey(k.String())
			if err != nil {
				t.Fatal(err)
			}
			if got != k {
				t.Errorf("ParseKey(%q) = %+v, want %+v", k.String(), got, k)
			}
		})
	}
}

func TestParseKeyRejects(t *testing.T) {
	const (
		z  = "00000000000000000000"
		z1 = "00000000000000000001"
	)
	for _, tc := range []struct {
		name, key, why string
	}{
		{"empty", "", "empty"},
		{"too few parts", "seg/" + z + "-" + z1 + ".jsonl.zst", "not a trail object key"},
		{"unknown dir", "p/s/segs/" + z1, "not seg, checkpoint or manifest"},
		{"leading slash", "/p/s/checkpoint/" + z1, "empty path element"},
		{"trailing slash", "p/s/checkpoint/" + z1 + "/", "empty path element"},
		{"double slash", "p//s/checkpoint/" + z1, "empty path element"},
		{"dot dot prefix", "../s/checkpoint/" + z1, `".."`},
		{"dot prefix", "./s/checkpoint/" + z1, `"."`},
		{"dot dot stream", "p/../checkpoint/" + z1, `".."`},
		{"backslash", `p\s/checkpoint/` + z1, "not allowed"},
		{"space", "p/s/checkpoint/ " + z1[1:], "not allowed"},
		{"upper-case stream", "p/S/checkpoint/" + z1, "stream name"},
		{"stream too long", "p/" + strings.Repeat("s", 65) + "/checkpoint/" + z1, "stream name"},
		{"short number", "p/s/checkpoint/1", "20-digit"},
		{"long number", "p/s/checkpoint/0" + z1, "20-digit"},
		{"signed number", "p/s/checkpoint/-0000000000000000001", "20-digit"},
		{"plus sign", "p/s/checkpoint/+0000000000000000001", "not allowed"},
		{"overflow", "p/s/checkpoint/18446744073709551616", "64 bits"},
		{"manifest at 0", "p/s/manifest/" + z, "cannot end at 0"},
		{"segment without suffix", "p/s/seg/" + z + "-" + z1, "is not <start"},
		{"segment other suffix", "p/s/seg/" + z + "-" + z1 + ".jsonl.gz", "is not <start"},
		{"segment separator", "p/s/seg/" + z + "_" + z1 + ".jsonl.zst", "is not <start"},
		{"segment empty", "p/s/seg/" + z1 + "-" + z1 + ".jsonl.zst", "not below"},
		{"segment backwards", "p/s/seg/" + z1 + "-" + z + ".jsonl.zst", "not below"},
		{"segment bad digit", "p/s/seg/" + z[1:] + "x-" + z1 + ".jsonl.zst", "20-digit"},
		{"extra element", "p/s/checkpoint/" + z1 + "/x", "not seg, checkpoint or manifest"},
		{"too long", strings.Repeat("a/", 510) + "s/checkpoint/" + z1, "more than 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKey(tc.key)
			if err == nil {
				t.Fatalf("ParseKey(%q) = %+v, want an error", tc.key, k)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("ParseKey(%q): %v, want it to say %q", tc.key, err, tc.why)
			}
		})
	}
}

func TestValidateObjectKey(t *testing.T) {
	for _, key := range []string{"a", "a/b", "A.b_c-d/e", "p/s/junk", ".hidden/x"} {
		if err := ValidateObjectKey(key); err != nil {
			t.Errorf("ValidateObjectKey(%q): %v", key, err)
		}
	}
	for _, key := range []string{"", "/a", "a/", "a//b", "..", "a/../b", "a/./b", `a\b`,
		"a/b~tmp-1", "a b", "a\x00b", "ä", "C:/x", strings.Repeat("a", 1025)} {
		err := ValidateObjectKey(key)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateObjectKey(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}

func TestValidateStreamAndPrefix(t *testing.T) {
	for _, s := range []string{"", ".", "..", "A", "a/b", strings.Repeat("a", 65)} {
		if ValidateStream(s) == nil {
			t.Errorf("ValidateStream(%q) = nil, want an error", s)
		}
	}
	for _, s := range []string{"a", "...", "gw-eu1.7f3a_x", strings.Repeat("a", 64)} {
		if err := ValidateStream(s); err != nil {
			t.Errorf("ValidateStream(%q): %v", s, err)
		}
	}
	for _, p := range []string{"", "/", "audit", "audit/", "Audit/Prod-1"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q): %v", p, err)
		}
	}
	for _, p := range []string{"a//b", "..", "a/../b", "a b", `a\b`} {
		if ValidatePrefix(p) == nil {
			t.Errorf("ValidatePrefix(%q) = nil, want an error", p)
		}
	}
}

func TestKeysSortNumerically(t *testing.T) {
	a := SegmentKey("p", "s", 9, 10)
	b := SegmentKey("p", "s", 10, 100)
	if a >= b {
		t.Errorf("%s sorts after %s", a, b)
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(SegmentKey("p", "s", 1, 2))
	f.Add(CheckpointKey("", "s", 5))
	f.Add(ManifestKey("a/b", "gw", 9))
	f.Add("../s/checkpoint/00000000000000000001")
	f.Fuzz(func(t *testing.T, key string) {
		k, err := ParseKey(key)
		if err != nil {
			return
		}
		if k.String() != key {
			t.Fatalf("ParseKey(%q) = %+v, which builds %q", key, k, k.String())
		}
	})
}
