package capture

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// decCoding is one content coding Decode knows.
type decCoding uint8

const (
	decGzip decCoding = iota + 1
	decDeflate
	decBrotli
	decZstd
)

const (
	// decMaxCodings bounds stacked codings; real servers apply one, rarely two.
	decMaxCodings = 4
	// decZstdWindow is the window a zstd decoder accepts even when max is
	// smaller: RFC 9659 lets a zstd content coding use up to 8 MiB, and
	// streaming encoders declare such windows whatever the body's size.
	decZstdWindow = 8 << 20
	// decMaxEmptyReads ends a decode whose reader stops making progress.
	decMaxEmptyReads = 100
)

var errDecodeLimit = errors.New("decoded data exceeds the limit")

// Decode appends to dst body decoded per contentEncoding (a Content-Encoding
// value: gzip, x-gzip, deflate, br, zstd, identity, or a comma-separated
// list applied in order, so decoded in reverse), stopping once the output
// would exceed max bytes. It returns the decoded bytes (at most max) and
// flags: FlagDecodeLimit if the output was cut at max (a compression bomb
// never expands past max, in memory or time beyond reading max bytes),
// FlagDecodeError if the data is corrupt or cut short (what was decoded
// before the error is kept), FlagUnknownEncoding for an encoding it does not
// know (body returned as is, up to max bytes).
func Decode(dst, body, contentEncoding []byte, max int) ([]byte, []string) {
	if max < 0 {
		max = 0
	}
	var list [decMaxCodings]decCoding
	codings, ok := decParseCodings(contentEncoding, list[:0])
	if !ok || len(codings) == 0 {
		n := min(len(body), max)
		dst = append(dst, body[:n]...)
		var flags []string
		if !ok {
			flags = append(flags, FlagUnknownEncoding)
		}
		if n < len(body) {
			flags = append(flags, FlagDecodeLimit)
		}
		return dst, flags
	}

	st := decStatePool.Get().(*decState)
	defer st.release()
	st.src.Reset(body)
	var src io.Reader = &st.src
	peek := body
	var err error
	var out io.Reader
	for i := len(codings) - 1; i >= 0; i-- {
		k := len(codings) - 1 - i
		if k > 0 {
			// A decoder feeding another gets a budget too: otherwise a
			// layer could expand without end into input the next layer
			// consumes without output (empty deflate blocks, skippable zstd
			// frames), costing time though max is never reached.
			hop := &st.hops[k-1]
			hop.lim = decLimitReader{r: out, n: decHopBudget(max)}
			if hop.buf == nil {
				hop.buf = bufio.NewReader(&hop.lim)
			} else {
				hop.buf.Reset(&hop.lim)
			}
			src = hop.buf
			var perr error
			if peek, perr = hop.buf.Peek(2); len(peek) == 0 && perr != io.EOF {
				err = perr
				break
			}
		}
		if len(peek) == 0 {
			// An empty body is a clean, empty stream in every coding.
			out = decEmpty{}
			continue
		}
		out, err = st.stages[k].open(codings[i], src, peek, max)
		if err != nil {
			break
		}
	}

	var limited bool
	if err == nil {
		dst, limited, err = decRead(dst, out, max, len(body))
	}
	for i := range st.hops {
		limited = limited || st.hops[i].lim.hit
	}
	if err == io.EOF {
		err = nil
	}
	// The zstd errors mean a frame asked for more memory than max allows:
	// a size limit, not corruption.
	if err != nil && (errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded)) {
		limited = true
	}
	switch {
	case limited:
		return dst, []string{FlagDecodeLimit}
	case err != nil:
		return dst, []string{FlagDecodeError}
	}
	return dst, nil
}

