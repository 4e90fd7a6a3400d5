package worm

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.uber.org/zap"
)

// cut is a segment closed by the sequencer, fsynced in its spool file and
// waiting to be sealed.
type cut struct {
	start, end  uint64
	bytes       int64 // of record lines, newlines included
	path        string
	leaves      [][32]byte // as the sequencer computed them, or as recovery read them from the file
	sums        []uint64   // each line's lineSum, taken with its leaf
	first, last time.Time
	root        [32]byte // tree root at end, as the sequencer computed it
}

// sealLoop seals cut segments in order, retrying with back-off while the
// store fails. Sealed segments leave the spool only after the new state is
// persisted, so a crash at any point is recovered by sealing again, which
// Seal makes harmless.
type sealLoop struct {
	a     *Appender
	state SealState

	// Reused from one seal to the next: segments are tens of megabytes,
	// and fresh memory that large costs page faults by the thousand.
	lines segmentLineReader // the spool file, line by line
	encs  [2]*zstd.Encoder  // for single-segment frames, and larger ones
	out   bytes.Buffer      // the segment object
	nl    [1]byte

	// pendingBytes are the record bytes of the queued cuts.
	pendingBytes atomic.Int64

	mu      sync.Mutex
	queue   []*cut
	closed  bool
	lastErr error
	wake    chan struct{}
}

func (l *sealLoop) add(c *cut) {
	l.pendingBytes.Add(c.bytes)
	l.mu.Lock()
	l.queue = append(l.queue, c)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// close says no more cuts will come: the loop stops once the queue is empty.
func (l *sealLoop) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// spoolFull reports whether the queued cuts have reached the spool's
// bound.
func (l *sealLoop) spoolFull() bool { return l.pendingBytes.Load() >= l.a.o.MaxSpool }

func (l *sealLoop) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// sealSlice is how much record text the seal loop compresses between
// pauses while it paces itself.
const sealSlice = 64 << 10

// paced says the seal loop should pause after each sealSlice of text for
// as long as compressing it took, using at most half a CPU: it has no
// other segment waiting, the spool is not full, and it is not closing. Sealing a segment takes a CPU
// for a few hundred milliseconds; on a small machine under load, a burst
// that long leaves the requests too little of the rest, and their p99
// grew several times at each seal. Paced, a seal takes twice as long; with
// a backlog, or at shutdown, it runs at full speed.
func (l *sealLoop) paced() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.closed && len(l.queue) == 1 && !l.spoolFull()
}

func (l *sealLoop) lastError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

func (l *sealLoop) run() {
	a := l.a
	defer close(a.sealDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.sealStop:
			cancel()
		case <-ctx.Done():
		}
	}()
	failures := 0
	var since time.Time
	for {
		l.mu.Lock()
		var c *cut
		if len(l.queue) > 0 {
			c = l.queue[0]
		}
		closed := l.closed
		l.mu.Unlock()
		if c == nil {
			if closed {
				return
			}
			select {
			case <-l.wake:
			case <-a.sealStop:
				return
			}
			continue
		}
		err := l.seal(ctx, c)
		l.mu.Lock()
		l.lastErr = err
		if err == nil {
			l.queue = l.queue[1:]
		}
		pending := len(l.queue)
		l.mu.Unlock()
		if err == nil {
			l.pendingBytes.Add(-c.bytes)
			if failures >= alertAfter {
				a.system(sysAlert("store_recovered", "info", fmt.Sprintf("the store takes segments again after %d failed attempts since %s; %d segment(s) still to seal",
					failures, since.UTC().Format(TimeLayout), pending), pending))
			}
			failures = 0
			continue
		}
		if failures == 0 {
			since = time.Now()
		}
		failures++
		a.stats.sealErrors.Add(1)
		if failures == alertAfter {
			a.system(sysAlert("store_unreachable", "warning", fmt.Sprintf("sealing segment [%d, %d) has failed %d times since %s; segments wait in the spool: %v",
				c.start, c.end, failures, since.UTC().Format(TimeLayout), err), pending))
		}
		wait := min(a.o.RetryInterval<<min(failures-1, 5), 30*a.o.RetryInterval)
		a.o.Log.Warn("seal failed; retrying", zap.String("stream", a.o.Stream),
			zap.Uint64("start", c.start), zap.Uint64("end", c.end), zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-time.After(wait):
		case <-a.sealStop:
			return
		}
	}
}

// alertAfter is how many failed seals in a row (at least a second apart)
// make an alert record.
const alertAfter = 2

// seal reads a cut segment back from its spool file, checks it against
// what the sequencer hashed, seals it, persists the new state and removes
// the file. The file is streamed: each line is checked and compressed as
// it is read, so that memory stays bounded by the compressor's window
// whatever the segment's size.
func (l *sealLoop) seal(ctx context.Context, c *cut) error {
	a := l.a
	leaves, seg, err := l.encode(c)
	if err != nil {
		return err
	}
	if got := l.state.Tree.Size(); got != c.start {
		return fmt.Errorf("seal state is at %d but the segment starts at %d", got, c.start)
	}
	st, err := a.o.Sealer.sealSegment(ctx, l.state, leaves, seg, c.first, c.last)
	if err != nil {
		return err
	}
	if st.Tree.Root() != c.root {
		// Only a bug gets here; stop rather than seal on a wrong tree.
		return fmt.Errorf("sealed root of [%d, %d) differs from the sequencer's", c.start, c.end)
	}
	if err := writeState(a.o.Spool, st); err != nil {
		return err
	}
	l.state = st
	a.stats.sealed.Store(st.Tree.Size())
	a.stats.seals.Add(1)
	if err := os.Remove(c.path); err != nil {
		a.o.Log.Warn("remove sealed spool file", zap.String("file", c.path), zap.Error(err))
	}
	return nil
}

