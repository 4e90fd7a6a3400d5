package worm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditgate/auditgate/worm/s3test"
)

// These benchmarks are run by hand to size a gateway's trail; nothing
// asserts on their timing:
//
//	go test -run '^$' -bench 'BenchmarkAppend|BenchmarkSeal' -benchtime 2s ./worm
//
// They write a real spool in a temporary directory and fsync it, so their
// figures are the disk's as much as the code's.

// benchRecordSize is the length of every benchmark record line.
const benchRecordSize = 2048

// benchPoolSize is how many distinct lines the benchmarks cycle through.
// Their 20 MB exceed the 8 MiB zstd window of a segment, so sealing
// compresses them as it would real records, never finding a repeat.
const benchPoolSize = 10000

// benchParallelCallers is how many goroutines, at least, the parallel
// benchmarks append from: strict throughput depends on how many records share an
// fsync.
const benchParallelCallers = 16

// benchIDDigits is where in every line the last 12 hex digits of its id
// are, so that a caller can number a copy without building it again.
var benchIDDigits = len(`{"v":1,"id":"0190a4c0-0000-7000-8000-`)

var benchWords = strings.Fields(`the a of to and in is that for it as with was on be by this are
	or at from have an they which one you were all we her she there would their will when who
	him been has more if no out do so can what up said about other into than its time only could
	new them man some these then two first may any like now my such make over our even most me
	state after also made many did must before back see through way where get much go well your
	know should down work year because come people just say each those take day good how long
	request response model token latency gateway policy audit trail segment record stream error
	retry upstream tenant customer invoice summary translate classify extract answer question`)

// benchLines are the benchmarks' record lines: inference records of
// exactly benchRecordSize bytes, each with a prompt and a completion of
// word-like text and a hash, so that they compress like real ones.
var benchLines = sync.OnceValue(func() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lines := make([][]byte, benchPoolSize)
	for i := range lines {
		system, user := benchText(rng, 120), benchText(rng, 200+rng.IntN(500))
		in, out, ms := 50+rng.IntN(400), 100+rng.IntN(800), 200+rng.IntN(3000)
		line := func(completion string) []byte {
			return fmt.Appendf(make([]byte, 0, benchRecordSize),
				`{"v":1,"id":"0190a4c0-0000-7000-8000-%012x","time":"%s","kind":"inference","stream":"bench",`+
					`"route":"chat","model":"model-large-2","request":{"sha256":"%x","messages":[`+
					`{"role":"system","content":"%s"},{"role":"user","content":"%s"}]},`+
					`"response":{"status":200,"finish":"stop","content":"%s"},`+
					`"usage":{"input_tokens":%d,"output_tokens":%d},"latency_ms":%d}`,
				i, base.Add(time.Duration(i)*time.Millisecond).Format(TimeLayout),
				sha256.Sum256(fmt.Appendf(nil, "prompt %d", i)), system, user, completion, in, out, ms)
		}
		// The completion pads the line to the record size exactly.
		lines[i] = line(benchText(rng, benchRecordSize-len(line(""))))
		if len(lines[i]) != benchRecordSize {
			panic(fmt.Sprintf("benchmark record of %d bytes", len(lines[i])))
		}
	}
	return lines
})

// benchText returns n bytes of words.
func benchText(rng *rand.Rand, n int) string {
	var s strings.Builder
	s.Grow(n + 16)
	for s.Len() < n {
		if s.Len() > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(benchWords[rng.IntN(len(benchWords))])
	}
	return s.String()[:n]
}

// benchLine copies the pool's line for record n into buf and numbers its
// id with n, which keeps every record distinct at the cost of a copy.
func benchLine(buf []byte, n uint64) []byte {
	lines := benchLines()
	buf = append(buf[:0], lines[n%uint64(len(lines))]...)
	const hex = "0123456789abcdef"
	for i := benchIDDigits + 11; i >= benchIDDigits; i-- {
		buf[i] = hex[n&0xf]
		n >>= 4
	}
	return buf
}

// BenchmarkAppend measures records written to the spool, fsynced, and
// sealed into a MemStore with the default options, from one caller and
// from benchParallelCallers. The timed region ends when Close returns, so
// async figures count records on disk and sealed, not records queued;
// spool-records/s stops the clock when the last record is fsynced instead,
// before Close seals the segments still pending.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []struct {
		name   string
		strict bool
	}{{"async", false}, {"strict", true}} {
		b.Run(mode.name, func(b *testing.B) {
			b.Run("serial", func(b *testing.B) { benchAppend(b, mode.strict, false) })
			b.Run("parallel", func(b *testing.B) { benchAppend(b, mode.strict, true) })
		})
	}
}

// appendBench is one run of BenchmarkAppend.
type appendBench struct {
	a      *Appender
	strict bool
	next   atomic.Uint64 // number of the next record
	// pushbacks counts ErrPushback from AppendSync.
	pushbacks atomic.Int64
}