// decRead appends r's output to dst, at most limit bytes, growing dst as
// output arrives rather than by limit up front. limited reports that r had
// more than limit bytes. err is io.EOF at a clean end.
func decRead(dst []byte, r io.Reader, limit, bodyLen int) (out []byte, limited bool, err error) {
	start := len(dst)
	dst = slices.Grow(dst, min(limit, max(4*bodyLen, 4096)))
	empty := 0
	for len(dst)-start < limit {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, min(limit-(len(dst)-start), len(dst)-start+4096))
		}
		buf := dst[len(dst):cap(dst)]
		if room := limit - (len(dst) - start); len(buf) > room {
			buf = buf[:room]
		}
		n, err := r.Read(buf)
		dst = dst[:len(dst)+n]
		if err != nil {
			return dst, false, err
		}
		if n == 0 {
			if empty++; empty > decMaxEmptyReads {
				return dst, false, io.ErrNoProgress
			}
		}
	}
	// Exactly limit bytes so far: one more byte means the body was cut.
	var one [1]byte
	for range decMaxEmptyReads {
		n, err := r.Read(one[:])
		if n > 0 {
			return dst, true, nil
		}
		if err != nil {
			return dst, false, err
		}
	}
	return dst, false, io.ErrNoProgress
}

// decHopBudget is how much a decoder feeding another may produce. Encoded
// data is rarely larger than what it encodes, so a hop over the budget
// means the final output would pass limit too.
func decHopBudget(limit int) int64 {
	return int64(limit) + int64(limit)/2 + 64<<10
}

// decParseCodings parses a Content-Encoding value, skipping identity. ok is
// false if a coding is unknown or there are too many to decode.
func decParseCodings(v []byte, list []decCoding) ([]decCoding, bool) {
	for len(v) > 0 {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte{','})
		tok = bytes.Trim(tok, " \t")
		var c decCoding
		switch {
		case len(tok) == 0, equalFold(tok, "identity"):
			continue
		case equalFold(tok, "gzip"), equalFold(tok, "x-gzip"):
			c = decGzip
		case equalFold(tok, "deflate"):
			c = decDeflate
		case equalFold(tok, "br"):
			c = decBrotli
		case equalFold(tok, "zstd"):
			c = decZstd
		default:
			return list, false
		}
		if len(list) == decMaxCodings {
			return list, false
		}
		list = append(list, c)
	}
	return list, true
}

// decState is the per-call scaffolding, pooled with the decoders it
// borrowed so one Decode allocates nothing in the steady state.
type decState struct {
	src    bytes.Reader
	stages [decMaxCodings]decStage
	hops   [decMaxCodings - 1]decHop
}

// decHop carries one decoder's output into the next.
type decHop struct {
	lim decLimitReader
	buf *bufio.Reader
}

var decStatePool = sync.Pool{New: func() any { return new(decState) }}

func (st *decState) release() {
	for i := range st.stages {
		st.stages[i].release()
	}
	for i := range st.hops {
		h := &st.hops[i]
		h.lim = decLimitReader{}
		if h.buf != nil {
			h.buf.Reset(decEmpty{})
		}
	}
	st.src.Reset(nil)
	decStatePool.Put(st)
}

// decLimitReader reads at most n bytes from r; past that, if r has more,
// it sets hit and fails with errDecodeLimit.
type decLimitReader struct {
	r   io.Reader
	n   int64
	hit bool
	one [1]byte
}

