package worm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

const cleanMarker = "clean"

// OpenAppender opens a stream's spool and starts its appender. A spool left
// by a crash is recovered first: a torn last line is cut, the tree and the
// chain resume from the last whole record, a gap record says what may be
// missing, and every segment waiting in the spool is queued for sealing.
// ctx bounds only the opening; the appender runs until Close.
func OpenAppender(ctx context.Context, o AppenderOptions) (*Appender, error) {
	if err := ValidateStream(o.Stream); err != nil {
		return nil, fmt.Errorf("open trail: %w", err)
	}
	if o.Spool == "" {
		return nil, errors.New("open trail: no spool directory")
	}
	if o.Sealer == nil || o.Sealer.Store == nil || o.Sealer.Signer == nil {
		return nil, errors.New("open trail: no sealer, store or signing key")
	}
	o.setDefaults()
	if err := os.MkdirAll(o.Spool, 0o700); err != nil {
		return nil, fmt.Errorf("open trail: %w", err)
	}
	unlock, err := lockSpool(o.Spool)
	if err != nil {
		return nil, fmt.Errorf("open trail: %w", err)
	}
	a, err := openAppender(ctx, o)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("open trail of stream %s in %s: %w", o.Stream, o.Spool, err)
	}
	a.unlock = unlock
	go a.seq.run()
	go a.sealer.run()
	return a, nil
}

func openAppender(ctx context.Context, o AppenderOptions) (*Appender, error) {
	st, hadState, err := readState(o.Spool, o.Stream)
	if err != nil {
		return nil, err
	}
	clean := fileExists(filepath.Join(o.Spool, cleanMarker))
	lost, err := readLostFile(o.Spool)
	if err != nil {
		return nil, err
	}
	files, err := spoolFiles(o.Spool)
	if err != nil {
		return nil, err
	}
	if !hadState && len(files) == 0 {
		switch err := checkNewStream(ctx, o.Sealer, o.Stream); {
		case errors.Is(err, ErrUnavailable):
			// An unreachable store does not stop traffic: segments wait in
			// the spool. Should the store hold this stream after all, its
			// first seal fails with a conflict and says so.
			o.Log.Warn("the store is unreachable: cannot check that this stream is new; starting anyway", zap.String("stream", o.Stream), zap.Error(err))
		case err != nil:
			return nil, err
		}
	}

	a := &Appender{
		o:         o,
		in:        make(chan *entry, o.QueueRecords),
		budget:    newBudget(o.QueueBytes),
		stop:      make(chan struct{}),
		closingCh: make(chan struct{}),
		seqDone:   make(chan struct{}),
		sealDone:  make(chan struct{}),
		sealStop:  make(chan struct{}),
		sysIn:     make(chan *sysRecord, 16),
		recent:    recentRing{max: o.Recent},
		lineSeed:  maphash.MakeSeed(),
	}
	a.sealer = &sealLoop{a: a, state: st, wake: make(chan struct{}, 1)}
	a.stats.sealed.Store(st.Tree.Size())

	// Read and check every file before changing any: a damaged spool is
	// refused whole rather than repaired by dropping records.
	tree := st.Tree.Clone()
	var (
		torn     int64
		lastTime time.Time
		sealed   []string // sealed by a run that stopped before removing them
		cuts     []*cut
		tornPath string
		tornAt   int64
	)
	for i, start := range files {
		path := filepath.Join(o.Spool, spoolName(start))
		if start < st.Tree.Size() {
			// Segments are sealed whole, and the state moves only after a
			// seal: a file starting below it was sealed.
			sealed = append(sealed, path)
			continue
		}
		if start != tree.Size() {
			return nil, fmt.Errorf("spool file %s starts at record %d, but the records before it end at %d: the spool is not one stream's; move it aside", path, start, tree.Size())
		}
		r, err := readSpoolFile(path, i == len(files)-1)
		if err != nil {
			return nil, err
		}
		if r.torn > 0 {
			torn, tornPath, tornAt = r.torn, path, r.keep
		}
		if len(r.lines) == 0 {
			sealed = append(sealed, path) // nothing to seal: remove it
			continue
		}
		c := &cut{start: start, end: start + uint64(len(r.lines)), path: path, first: r.first, last: r.last, bytes: int64(len(r.data))}
		c.leaves, c.sums = make([][32]byte, len(r.lines)), make([]uint64, len(r.lines))
		for i, line := range r.lines {
			c.leaves[i], c.sums[i] = LeafHash(line), a.lineSum(line)
			tree.Append(c.leaves[i])
		}
		c.root = tree.Root()
		cuts = append(cuts, c)
		lastTime = r.last
	}
	if tornPath != "" {
		if err := truncateFile(tornPath, tornAt); err != nil {
			return nil, err
		}
		o.Log.Warn("cut a torn record from the spool", zap.String("stream", o.Stream), zap.String("file", tornPath), zap.Int64("bytes", torn))
	}
	for _, path := range sealed {
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	a.sealer.queue = cuts
	for _, c := range cuts {
		a.sealer.pendingBytes.Add(c.bytes)
	}

	s := &sequencer{a: a, o: &a.o, tree: tree, seg: openSegment{start: tree.Size()},
		syncCh: make(chan *syncReq), doneCh: make(chan *syncReq)}
	a.seq = s
	s.markSynced()
	if err := s.open(); err != nil {
		return nil, err
	}
	go s.syncer()
	// From here on a crash is an unclean shutdown again.
	if clean {
		if err := os.Remove(filepath.Join(o.Spool, cleanMarker)); err != nil {
			return nil, err
		}
	}
	if !clean && (hadState || len(files) > 0) {
		var after *uint64
		if n := tree.Size(); n > 0 {
			after = new(n - 1)
		}
		s.system(sysGapUnclean(after, lastTime, torn))
		a.stats.gaps.Add(1)
		o.Log.Warn("the trail was not closed cleanly; wrote a gap record", zap.String("stream", o.Stream), zap.Uint64("size", tree.Size()))
	}
	if lost.N > 0 {
		// Counted by a run that stopped while its spool was failing.
		s.addLoss(lost.N, lost.First, lost.Last)
		s.writeLoss()
	}
	s.system(sysEvent("trail.start", o.Heartbeat))
	s.flush()
	s.syncNow()
	if s.down != nil {
		close(s.syncCh)
		if s.f != nil {
			s.f.Close()
		}
		return nil, s.down
	}
	if err := removeLostFile(o.Spool); err != nil {
		o.Log.Warn("remove the lost-records file", zap.Error(err))
	}
	return a, syncDir(o.Spool)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func writeMarker(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, cleanMarker), nil, 0o600); err != nil {
		return fmt.Errorf("write clean-shutdown marker: %w", err)
	}
	return syncDir(dir)
}

