package capture

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// decTestBody is a JSON-ish body of about 20 KB.
var decTestBody = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"model":"gpt-4o-mini","messages":[`)
	for i := range 200 {
		fmt.Fprintf(&b, `{"role":"user","content":"message %d: the quick brown fox jumps over the lazy dog"},`, i)
	}
	b.WriteString(`{"role":"user","content":"end"}]}`)
	return b.Bytes()
}()

// decTestLarge is about 300 KB of text that compresses into several zstd
// blocks and brotli metablocks, so a cut stream still has whole ones.
var decTestLarge = func() []byte {
	words := strings.Fields("model input output token usage audit record stream caller prompt answer latency chain merkle segment")
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < 300<<10 {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(" \n"[r.IntN(2)])
	}
	return b.Bytes()
}()

// decTestEncode applies one coding; "deflate-raw" is deflate without the
// zlib wrapper, as some servers send it.
func decTestEncode(t testing.TB, coding string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "deflate-raw":
		w, _ = flate.NewWriter(&b, flate.DefaultCompression)
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		zw, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		t.Fatalf("no encoder for %q", coding)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeRoundTrip(t *testing.T) {
	prefix := []byte("kept:")
	for _, tc := range []struct {
		name, header string
		codings      []string // applied in order
	}{
		{"gzip", "gzip", []string{"gzip"}},
		{"x-gzip", "x-gzip", []string{"gzip"}},
		{"upper case", "GZIP", []string{"gzip"}},
		{"deflate (zlib)", "deflate", []string{"deflate"}},
		{"deflate (raw)", "deflate", []string{"deflate-raw"}},
		{"br", "br", []string{"br"}},
		{"zstd", "zstd", []string{"zstd"}},
		{"identity", "identity", nil},
		{"empty", "", nil},
		{"stacked gzip, br", "gzip, br", []string{"gzip", "br"}},
		{"stacked with identity", "identity,deflate , zstd", []string{"deflate", "zstd"}},
		{"stacked gzip, gzip", "gzip,gzip", []string{"gzip", "gzip"}},
		{"four codings", "br, zstd, deflate, gzip", []string{"br", "zstd", "deflate-raw", "gzip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := decTestBody
			for _, c := range tc.codings {
				body = decTestEncode(t, c, body)
			}
			for _, max := range []int{len(decTestBody), 1 << 20} {
				out, flags := Decode(slices.Clone(prefix), body, []byte(tc.header), max)
				if flags != nil || !bytes.Equal(out, append(slices.Clone(prefix), decTestBody...)) {
					t.Fatalf("max %d: got %d bytes, flags %q", max, len(out), flags)
				}
			}
			out, flags := Decode(nil, body, []byte(tc.header), 100)
			if !slices.Equal(flags, []string{FlagDecodeLimit}) || !bytes.Equal(out, decTestBody[:100]) {
				t.Fatalf("max 100: got %q, flags %q", out, flags)
			}
		})
	}
}

func TestDecodeEmptyBody(t *testing.T) {
	for _, enc := range []string{"gzip", "deflate", "br", "zstd", "gzip, br"} {
		if out, flags := Decode(nil, nil, []byte(enc), 100); len(out) != 0 || flags != nil {
			t.Errorf("%s: got %q, flags %q", enc, out, flags)
		}
	}
}

func TestDecodeUnknownEncoding(t *testing.T) {
	body := []byte("opaque bytes")
	for _, enc := range []string{"compress", "gzip, snappy", "gzip;q=1", "gzip,gzip,gzip,gzip,gzip"} {
		out, flags := Decode([]byte(">"), body, []byte(enc), 100)
		if string(out) != ">opaque bytes" || !slices.Equal(flags, []string{FlagUnknownEncoding}) {
			t.Errorf("%s: got %q, flags %q", enc, out, flags)
		}
	}
	out, flags := Decode(nil, body, []byte("compress"), 6)
	if string(out) != "opaque" || !slices.Equal(flags, []string{FlagUnknownEncoding, FlagDecodeLimit}) {
		t.Errorf("capped: got %q, flags %q", out, flags)
	}
}

func TestDecodeBroken(t *testing.T) {
	for _, coding := range []string{"gzip", "deflate", "deflate-raw", "br", "zstd"} {
		header := strings.TrimSuffix(coding, "-raw")
		enc := decTestEncode(t, coding, decTestBody)
		t.Run(coding+" truncated", func(t *testing.T) {
			enc := decTestEncode(t, coding, decTestLarge)
			for _, n := range []int{len(enc) / 2, len(enc) - 1, 1} {
				out, flags := Decode(nil, enc[:n], []byte(header), 1<<20)
				if !slices.Equal(flags, []string{FlagDecodeError}) {
					t.Fatalf("cut at %d/%d: flags %q", n, len(enc), flags)
				}
				if !bytes.HasPrefix(decTestLarge, out) {
					t.Fatalf("cut at %d: output is not a prefix of the body", n)
				}
				if n == len(enc)/2 && len(out) == 0 {
					t.Fatalf("cut at %d: nothing kept", n)
				}
			}
		})
		if strings.HasPrefix(coding, "deflate") {
			continue // deflate ends at its final block; what follows is never read
		}
		t.Run(coding+" trailing garbage", func(t *testing.T) {
			out, flags := Decode(nil, append(slices.Clone(enc), "garbage!"...), []byte(header), 1<<20)
			if !slices.Equal(flags, []string{FlagDecodeError}) || !bytes.Equal(out, decTestBody) {
				t.Fatalf("got %d bytes, flags %q", len(out), flags)
			}
		})
	}
	t.Run("not compressed at all", func(t *testing.T) {
		for _, enc := range []string{"gzip", "br", "zstd", "deflate"} {
			out, flags := Decode(nil, []byte("plain text, mislabelled"), []byte(enc), 1<<20)
			if !slices.Equal(flags, []string{FlagDecodeError}) {
				t.Errorf("%s: got %q, flags %q", enc, out, flags)
			}
		}
	})
	t.Run("gzip checksum", func(t *testing.T) {
		enc := decTestEncode(t, "gzip", decTestBody)
		enc[len(enc)-6] ^= 0xff // inside the CRC-32
		out, flags := Decode(nil, enc, []byte("gzip"), 1<<20)
		if !slices.Equal(flags, []string{FlagDecodeError}) || !bytes.Equal(out, decTestBody) {
			t.Fatalf("got %d bytes, flags %q", len(out), flags)
		}
	})
	t.Run("corrupt middle", func(t *testing.T) {
		for _, coding := range []string{"gzip", "deflate", "zstd"} {
			enc := decTestEncode(t, coding, decTestBody)
			for i := len(enc) / 2; i < len(enc)/2+8; i++ {
				enc[i] ^= 0x55
			}
			if _, flags := Decode(nil, enc, []byte(coding), 1<<20); !slices.Equal(flags, []string{FlagDecodeError}) {
				t.Errorf("%s: flags %q", coding, flags)
			}
		}
	})
	t.Run("stacked, inner layer broken", func(t *testing.T) {
		inner := decTestEncode(t, "gzip", decTestBody)
		body := decTestEncode(t, "br", inner[:len(inner)/2])
		out, flags := Decode(nil, body, []byte("gzip, br"), 1<<20)
		if !slices.Equal(flags, []string{FlagDecodeError}) || len(out) == 0 || !bytes.HasPrefix(decTestBody, out) {
			t.Fatalf("got %d bytes, flags %q", len(out), flags)
		}
	})
}

// decTestGzipBomb is 1 GiB of zeros, gzipped: about 1 MB. Streaming a GiB
// through the encoder takes a minute under the race detector, so the
// encoder's steady-state output for 1 MiB of zeros (byte-aligned by Flush)
// is repeated instead, and the trailer written for the full GiB.
var decTestGzipBomb = sync.OnceValue(func() []byte {
	const mib, n = 1 << 20, 1024
	zero := make([]byte, mib)
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	var marks []int
	for range 3 {
		w.Write(zero)
		w.Flush()
		marks = append(marks, b.Len())
	}
	chunk := slices.Clone(b.Bytes()[marks[1]:marks[2]])
	if !bytes.Equal(chunk, b.Bytes()[marks[0]:marks[1]]) {
		panic("gzip output for zeros is not steady; cannot build the bomb")
	}
	w.Close()
	tail := slices.Clone(b.Bytes()[marks[2] : b.Len()-8]) // the final block
	bomb := slices.Clone(b.Bytes()[:marks[2]])
	for range n - 3 {
		bomb = append(bomb, chunk...)
	}
	bomb = append(bomb, tail...)
	var crc uint32
	for range n {
		crc = crc32.Update(crc, crc32.IEEETable, zero)
	}
	bomb = binary.LittleEndian.AppendUint32(bomb, crc)
	return binary.LittleEndian.AppendUint32(bomb, uint32(n*mib)) // ISIZE is mod 2^32
})

// decTestZstdBomb is one zstd frame of 1 GiB of zeros, as an encoder
// writes zeros (RLE blocks of 128 KiB), with an 8 MiB window.
var decTestZstdBomb = sync.OnceValue(func() []byte {
	bomb := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3} // magic; no size, no checksum; window 1<<(10+13)
	const block, n = 128 << 10, 8192
	for i := range n {
		hdr := uint32(block<<3 | 1<<1) // RLE block
		if i == n-1 {
			hdr |= 1 // last
		}
		bomb = append(bomb, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
	}
	return bomb
})

func TestDecodeBomb(t *testing.T) {
	const max = 1 << 20
	gz := decTestGzipBomb()
	inner := decTestEncode(t, "br", gz) // a bomb inside another coding
	for _, tc := range []struct {
		name, enc string
		body      []byte
	}{
		{"gzip", "gzip", gz},
		{"zstd", "zstd", decTestZstdBomb()},
		{"gzip inside br", "gzip, br", inner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "gzip" && (len(gz) < 900<<10 || len(gz) > 1200<<10) {
				t.Fatalf("gzip bomb is %d bytes", len(gz))
			}
			Decode(nil, tc.body, []byte(tc.enc), max) // warm the pools, as a running gateway has them
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out, flags := Decode(nil, tc.body, []byte(tc.enc), max)
			runtime.ReadMemStats(&after)
			if len(out) != max || bytes.IndexFunc(out, func(r rune) bool { return r != 0 }) >= 0 {
				t.Fatalf("got %d bytes, want %d zeros", len(out), max)
			}
			if !slices.Equal(flags, []string{FlagDecodeLimit}) {
				t.Fatalf("flags %q", flags)
			}
			grew := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d compressed bytes, allocated %.1f MiB", len(tc.body), float64(grew)/(1<<20))
			if grew > 16<<20 {
				t.Fatalf("allocated %d bytes to decode %d", grew, max)
			}
		})
	}
	t.Run("cold zstd decoder", func(t *testing.T) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC() // empties the pools
		runtime.ReadMemStats(&before)
		out, flags := Decode(nil, decTestZstdBomb(), []byte("zstd"), max)
		runtime.ReadMemStats(&after)
		grew := after.TotalAlloc - before.TotalAlloc
		t.Logf("allocated %.1f MiB with a new decoder", float64(grew)/(1<<20))
		if len(out) != max || !slices.Equal(flags, []string{FlagDecodeLimit}) || grew > 32<<20 {
			t.Fatalf("got %d bytes, flags %q, allocated %d", len(out), flags, grew)
		}
	})
}

func TestDecodeHopBomb(t *testing.T) {
	// Raw deflate made of empty stored blocks expands to nothing, so the
	// outer gzip layer could feed it without end; the budget between the
	// layers stops it.
	empty := []byte{0x00, 0x00, 0x00, 0xff, 0xff}
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	block := bytes.Repeat(empty, 1<<16)
	for range 8 { // 2.5 MiB of empty blocks, past the budget between layers
		w.Write(block)
	}
	w.Close()
	out, flags := Decode(nil, b.Bytes(), []byte("deflate, gzip"), 1<<20)
	if len(out) != 0 || !slices.Equal(flags, []string{FlagDecodeLimit}) {
		t.Fatalf("got %d bytes, flags %q", len(out), flags)
	}
}

func TestDecodeZstdLimits(t *testing.T) {
	// A frame declaring a window beyond what the decoder accepts.
	big := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00}
	if out, flags := Decode(nil, big, []byte("zstd"), 1<<20); len(out) != 0 || !slices.Equal(flags, []string{FlagDecodeLimit}) {
		t.Fatalf("huge window: got %d bytes, flags %q", len(out), flags)
	}
	// A max above the RFC 9659 window lets larger windows through.
	var b bytes.Buffer
	zw, _ := zstd.NewWriter(&b, zstd.WithWindowSize(16<<20))
	data := bytes.Repeat(decTestBody, 20)
	zw.Write(data)
	zw.Close()
	if out, flags := Decode(nil, b.Bytes(), []byte("zstd"), 32<<20); flags != nil || !bytes.Equal(out, data) {
		t.Fatalf("16 MiB window, max 32 MiB: got %d bytes, flags %q", len(out), flags)
	}
	// The same decoders, pooled, go back to the smaller bound.
	if _, flags := Decode(nil, b.Bytes(), []byte("zstd"), 1<<20); !slices.Equal(flags, []string{FlagDecodeLimit}) {
		t.Fatalf("16 MiB window, max 1 MiB: flags %q", flags)
	}
}

func TestDecodeConcurrent(t *testing.T) {
	codings := []string{"gzip", "deflate", "br", "zstd", "gzip, br"}
	bodies := map[string][]byte{}
	for _, c := range codings {
		body := decTestBody
		for _, one := range strings.Split(c, ", ") {
			body = decTestEncode(t, one, body)
		}
		bodies[c] = body
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var dst []byte
			for i := range 50 {
				c := codings[(g+i)%len(codings)]
				var flags []string
				dst, flags = Decode(dst[:0], bodies[c], []byte(c), 1<<20)
				if flags != nil || !bytes.Equal(dst, decTestBody) {
					t.Errorf("%s: got %d bytes, flags %q", c, len(dst), flags)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzDecode(f *testing.F) {
	small := []byte(`{"a":"hello hello hello"}`)
	for _, c := range []string{"gzip", "deflate", "deflate-raw", "br", "zstd"} {
		enc := decTestEncode(f, c, small)
		c = strings.TrimSuffix(c, "-raw")
		f.Add(c, enc)
		f.Add(c, enc[:len(enc)/2])
	}
	f.Add("gzip, br", decTestEncode(f, "br", decTestEncode(f, "gzip", small)))
	f.Add("identity", small)
	f.Add("zstd", decTestZstdBomb()[:4096])
	known := []string{FlagDecodeLimit, FlagDecodeError, FlagUnknownEncoding}
	f.Fuzz(func(t *testing.T, enc string, body []byte) {
		for _, max := range []int{0, 1, 100, 64 << 10} {
			out, flags := Decode([]byte("pre"), body, []byte(enc), max)
			if !bytes.HasPrefix(out, []byte("pre")) {
				t.Fatalf("dst prefix lost")
			}
			if n := len(out) - 3; n > max {
				t.Fatalf("max %d: returned %d bytes", max, n)
			}
			for _, fl := range flags {
				if !slices.Contains(known, fl) {
					t.Fatalf("unexpected flag %q", fl)
				}
			}
		}
	})
}

func BenchmarkDecodeGzip2KB(b *testing.B) {
	body := decTestEncode(b, "gzip", decTestBody[:2048])
	enc := []byte("gzip")
	dst, _ := Decode(nil, body, enc, 1<<20)
	b.SetBytes(2048)
	b.ReportAllocs()
	for b.Loop() {
		var flags []string
		dst, flags = Decode(dst[:0], body, enc, 1<<20)
		if flags != nil || len(dst) != 2048 {
			b.Fatal(len(dst), flags)
		}
	}
}
