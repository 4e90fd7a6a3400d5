package worm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A segment object is the records [start, end) of a stream as JSON lines,
// each ending in '\n', compressed as one zstd frame that states its content
// size. The encoder settings are fixed so that the same lines always give
// the same bytes with a given version of the zstd library:
//
//   - level SpeedDefault (about zstd level 3): on synthetic records it
//     compresses about 15 to 1 at over 200 MB/s; SpeedBetterCompression
//     took twice the time for the same size, SpeedBestCompression five
//     times for a quarter less, CPU taken from the gateway at every seal;
//   - an 8 MiB window, which readers must support and may not exceed
//     (segmentWindow), so that decoding any segment needs bounded memory;
//   - the single-segment flag exactly when the text fits the window, so the
//     header always states the content size (zstd omits sizes below 256
//     bytes from other frames), which readers require;
//   - the content checksum, which catches corruption before a line is
//     parsed;
//   - one frame from a synchronous streaming encoder, written one line
//     and then its newline at a time, whether the lines come from memory
//     (EncodeSegment) or from a spool file (the appender's seal).
//     EncodeAll writes other bytes for the same text once it is longer
//     than one block (128 KiB), so it is not used.
//
// The manifest pins the SHA-256 of the stored bytes, so a reader never
// needs to reproduce them; determinism only makes a re-seal after a crash
// upload identical bytes, which the create-only Store accepts.

// MaxLineBytes is the longest record line a segment may hold. It bounds the
// memory ForEachLine needs; EncodeSegment refuses longer lines so that every
// segment written can be read back.
const MaxLineBytes = 256 << 20

const segmentWindow = 8 << 20

// Errors from reading segments; the wrapping error says what and where.
var (
	// ErrBadSegment: the bytes are not a segment (corrupt or truncated
	// frame, checksum mismatch, missing final newline, empty line).
	ErrBadSegment = errors.New("malformed segment")
	// ErrSegmentTooLarge: the segment decodes to more than the caller's
	// limit.
	ErrSegmentTooLarge = errors.New("segment larger than the limit")
)

// newSegmentStreamEncoder returns a segment encoder, run synchronously, for
// single-segment frames (text up to the window) or larger ones. It needs
// no buffer the size of the segment. Its content size must be set with
// ResetContentSize before each segment.
func newSegmentStreamEncoder(single bool) *zstd.Encoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(segmentWindow),
		zstd.WithEncoderCRC(true),
		zstd.WithSingleSegment(single),
		zstd.WithEncoderConcurrency(1),
	)
	if err != nil {
		panic("worm: zstd encoder options: " + err.Error())
	}
	return enc
}

// segmentEncoderPools hold EncodeSegment's encoders for single-segment
// frames [0] and larger ones [1]. They start no goroutines, so one dropped
// by its pool needs no Close.
var segmentEncoderPools = [2]sync.Pool{
	{New: func() any { return newSegmentStreamEncoder(true) }},
	{New: func() any { return newSegmentStreamEncoder(false) }},
}

// segmentDecoderPool holds synchronous streaming decoders (no goroutines,
// so one dropped by the pool needs no Close) with the window limit, which
// bounds their memory whatever a frame header claims.
var segmentDecoderPool = sync.Pool{New: func() any {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(segmentWindow),
	)
	if err != nil {
		panic("worm: zstd decoder options: " + err.Error())
	}
	return dec
}}

