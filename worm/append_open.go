package worm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	clean, err := takeMarker(o.Spool)
	if err != nil {
		return nil, err
	}
	files, err := spoolFiles(o.Spool)
	if err != nil {
		return nil, err
	}
	if !hadState && len(files) == 0 {
		if err := checkNewStream(ctx, o.Sealer, o.Stream); err != nil {
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
	}
	a.sealer = &sealLoop{a: a, state: st, wake: make(chan struct{}, 1)}
	a.stats.sealed.Store(st.Tree.Size())

	tree := st.Tree.Clone()
	var torn int64
	var lastTime time.Time
	for _, start := range files {
		path := filepath.Join(o.Spool, spoolName(start))
		r, err := recoverSpoolFile(path)
		if err != nil {
			return nil, err
		}
		end := start + uint64(len(r.lines))
		switch {
		case start < tree.Size() && end <= st.Tree.Size():
			// Sealed by a run that stopped before removing it.
			if err := os.Remove(path); err != nil {
				return nil, err
			}
			continue
		case start != tree.Size():
			return nil, fmt.Errorf("spool file %s starts at record %d, but the records before it end at %d: the spool is not one stream's; move it aside", path, start, tree.Size())
		}
		torn += r.torn
		if len(r.lines) == 0 {
			if err := os.Remove(path); err != nil {
				return nil, err
			}
			continue
		}
		c := &cut{start: start, end: end, path: path, first: r.first, last: r.last}
		c.leaves = make([][32]byte, len(r.lines))
		for i, line := range r.lines {
			c.leaves[i] = LeafHash(line)
			tree.Append(c.leaves[i])
		}
		c.root = tree.Root()
		a.sealer.queue = append(a.sealer.queue, c)
		lastTime = r.last
	}
	if torn > 0 {
		o.Log.Warn("cut a torn record from the spool", zap.String("stream", o.Stream), zap.Int64("bytes", torn))
	}

	s := &sequencer{a: a, o: &a.o, tree: tree, seg: openSegment{start: tree.Size()},
		syncCh: make(chan *syncReq), doneCh: make(chan *syncReq)}
	a.seq = s
	go s.syncer()
	s.markSynced()
	if err := s.open(); err != nil {
		close(s.syncCh)
		return nil, err
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
	return a, nil
}

// takeMarker removes the clean-shutdown marker and reports whether it was
// there.
func takeMarker(dir string) (bool, error) {
	err := os.Remove(filepath.Join(dir, cleanMarker))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, syncDir(dir)
}

func writeMarker(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, cleanMarker), nil, 0o600); err != nil {
		return fmt.Errorf("write clean-shutdown marker: %w", err)
	}
	return syncDir(dir)
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
	lines       [][]byte
	first, last time.Time
	torn        int64
}

// recoverSpoolFile reads a spool file and cuts, on disk, whatever follows
// its last whole record: a line without its newline, or one that is not a
// record (a crash can leave zeros where a write did not reach the disk).
func recoverSpoolFile(path string) (recovered, error) {
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
		t, err := recordTime(line)
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
	if r.torn = int64(len(data) - keep); r.torn > 0 {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return r, err
		}
		err = f.Truncate(int64(keep))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return r, fmt.Errorf("cut torn record from %s: %w", path, err)
		}
	}
	return r, nil
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
