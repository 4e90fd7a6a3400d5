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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// cut is a segment closed by the sequencer, fsynced in its spool file and
// waiting to be sealed.
type cut struct {
	start, end  uint64
	bytes       int64 // of record lines, newlines included
	path        string
	leaves      [][32]byte // nil after recovery: computed from the file
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

	buf []byte // spool file contents, reused

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
// the file.
func (l *sealLoop) seal(ctx context.Context, c *cut) error {
	a := l.a
	data, err := l.read(c.path)
	if err != nil {
		return fmt.Errorf("read spool file: %w", err)
	}
	lines := splitLines(data)
	if uint64(len(lines)) != c.end-c.start {
		return fmt.Errorf("spool file %s holds %d records, want %d", c.path, len(lines), c.end-c.start)
	}
	leaves := make([][32]byte, len(lines))
	for i, line := range lines {
		leaves[i] = LeafHash(line)
		if c.leaves != nil && leaves[i] != c.leaves[i] {
			return fmt.Errorf("spool file %s changed on disk: record %d differs from what was sequenced", c.path, c.start+uint64(i))
		}
	}
	if got := l.state.Tree.Size(); got != c.start {
		return fmt.Errorf("seal state is at %d but the segment starts at %d", got, c.start)
	}
	st, err := a.o.Sealer.seal(ctx, l.state, lines, leaves, data, c.first, c.last)
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

// read reads a spool file into the loop's buffer, which one seal after
// another reuses: segments are tens of megabytes.
func (l *sealLoop) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := int(fi.Size())
	l.buf = slices.Grow(l.buf[:0], n)[:n]
	if _, err := io.ReadFull(f, l.buf); err != nil {
		return nil, err
	}
	return l.buf, nil
}

// splitLines splits newline-terminated lines, without the newlines.
func splitLines(data []byte) [][]byte {
	lines := make([][]byte, 0, bytes.Count(data, []byte{'\n'}))
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lines = append(lines, data)
			break
		}
		lines = append(lines, data[:i])
		data = data[i+1:]
	}
	return lines
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