// EncodeSegment appends to dst the segment object holding lines, each
// without its newline. It refuses no lines, and a line that is empty, holds
// '\n' or '\r', or is longer than MaxLineBytes.
func EncodeSegment(dst []byte, lines [][]byte) ([]byte, error) {
	n, err := segmentCheckLines(lines)
	if err != nil {
		return nil, err
	}
	k := 0
	if n > segmentWindow {
		k = 1
	}
	enc := segmentEncoderPools[k].Get().(*zstd.Encoder)
	defer segmentEncoderPools[k].Put(enc)
	out := bytes.NewBuffer(dst)
	enc.ResetContentSize(out, int64(n))
	nl := []byte{'\n'}
	for _, line := range lines {
		if _, err := enc.Write(line); err != nil {
			return nil, fmt.Errorf("encode segment: %w", err)
		}
		if _, err := enc.Write(nl); err != nil {
			return nil, fmt.Errorf("encode segment: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode segment: %w", err)
	}
	return out.Bytes(), nil
}

// segmentCheckLines checks every line and returns the text's length, each
// line followed by its newline.
func segmentCheckLines(lines [][]byte) (int, error) {
	if len(lines) == 0 {
		return 0, errors.New("encode segment: no lines")
	}
	n := 0
	for i, line := range lines {
		if err := segmentCheckLine(line); err != nil {
			return 0, fmt.Errorf("encode segment: line %d: %w", i, err)
		}
		n += len(line) + 1
	}
	return n, nil
}

func segmentCheckLine(line []byte) error {
	switch {
	case len(line) == 0:
		return errors.New("empty line")
	case len(line) > MaxLineBytes:
		return fmt.Errorf("%d bytes, more than %d", len(line), MaxLineBytes)
	case bytes.IndexByte(line, '\n') >= 0:
		return errors.New("holds a newline")
	case bytes.IndexByte(line, '\r') >= 0:
		return errors.New("holds a carriage return")
	}
	return nil
}

// segmentHeader reads the frame header and returns the content size it
// states. Trailing frames cannot hide: the bytes decoded must equal it.
func segmentHeader(b []byte) (uint64, error) {
	var h zstd.Header
	if err := h.Decode(b); err != nil {
		return 0, fmt.Errorf("%w: frame header: %v", ErrBadSegment, err)
	}
	switch {
	case h.Skippable:
		return 0, fmt.Errorf("%w: begins with a skippable frame", ErrBadSegment)
	case !h.HasFCS:
		return 0, fmt.Errorf("%w: frame header states no content size", ErrBadSegment)
	case h.DictionaryID != 0:
		return 0, fmt.Errorf("%w: frame needs dictionary %d", ErrBadSegment, h.DictionaryID)
	}
	return h.FrameContentSize, nil
}

// DecodeSegment decodes a segment object into its lines, without their
// newlines. The lines share one buffer. It fails with ErrSegmentTooLarge,
// before decoding, if the segment states more than maxBytes of content, and
// stops decoding one byte past what it states; it fails with ErrBadSegment
// if the frame is corrupt or truncated, the text does not end in a newline,
// or a line is empty or holds '\r'.
func DecodeSegment(data []byte, maxBytes int) ([][]byte, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("decode segment: limit %d is not positive", maxBytes)
	}
	size, err := segmentHeader(data)
	if err != nil {
		return nil, fmt.Errorf("decode segment: %w", err)
	}
	if size > uint64(maxBytes) {
		return nil, fmt.Errorf("decode segment: %w: states %d bytes, limit %d", ErrSegmentTooLarge, size, maxBytes)
	}
	text, err := segmentDecodeText(data, size)
	if err != nil {
		return nil, fmt.Errorf("decode segment: %w", err)
	}
	if len(text) == 0 {
		return nil, fmt.Errorf("decode segment: %w: no lines", ErrBadSegment)
	}
	if text[len(text)-1] != '\n' {
		return nil, fmt.Errorf("decode segment: %w: the last line has no newline", ErrBadSegment)
	}
	lines := make([][]byte, 0, bytes.Count(text, []byte{'\n'}))
	for i := 0; len(text) > 0; i++ {
		j := bytes.IndexByte(text, '\n')
		line := text[:j:j]
		if err := segmentCheckReadLine(line); err != nil {
			return nil, fmt.Errorf("decode segment: %w: line %d: %v", ErrBadSegment, i, err)
		}
		lines = append(lines, line)
		text = text[j+1:]
	}
	return lines, nil
}

