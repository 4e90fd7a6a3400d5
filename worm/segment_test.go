package worm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func segTestLines(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = fmt.Appendf(nil, `{"v":1,"id":"rec-%06d","kind":"inference","status":200,"latency_us":%d}`, i, i*37%1000)
	}
	return lines
}

func segTestEncode(t testing.TB, lines [][]byte) []byte {
	t.Helper()
	seg, err := EncodeSegment(nil, lines)
	if err != nil {
		t.Fatal(err)
	}
	return seg
}

func TestSegmentRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 1000, 50000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			lines := segTestLines(n)
			seg := segTestEncode(t, lines)
			got, err := DecodeSegment(seg, 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("decoded %d lines, want %d", len(got), n)
			}
			for i := range lines {
				if !bytes.Equal(got[i], lines[i]) {
					t.Fatalf("line %d = %q, want %q", i, got[i], lines[i])
				}
			}
			var streamed int
			err = ForEachLine(bytes.NewReader(seg), func(i int, line []byte) error {
				if i != streamed || !bytes.Equal(line, lines[i]) {
					return fmt.Errorf("line %d (call %d) = %q, want %q", i, streamed, line, lines[streamed])
				}
				streamed++
				return nil
			})
			if err != nil || streamed != n {
				t.Fatalf("ForEachLine: %d lines, %v", streamed, err)
			}
		})
	}
}

// The text is what any zstd decoder makes of the segment: JSON lines, each
// ending in a newline.
func TestSegmentIsPlainZstdOfJSONL(t *testing.T) {
	lines := segTestLines(3)
	seg := segTestEncode(t, lines)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	text, err := dec.DecodeAll(seg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Join(lines, []byte("\n")), '\n'); !bytes.Equal(text, want) {
		t.Errorf("text %q, want %q", text, want)
	}
	var h zstd.Header
	if err := h.Decode(seg); err != nil || !h.HasFCS || !h.HasCheckSum || h.FrameContentSize != uint64(len(text)) {
		t.Errorf("frame header %+v (%v): want content size %d and a checksum", h, err, len(text))
	}
}

func TestSegmentDeterministic(t *testing.T) {
	for _, n := range []int{1, 3000, 200000} { // one block, several, past the window
		lines := segTestLines(n)
		a := segTestEncode(t, lines)
		// Another buffer, other goroutines, a dst with content.
		results := make(chan []byte, 4)
		for range 4 {
			go func() {
				copied := make([][]byte, len(lines))
				for i, l := range lines {
					copied[i] = bytes.Clone(l)
				}
				out, err := EncodeSegment([]byte("prefix"), copied)
				if err != nil {
					out = nil
				}
				results <- out
			}()
		}
		for range 4 {
			b := <-results
			if !bytes.HasPrefix(b, []byte("prefix")) || !bytes.Equal(b[len("prefix"):], a) {
				t.Fatalf("%d lines: encodings differ", n)
			}
		}
	}
}

func TestEncodeSegmentRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines [][]byte
		why   string
	}{
		{"no lines", nil, "no lines"},
		{"empty line", [][]byte{[]byte("{}"), {}}, "line 1: empty line"},
		{"newline", [][]byte{[]byte("{}\n")}, "line 0: holds a newline"},
		{"inner newline", [][]byte{[]byte("{\n}")}, "holds a newline"},
		{"carriage return", [][]byte{[]byte("{}"), []byte("{}\r")}, "line 1: holds a carriage return"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seg, err := EncodeSegment(nil, tc.lines)
			if err == nil {
				t.Fatalf("EncodeSegment = %d bytes, want an error", len(seg))
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q, want it to say %q", err, tc.why)
			}
		})
	}
}

// segTestRawFrame compresses text as it is, bypassing EncodeSegment's
// rules, as a forger could. Small frames are single-segment, so that their
// headers state the content size.
func segTestRawFrame(t testing.TB, text []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	opts = append([]zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithSingleSegment(len(text) <= 1<<20)}, opts...)
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(text, nil)
}