// encode reads the spool file of c and returns its records' leaf hashes
// and the segment object, which stays valid until the next call. Each line
// is checked against the lineSum taken with its leaf hash, so a spool file
// changed on disk is never sealed.
func (l *sealLoop) encode(c *cut) ([][32]byte, []byte, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return nil, nil, fmt.Errorf("read spool file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read spool file: %w", err)
	}
	want := c.end - c.start
	if uint64(len(c.leaves)) != want || len(c.sums) != len(c.leaves) {
		return nil, nil, fmt.Errorf("cut [%d, %d) holds %d leaf hashes and %d line sums", c.start, c.end, len(c.leaves), len(c.sums))
	}
	single := 0
	if fi.Size() > segmentWindow {
		single = 1
	}
	if l.encs[single] == nil {
		l.encs[single] = newSegmentStreamEncoder(single == 0)
	}
	enc := l.encs[single]
	l.out.Reset()
	enc.ResetContentSize(&l.out, fi.Size())
	l.lines = segmentLineReader{r: f, buf: l.lines.buf[:0]}
	l.nl[0] = '\n'
	var n uint64
	slice, began := 0, time.Now()
	for ; ; n++ {
		line, err := l.lines.next()
		if err == io.EOF {
			break
		}
		if err == nil {
			err = segmentCheckLine(line)
		}
		if err == nil && n >= want {
			err = fmt.Errorf("more than the %d records cut", want)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("spool file %s, record %d: %w", c.path, c.start+n, err)
		}
		if l.a.lineSum(line) != c.sums[n] {
			return nil, nil, fmt.Errorf("spool file %s changed on disk: record %d differs from what was sequenced", c.path, c.start+n)
		}
		if _, err := enc.Write(line); err != nil {
			return nil, nil, fmt.Errorf("compress segment: %w", err)
		}
		if _, err := enc.Write(l.nl[:]); err != nil {
			return nil, nil, fmt.Errorf("compress segment: %w", err)
		}
		if slice += len(line) + 1; slice >= sealSlice {
			if l.paced() {
				time.Sleep(time.Since(began))
			}
			slice, began = 0, time.Now()
		}
	}
	if n != want {
		return nil, nil, fmt.Errorf("spool file %s holds %d records, want %d", c.path, n, want)
	}
	if err := enc.Close(); err != nil {
		return nil, nil, fmt.Errorf("compress segment: %w", err)
	}
	return c.leaves, l.out.Bytes(), nil
}

// spoolState is state.json: the stream's SealState after the last seal.
type spoolState struct {
	V            int      `json:"v"`
	Stream       string   `json:"stream"`
	Size         uint64   `json:"size"`
	Root         string   `json:"root"`
	Chain        string   `json:"chain"`
	Range        []string `json:"range"`
	PrevManifest string   `json:"prev_manifest"`
	LastSigned   uint64   `json:"last_signed"`
}

const stateFile = "state.json"

// writeState replaces state.json atomically: a temporary file, fsynced,
// renamed over it, and the directory fsynced.
func writeState(dir string, st SealState) error {
	s := spoolState{V: 1, Stream: st.Stream, Size: st.Tree.Size(), Root: hexOf(st.Tree.Root()),
		Chain: hexOf(st.Tree.Chain()), PrevManifest: hexOf(st.PrevManifest), LastSigned: st.LastSigned}
	for _, h := range st.Tree.RangeHashes() {
		s.Range = append(s.Range, hexOf(h))
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	path := filepath.Join(dir, stateFile)
	f, err := os.CreateTemp(dir, ".state.json.tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

// readState reads state.json; a missing file is the state of a new stream.
func readState(dir, stream string) (SealState, bool, error) {
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return SealState{Stream: stream, Tree: NewTree()}, false, nil
	}
	if err != nil {
		return SealState{}, false, err
	}
	bad := func(format string, args ...any) (SealState, bool, error) {
		return SealState{}, false, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	var s spoolState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return bad("%v", err)
	}
	if s.V != 1 {
		return bad("version %d, want 1", s.V)
	}
	if s.Stream != stream {
		return bad("holds stream %q, but this spool is for stream %q", s.Stream, stream)
	}
	var root, chain, prev [32]byte
	for _, f := range []struct {
		name string
		hex  string
		dst  *[32]byte
	}{{"root", s.Root, &root}, {"chain", s.Chain, &chain}, {"prev_manifest", s.PrevManifest, &prev}} {
		if err := unhex(f.hex, f.dst); err != nil {
			return bad("%s: %v", f.name, err)
		}
	}
	rng := make([][32]byte, len(s.Range))
	for i, h := range s.Range {
		if err := unhex(h, &rng[i]); err != nil {
			return bad("range[%d]: %v", i, err)
		}
	}
	tree, err := ResumeTree(s.Size, chain, rng, root)
	if err != nil {
		return bad("%v", err)
	}
	if s.LastSigned != s.Size {
		return bad("last signed size %d differs from size %d", s.LastSigned, s.Size)
	}
	return SealState{Stream: stream, Tree: tree, PrevManifest: prev, LastSigned: s.LastSigned}, true, nil
}

func hexOf(h [32]byte) string { return hex.EncodeToString(h[:]) }

func unhex(s string, dst *[32]byte) error {
	if len(s) != 64 {
		return fmt.Errorf("%q is not 64 hex digits", s)
	}
	_, err := hex.Decode(dst[:], []byte(s))
	return err
}