// segmentDecodeText decodes data, which states size bytes of content.
// Memory grows with the bytes actually decoded, never past size+1, so a
// header that lies cannot make it allocate more than the content it has.
func segmentDecodeText(data []byte, size uint64) ([]byte, error) {
	dec := segmentDecoderPool.Get().(*zstd.Decoder)
	defer func() {
		_ = dec.Reset(nil)
		segmentDecoderPool.Put(dec)
	}()
	if err := dec.Reset(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSegment, err)
	}
	// Record text compresses about tenfold; start near there.
	text := make([]byte, 0, min(size+1, 64<<10+16*uint64(len(data))))
	for {
		if len(text) == cap(text) {
			text = slices.Grow(text, int(min(uint64(cap(text)), size+1-uint64(len(text)))))
		}
		n, err := dec.Read(text[len(text):cap(text)])
		text = text[:len(text)+n]
		if uint64(len(text)) > size {
			return nil, fmt.Errorf("%w: decodes to more than the %d bytes the frame header states (more than one frame?)", ErrBadSegment, size)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadSegment, err)
		}
	}
	if uint64(len(text)) != size {
		return nil, fmt.Errorf("%w: decodes to %d bytes, frame header states %d", ErrBadSegment, len(text), size)
	}
	return text, nil
}

func segmentCheckReadLine(line []byte) error {
	switch {
	case len(line) == 0:
		return errors.New("empty line")
	case bytes.IndexByte(line, '\r') >= 0:
		return errors.New("holds a carriage return")
	}
	return nil
}

// segmentReader keeps the error of the reader under a segment, so that a
// failing read is not reported as a malformed segment. The bufio.Reader in
// front of the decoder also hides the caller's reader: given a small
// *bytes.Buffer, the decoder would decode it whole, past the window's
// memory bound.
type segmentReader struct {
	r   io.Reader
	err error
}

func (sr *segmentReader) Read(p []byte) (int, error) {
	n, err := sr.r.Read(p)
	if err != nil && err != io.EOF {
		sr.err = err
	}
	return n, err
}

// segmentLineBuf is the first size of a segmentLineReader's buffer, and
// segmentLineBufKeep the largest one pooled: a segment of long lines grows
// its buffer, and the pool should not pin that memory for short ones.
const (
	segmentLineBuf     = 64 << 10
	segmentLineBufKeep = 1 << 20
)

// segmentReaders are the readers ForEachLine stacks for one segment. They
// are pooled because a verifier reads segment after segment, and their
// buffers would otherwise be allocated and cleared for each.
type segmentReaders struct {
	sr segmentReader
	in *bufio.Reader
	lr segmentLineReader
}

var segmentReadersPool = sync.Pool{New: func() any {
	return &segmentReaders{
		in: bufio.NewReaderSize(nil, 64<<10),
		lr: segmentLineReader{buf: make([]byte, 0, segmentLineBuf)},
	}
}}

func (rs *segmentReaders) release() {
	rs.sr = segmentReader{}
	rs.in.Reset(nil)
	if cap(rs.lr.buf) > segmentLineBufKeep {
		return
	}
	rs.lr = segmentLineReader{buf: rs.lr.buf[:0]}
	segmentReadersPool.Put(rs)
}