func (l *decLimitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		n, err := l.r.Read(l.one[:])
		if n > 0 {
			l.hit = true
			return 0, errDecodeLimit
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// decEmpty is a stateless empty source, safe to share between goroutines.
type decEmpty struct{}

func (decEmpty) Read([]byte) (int, error) { return 0, io.EOF }
func (decEmpty) ReadByte() (byte, error)  { return 0, io.EOF }

// decStage holds the decoder one stage borrowed from its pool.
type decStage struct {
	gz *gzip.Reader
	fl io.ReadCloser // raw deflate; a flate.Resetter
	zl io.ReadCloser // zlib; a zlib.Resetter
	br *brotli.Reader
	zs *decZstdDecoder
}

var (
	decGzipPool   = sync.Pool{New: func() any { return new(gzip.Reader) }}
	decFlatePool  = sync.Pool{New: func() any { return flate.NewReader(decEmpty{}) }}
	decZlibPool   = sync.Pool{New: func() any { return decNewZlib() }}
	decBrotliPool = sync.Pool{New: func() any { return brotli.NewReader(nil) }}
	decZstdPool   sync.Pool // *decZstdDecoder
)

// decEmptyZlib is a complete zlib stream of no data; zlib readers can only
// be made from a valid header.
var decEmptyZlib = []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}

func decNewZlib() io.ReadCloser {
	r, err := zlib.NewReader(bytes.NewReader(decEmptyZlib))
	if err != nil {
		panic("capture: zlib reader from an empty stream: " + err.Error())
	}
	return r
}

// decZstdDecoder is a pooled zstd decoder and the memory bound it was last
// reset with.
type decZstdDecoder struct {
	d   *zstd.Decoder
	mem uint64
}

// open starts decoding c from src; peek holds src's first bytes, for
// telling zlib from raw deflate.
func (s *decStage) open(c decCoding, src io.Reader, peek []byte, limit int) (io.Reader, error) {
	switch c {
	case decGzip:
		s.gz = decGzipPool.Get().(*gzip.Reader)
		if err := s.gz.Reset(src); err != nil {
			return nil, err
		}
		return s.gz, nil
	case decDeflate:
		// RFC 9110 says deflate is zlib-wrapped; some servers send raw
		// deflate. A zlib header is two bytes whose check bits no
		// stored/fixed/dynamic raw block start is likely to match.
		if decIsZlib(peek) {
			s.zl = decZlibPool.Get().(io.ReadCloser)
			if err := s.zl.(zlib.Resetter).Reset(src, nil); err != nil {
				return nil, err
			}
			return s.zl, nil
		}
		s.fl = decFlatePool.Get().(io.ReadCloser)
		if err := s.fl.(flate.Resetter).Reset(src, nil); err != nil {
			return nil, err
		}
		return s.fl, nil
	case decBrotli:
		s.br = decBrotliPool.Get().(*brotli.Reader)
		if err := s.br.Reset(src); err != nil {
			return nil, err
		}
		return s.br, nil
	case decZstd:
		// The decoder's memory, mostly its window, is bounded by limit,
		// but never below the window RFC 9659 allows a zstd coding.
		mem := uint64(max(limit, decZstdWindow))
		z, _ := decZstdPool.Get().(*decZstdDecoder)
		if z == nil {
			d, err := zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1), // decode in the caller's goroutine
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxMemory(mem))
			if err != nil {
				return nil, err
			}
			z = &decZstdDecoder{d: d, mem: mem}
		}
		s.zs = z
		var err error
		if z.mem != mem {
			err = z.d.ResetWithOptions(src, zstd.WithDecoderMaxMemory(mem))
			z.mem = mem
		} else {
			err = z.d.Reset(src)
		}
		if err != nil {
			return nil, err
		}
		return z.d, nil
	}
	return nil, errors.New("unknown coding")
}

func (s *decStage) release() {
	if s.gz != nil {
		decGzipPool.Put(s.gz)
	}
	if s.fl != nil {
		decFlatePool.Put(s.fl)
	}
	if s.zl != nil {
		decZlibPool.Put(s.zl)
	}
	if s.br != nil {
		decBrotliPool.Put(s.br)
	}
	if s.zs != nil {
		// Reset(nil) drops the reference to the source and ends the frame.
		s.zs.d.Reset(nil)
		decZstdPool.Put(s.zs)
	}
	*s = decStage{}
}

// decIsZlib reports whether h starts with a zlib header (RFC 1950): method
// 8, a window of at most 32 KiB, and the header check.
func decIsZlib(h []byte) bool {
	return len(h) >= 2 && h[0]&0x0f == 8 && h[0]>>4 <= 7 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0
}