func benchAppend(b *testing.B, strict, parallel bool) {
	benchLines() // build the pool before the clock starts
	h := &appendBench{a: openBenchAppender(b), strict: strict}
	b.SetBytes(benchRecordSize)
	b.ReportAllocs()
	base := h.a.Stats()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(max(1, (benchParallelCallers+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			var buf []byte
			for pb.Next() {
				buf = benchLine(buf, h.next.Add(1))
				if err := h.append(b.Context(), buf); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		var buf []byte
		for range b.N {
			buf = benchLine(buf, h.next.Add(1))
			if err := h.append(b.Context(), buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	st := h.waitSpooled(b, base, uint64(b.N))
	spooled := b.Elapsed()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h.a.Close(ctx); err != nil {
		b.Fatalf("close: %v", err)
	}
	b.StopTimer()

	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/spooled.Seconds(), "spool-records/s")
	if syncs := st.Syncs - base.Syncs; syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "records/fsync")
	}
	b.ReportMetric(float64(h.pushbacks.Load()), "pushbacks")
	// A refused strict record counts as lost in the trail's gap records,
	// though the benchmark gives it again and it is written.
	end := h.a.Stats()
	if n := end.Lost - base.Lost; n > 0 {
		b.ReportMetric(float64(n), "lost")
	}
	// Segments cut but not yet sealed once the spool held every record:
	// above zero, sealing rather than the spool bounds records/s.
	b.ReportMetric(float64(st.PendingSegments), "unsealed")
	b.ReportMetric(float64(end.Seals-base.Seals), "seals")
}

// append writes one record as the gateway does: a strict record waits
// for its fsync (and is tried again after a pushback, as a client answered
// 503 would), an async record waits for room in the queue.
func (h *appendBench) append(ctx context.Context, line []byte) error {
	if !h.strict {
		return h.a.AppendWait(ctx, line)
	}
	for {
		err := h.a.AppendSync(ctx, line)
		if !errors.Is(err, ErrPushback) {
			return err
		}
		h.pushbacks.Add(1)
		time.Sleep(time.Millisecond)
	}
}

// waitSpooled waits until the n records appended since base are fsynced
// in the spool, with the gap and heartbeat records written since.
func (h *appendBench) waitSpooled(b *testing.B, base AppenderStats, n uint64) AppenderStats {
	deadline := time.Now().Add(time.Minute)
	for {
		st := h.a.Stats()
		own := st.Gaps - base.Gaps + st.Heartbeats - base.Heartbeats
		if st.Size >= base.Size+n+own {
			return st
		}
		if time.Now().After(deadline) {
			b.Fatalf("records still not fsynced after a minute: %+v", st)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func openBenchAppender(b *testing.B) *Appender {
	b.Helper()
	k := newTestKey(b, "gw-bench")
	a, err := OpenAppender(context.Background(), AppenderOptions{
		Stream: "bench",
		Spool:  b.TempDir(),
		Sealer: &Sealer{Store: NewMemStore(), Signer: k.signer},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		// A benchmark that failed part way leaves the appender open.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		a.Close(ctx)
	})
	return a
}

// BenchmarkSeal measures sealing one segment of benchPoolSize records of
// benchRecordSize bytes: leaf hashes, zstd, the signed checkpoint and
// manifest, and the store's writes. Each iteration seals the next segment
// of one stream, continuing the state the last returned, since a FileStore
// takes each key once.
func BenchmarkSeal(b *testing.B) {
	for _, store := range []struct {
		name string
		new  func(b *testing.B) Store
	}{
		{"file", func(b *testing.B) Store {
			s, err := NewFileStore(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"mem", func(b *testing.B) Store { return NewMemStore() }},
		// A local Versity Gateway with Object Lock: every object is one
		// PUT, then read back by version id.
		{"s3", func(b *testing.B) Store {
			srv := s3test.Start(b)
			srv.MakeLockedBucket(b, "bench")
			access, secret := srv.Credentials()
			s, err := NewS3Store(S3Options{Bucket: "bench", Endpoint: srv.Endpoint(), Insecure: true,
				Region: s3test.Region, AccessKey: access, SecretKey: secret})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	} {
		b.Run(store.name, func(b *testing.B) {
			lines := benchLines()
			first, _ := recordTime(lines[0])
			last, _ := recordTime(lines[len(lines)-1])
			var bytes int64
			for _, line := range lines {
				bytes += int64(len(line))
			}
			k := newTestKey(b, "gw-bench")
			s := &Sealer{Store: store.new(b), Signer: k.signer}
			st := SealState{Stream: "bench"}
			b.SetBytes(bytes)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				var err error
				if st, err = s.Seal(b.Context(), st, lines, first, last); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "segments/s")
		})
	}
}