// lostFile keeps, across a stop while the spool was failing, the count of
// records lost that no gap record states yet.
const lostFile = "lost.json"

type lostRecords struct {
	N           uint64    `json:"lost"`
	First, Last time.Time `json:",omitempty"`
}

func writeLostFile(dir string, n uint64, first, last time.Time) error {
	if n == 0 {
		return nil
	}
	data, _ := json.Marshal(lostRecords{N: n, First: first, Last: last})
	if err := os.WriteFile(filepath.Join(dir, lostFile), data, 0o600); err != nil {
		return fmt.Errorf("keep the count of %d lost records: %w", n, err)
	}
	return syncDir(dir)
}

func readLostFile(dir string) (lostRecords, error) {
	var l lostRecords
	data, err := os.ReadFile(filepath.Join(dir, lostFile))
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &l)
	}
	if err != nil {
		return l, fmt.Errorf("%s: %w", filepath.Join(dir, lostFile), err)
	}
	return l, nil
}

func removeLostFile(dir string) error {
	err := os.Remove(filepath.Join(dir, lostFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// spoolFiles lists the spool's segment files by their first index.
func spoolFiles(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var starts []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil || spoolName(n) != e.Name() {
			return nil, fmt.Errorf("unexpected file %s in the spool", filepath.Join(dir, e.Name()))
		}
		starts = append(starts, n)
	}
	slices.Sort(starts)
	return starts, nil
}

type recovered struct {
	data        []byte // the whole records, newlines included
	lines       [][]byte
	first, last time.Time
	torn        int64 // bytes after the last whole record
	keep        int64 // the length to cut the file to when torn > 0
}

// readSpoolFile reads a spool file and checks every line is a record. In
// the last file, the one open at a crash, whatever follows the last whole
// record (a line without its newline, or bytes that are no record, as a
// write that did not reach the disk leaves) is torn, to be cut; anywhere
// else, and before a valid record, a bad line is damage, and an error.
func readSpoolFile(path string, last bool) (recovered, error) {
	var r recovered
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	keep := 0
	for keep < len(data) {
		i := bytes.IndexByte(data[keep:], '\n')
		if i < 0 {
			break
		}
		line := data[keep : keep+i]
		t, err := spoolRecord(line)
		if err != nil {
			break
		}
		if len(r.lines) == 0 {
			r.first, r.last = t, t
		} else {
			r.first, r.last = minTime(r.first, t), maxTime(r.last, t)
		}
		r.lines = append(r.lines, line)
		keep += i + 1
	}
	r.data = data[:keep]
	if keep == len(data) {
		return r, nil
	}
	damage := func() (recovered, error) {
		return r, fmt.Errorf("spool file %s: record %d (byte %d) is damaged and records follow it; the spool cannot be recovered automatically: move it aside and restore it", path, len(r.lines), keep)
	}
	if !last {
		return damage()
	}
	// A valid record after the bad line means damage, not a torn tail.
	for rest := data[keep:]; ; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		if _, err := spoolRecord(rest[:i]); err == nil && i > 0 {
			return damage()
		}
		rest = rest[i+1:]
	}
	r.torn, r.keep = int64(len(data)-keep), int64(keep)
	return r, nil
}

// spoolRecord checks a spool line more strictly than Append does, since a
// crash can leave any bytes: it must be valid JSON as well.
func spoolRecord(line []byte) (time.Time, error) {
	t, err := recordTime(line)
	if err == nil && !json.Valid(line) {
		err = fmt.Errorf("%w: not valid JSON", ErrBadRecord)
	}
	return t, err
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cut torn record from %s: %w", path, err)
	}
	return nil
}

// checkNewStream refuses to start a stream over one the store already
// holds: with no spool state, the appender would start again at record 0.
func checkNewStream(ctx context.Context, s *Sealer, stream string) error {
	dir := string(layoutAppendDir(nil, s.Prefix, stream, layoutManifestDir))
	keys, err := s.Store.List(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a directory store not created yet
	}
	if err != nil {
		return fmt.Errorf("look for stream %s in the store: %w", stream, err)
	}
	if len(keys) > 0 {
		return fmt.Errorf("the store already holds stream %s (%d manifests, the last %s), but this spool has no state for it: restore the spool directory, or give this gateway a new stream id",
			stream, len(keys), keys[len(keys)-1])
	}
	return nil
}