// segTestStreamFrame compresses text as a stream: a frame with no content
// size unless the caller states one.
func segTestStreamFrame(t testing.TB, text []byte, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if size >= 0 {
		enc.ResetContentSize(&buf, size)
	}
	if _, err := enc.Write(text); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeSegmentRejects(t *testing.T) {
	good := segTestEncode(t, segTestLines(500))
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 0xff
	skippable := append([]byte{0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 'x'}, good...)

	for _, tc := range []struct {
		name string
		data []byte
		why  string
	}{
		{"empty", nil, "frame header"},
		{"not zstd", []byte(`{"v":1}` + "\n"), "frame header"},
		{"header only", good[:6], ""},
		{"truncated", good[:len(good)/2], ""},
		{"truncated checksum", good[:len(good)-2], ""},
		{"flipped bit", flipped, ""},
		{"bad checksum", badCRC, ""},
		{"second frame", append(bytes.Clone(good), good...), "more than one frame"},
		{"garbage after", append(bytes.Clone(good), "junk"...), ""},
		{"skippable frame first", skippable, "skippable"},
		{"no content size", segTestStreamFrame(t, []byte("{}\n"), -1), "no content size"},
		{"no final newline", segTestRawFrame(t, []byte("{}\n{}")), "no newline"},
		{"no lines", segTestRawFrame(t, nil), "no lines"},
		{"empty line", segTestRawFrame(t, []byte("{}\n\n{}\n")), "line 1: empty line"},
		{"leading empty line", segTestRawFrame(t, []byte("\n{}\n")), "line 0: empty line"},
		{"crlf", segTestRawFrame(t, []byte("{}\r\n")), "line 0: holds a carriage return"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, err := DecodeSegment(tc.data, 1<<20)
			if err == nil {
				t.Fatalf("DecodeSegment = %d lines, want an error", len(lines))
			}
			if !errors.Is(err, ErrBadSegment) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("DecodeSegment: %v, want ErrBadSegment saying %q", err, tc.why)
			}
			err = ForEachLine(bytes.NewReader(tc.data), func(int, []byte) error { return nil })
			if !errors.Is(err, ErrBadSegment) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("ForEachLine: %v, want ErrBadSegment saying %q", err, tc.why)
			}
		})
	}
}

func TestDecodeSegmentLimit(t *testing.T) {
	seg := segTestEncode(t, segTestLines(100))
	lines, err := DecodeSegment(seg, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	if _, err := DecodeSegment(seg, size); err != nil {
		t.Errorf("limit equal to the size: %v", err)
	}
	if _, err := DecodeSegment(seg, size-1); !errors.Is(err, ErrSegmentTooLarge) {
		t.Errorf("limit one below the size: %v, want ErrSegmentTooLarge", err)
	}
	if _, err := DecodeSegment(seg, 0); err == nil {
		t.Error("limit 0: no error")
	}
}

// A bomb: a small object that decodes to far more than the limit. Whether
// its header states the size honestly, lies about it, or states none, the
// decoder must stop near the limit, allocating about that much.
func TestDecodeSegmentBomb(t *testing.T) {
	const huge = 64 << 20
	const limit = 1 << 20
	zeros := segTestZeroLines(huge)
	honest := segTestRawFrame(t, zeros, zstd.WithEncoderLevel(zstd.SpeedFastest))
	// A frame stating 200 bytes whose blocks hold far more.
	lying := segTestRelabel(t, segTestStreamFrame(t, zeros, -1), 200)
	// A small honest frame followed by the bomb.
	chained := append(segTestEncode(t, segTestLines(1)), honest...)
	zeros = nil
	runtime.GC()
	// A frame whose header states 48 MiB but holds three bytes: magic; a
	// descriptor for a 4-byte content size and a window descriptor (1 KiB);
	// the size; one last raw block of 3 bytes.
	inflated := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x80, 0x00, 0, 0, 0, 3, 0x19, 0, 0, '{', '}', '\n'}

	// Memory is bounded by the limit plus the decoder's window, or by what
	// the frame really holds.
	for _, tc := range []struct {
		name     string
		data     []byte
		limit    int
		want     error
		maxAlloc uint64
	}{
		{"honest header", honest, limit, ErrSegmentTooLarge, 64 << 10},
		{"lying header", lying, limit, ErrBadSegment, segmentWindow + 2*limit},
		{"second frame", chained, limit, ErrBadSegment, segmentWindow + 2*limit},
		{"inflated header", inflated, 64 << 20, ErrBadSegment, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) > huge/100 {
				t.Fatalf("bomb is %d bytes, not a bomb", len(tc.data))
			}
			var err error
			alloc := segTestAllocated(func() { _, err = DecodeSegment(tc.data, tc.limit) })
			if !errors.Is(err, tc.want) {
				t.Errorf("DecodeSegment: %v, want %v", err, tc.want)
			}
			if alloc > tc.maxAlloc {
				t.Errorf("DecodeSegment allocated %d KiB, want at most %d KiB", alloc>>10, tc.maxAlloc>>10)
			}
		})
	}
}

// segTestRelabel turns a frame without content size into one whose header
// states size, keeping its blocks: a frame whose header lies. With the
// single-segment flag set, the header has a 1-byte content size in place of
// the window descriptor.
func segTestRelabel(t testing.TB, frame []byte, size uint8) []byte {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(frame); err != nil || h.HasFCS || h.SingleSegment || frame[4]&0xc3 != 0 {
		t.Fatalf("unexpected frame header %+v (%v)", h, err)
	}
	out := append([]byte(nil), frame[:4]...)
	out = append(out, frame[4]|0x20, size)
	return append(out, frame[6:]...)
}

func segTestAllocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// ForEachLine must not hold the segment: its allocations stay flat as the
// segment grows.
func TestForEachLineLargeSegmentMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 96 MiB")
	}
	line := bytes.Repeat([]byte("x"), 1000)
	mk := func(n int) []byte {
		lines := make([][]byte, n)
		for i := range lines {
			lines[i] = fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, line[:i%1000])
		}
		return segTestEncode(t, lines)
	}
	small, large := mk(20000), mk(200000) // about 10 and 100 MiB of text
	count := func(seg []byte) (n int, text uint64) {
		err := ForEachLine(bytes.NewReader(seg), func(i int, l []byte) error {
			n++
			text += uint64(len(l)) + 1
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, text
	}
	count(small) // warm the decoder pool
	var n int
	var text uint64
	allocSmall := segTestAllocated(func() { count(small) })
	allocLarge := segTestAllocated(func() { n, text = count(large) })
	if n != 200000 {
		t.Fatalf("%d lines, want 200000", n)
	}
	t.Logf("%d MiB of text: allocated %d KiB; %d KiB for a tenth", text>>20, allocLarge>>10, allocSmall>>10)
	// Either may include a new decoder's 8 MiB window, if the garbage
	// collector emptied the pool.
	if limit := uint64(segmentWindow + 4<<20); allocLarge > limit || allocLarge > allocSmall+limit || text < 8*limit {
		t.Errorf("ForEachLine over %d MiB allocated %d MiB (%d MiB for a tenth of it)", text>>20, allocLarge>>20, allocSmall>>20)
	}
}

func TestForEachLineLongLines(t *testing.T) {
	// Lines longer than the reader's buffer are assembled whole.
	lines := [][]byte{bytes.Repeat([]byte("a"), 200<<10), []byte("b"), bytes.Repeat([]byte("c"), 70<<10)}
	seg := segTestEncode(t, lines)
	var got [][]byte
	if err := ForEachLine(bytes.NewReader(seg), func(i int, l []byte) error {
		got = append(got, bytes.Clone(l))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[0], lines[0]) || !bytes.Equal(got[1], lines[1]) || !bytes.Equal(got[2], lines[2]) {
		t.Errorf("long lines did not survive: %d lines", len(got))
	}
}

func TestForEachLineStopsOnCallbackError(t *testing.T) {
	seg := segTestEncode(t, segTestLines(10))
	stop := errors.New("stop")
	calls := 0
	err := ForEachLine(bytes.NewReader(seg), func(i int, l []byte) error {
		calls++
		if i == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 4 {
		t.Errorf("got %v after %d calls, want the callback's error after 4", err, calls)
	}
}

type segTestFailingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *segTestFailingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestForEachLineReadError(t *testing.T) {
	seg := segTestEncode(t, segTestLines(5000))
	boom := errors.New("connection reset")
	err := ForEachLine(&segTestFailingReader{r: bytes.NewReader(seg), n: len(seg) / 2, err: boom},
		func(int, []byte) error { return nil })
	if !errors.Is(err, boom) || errors.Is(err, ErrBadSegment) {
		t.Errorf("got %v, want the reader's error, not ErrBadSegment", err)
	}
}

// segTestZeroLines returns size bytes of lines of 4095 zero bytes.
func segTestZeroLines(size int) []byte {
	b := make([]byte, size)
	for i := 4095; i < size; i += 4096 {
		b[i] = '\n'
	}
	return b
}

// A bomb streams through ForEachLine in bounded memory, even from a
// *bytes.Buffer, which the decoder would decode whole if it saw it.
func TestForEachLineBomb(t *testing.T) {
	const size = 64 << 20
	bomb := segTestRawFrame(t, segTestZeroLines(size), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if len(bomb) >= 128<<10 {
		t.Fatalf("bomb is %d bytes, too large to tempt the decoder", len(bomb))
	}
	runtime.GC()
	n := 0
	var err error
	alloc := segTestAllocated(func() {
		err = ForEachLine(bytes.NewBuffer(bomb), func(int, []byte) error { n++; return nil })
	})
	if err != nil || n != size/4096 {
		t.Fatalf("%d lines, %v", n, err)
	}
	if alloc > size/3 {
		t.Errorf("ForEachLine over a bytes.Buffer allocated %d MiB for %d MiB of text", alloc>>20, size>>20)
	}
}

func FuzzDecodeSegment(f *testing.F) {
	f.Add(segTestEncode(f, segTestLines(3)))
	f.Add(segTestRawFrame(f, []byte("{}\n\n")))
	f.Add(segTestStreamFrame(f, []byte("{}\n"), 3))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := DecodeSegment(data, 1<<20)
		var streamed [][]byte
		serr := ForEachLine(bytes.NewReader(data), func(i int, l []byte) error {
			streamed = append(streamed, bytes.Clone(l))
			return nil
		})
		if (err == nil) != (serr == nil) {
			t.Fatalf("DecodeSegment: %v; ForEachLine: %v", err, serr)
		}
		if err != nil {
			return
		}
		if len(lines) != len(streamed) {
			t.Fatalf("DecodeSegment %d lines, ForEachLine %d", len(lines), len(streamed))
		}
		for i := range lines {
			if !bytes.Equal(lines[i], streamed[i]) {
				t.Fatalf("line %d differs", i)
			}
		}
	})
}