// ForEachLine streams the segment object read from r and calls fn with each
// line (without its newline) and its number from 0. line is valid only
// during the call. Memory is bounded by the zstd window (8 MiB) and the
// longest line (at most MaxLineBytes), not by the segment's size. An error
// from fn stops the walk and is returned as it is; format errors match
// ErrBadSegment. A segment with no lines is an error.
func ForEachLine(r io.Reader, fn func(i int, line []byte) error) error {
	rs := segmentReadersPool.Get().(*segmentReaders)
	defer rs.release()
	rs.sr.r = r
	rs.in.Reset(&rs.sr)
	// Peek errors show up as a short header below.
	head, _ := rs.in.Peek(zstd.HeaderMaxSize)
	if rs.sr.err != nil {
		return fmt.Errorf("read segment: %w", rs.sr.err)
	}
	size, err := segmentHeader(head)
	if err != nil {
		return fmt.Errorf("read segment: %w", err)
	}
	dec := segmentDecoderPool.Get().(*zstd.Decoder)
	if err := dec.Reset(rs.in); err != nil {
		return fmt.Errorf("read segment: %w: %v", ErrBadSegment, err)
	}
	defer func() {
		// Drop the reference to r before pooling the decoder.
		_ = dec.Reset(nil)
		segmentDecoderPool.Put(dec)
	}()
	lr := &rs.lr
	lr.r = dec
	i := 0
	for {
		line, err := lr.next()
		if err == io.EOF {
			break
		}
		if rs.sr.err != nil {
			return fmt.Errorf("read segment: %w", rs.sr.err)
		}
		if err != nil {
			return fmt.Errorf("read segment: line %d: %w", i, err)
		}
		if err := segmentCheckReadLine(line); err != nil {
			return fmt.Errorf("read segment: %w: line %d: %v", ErrBadSegment, i, err)
		}
		if err := fn(i, line); err != nil {
			return err
		}
		i++
	}
	switch {
	case lr.n != size:
		return fmt.Errorf("read segment: %w: decodes to %d bytes, frame header states %d (more than one frame?)", ErrBadSegment, lr.n, size)
	case i == 0:
		return fmt.Errorf("read segment: %w: no lines", ErrBadSegment)
	}
	return nil
}

// segmentLineReader splits decoded text into lines, counting the bytes.
// Lines are slices of its one buffer, which the decoder fills directly:
// the text is copied once, out of the decoder's window, and a line is
// moved only when it straddles the end of the buffer.
type segmentLineReader struct {
	r   io.Reader
	buf []byte // buf[off:] is text read but not yet returned
	off int
	err error // r's error, which follows the text in buf
	n   uint64
}

// next returns the next line without its newline, io.EOF after the last
// one, or an error for a line without a newline or over MaxLineBytes.
func (lr *segmentLineReader) next() ([]byte, error) {
	scanned := 0 // bytes of buf[off:] known to hold no newline
	empty := 0   // reads in a row that returned nothing
	for {
		if j := bytes.IndexByte(lr.buf[lr.off+scanned:], '\n'); j >= 0 {
			end := lr.off + scanned + j
			line := lr.buf[lr.off:end:end]
			lr.off = end + 1
			return line, nil
		}
		scanned = len(lr.buf) - lr.off
		switch {
		case lr.err == io.EOF && scanned == 0:
			return nil, io.EOF
		case lr.err == io.EOF:
			return nil, fmt.Errorf("%w: the last line has no newline", ErrBadSegment)
		case lr.err != nil:
			return nil, fmt.Errorf("%w: %v", ErrBadSegment, lr.err)
		case scanned > MaxLineBytes:
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrBadSegment, MaxLineBytes)
		case empty > 100:
			return nil, fmt.Errorf("%w: %v", ErrBadSegment, io.ErrNoProgress)
		}
		if lr.off > 0 {
			lr.buf = lr.buf[:copy(lr.buf, lr.buf[lr.off:])]
			lr.off = 0
		}
		if len(lr.buf) == cap(lr.buf) {
			lr.buf = slices.Grow(lr.buf, min(max(cap(lr.buf), segmentLineBuf), MaxLineBytes+1-len(lr.buf)))
		}
		n, err := lr.r.Read(lr.buf[len(lr.buf):cap(lr.buf)])
		lr.buf = lr.buf[:len(lr.buf)+n]
		lr.n += uint64(n)
		lr.err = err
		if n == 0 && err == nil {
			empty++
		} else {
			empty = 0
		}
	}
}
