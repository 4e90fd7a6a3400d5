package worm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// sequencer owns the stream's tree and the open segment's spool file. Only
// its goroutine touches it.
type sequencer struct {
	a *Appender
	o *AppenderOptions

	tree *Tree
	seg  openSegment
	f    SpoolFile
	off  int64 // bytes written to f
	buf  []byte

	// What the last fsync made durable; a failed write or fsync rolls back
	// to it, since what came after may not be on disk.
	synced    Tree
	syncedSeg openSegment
	syncedOff int64

	// fsyncs run on the syncer goroutine while the sequencer goes on
	// writing, so that records reach the page cache (and survive the
	// process) without waiting for the disk. syncing is the fsync in
	// flight, if any.
	syncing *syncReq
	syncCh  chan *syncReq
	doneCh  chan *syncReq

	waiters    []*entry  // AppendSync records written, not yet in an fsync
	unsynced   uint64    // Append records written, not yet in an fsync
	dirtySince time.Time // when the first write not yet in an fsync was made

	// Lost records on their way into a gap record: gapOpen are stated by
	// no gap record yet, gapWritten by one written but not yet in an
	// fsync. A gap record rolled back returns its count to gapOpen, so
	// that the next one states it; gapFirst and gapLast bound them all.
	gapOpen, gapWritten uint64
	gapFirst, gapLast   time.Time

	lastRecord time.Time // when the last record was written, for heartbeats
	lastTry    time.Time // when a failing spool was last tried
	down       error

	closeErr error
}

// syncReq is one fsync: what it covers, and the state that is durable
// once it succeeds.
type syncReq struct {
	f        SpoolFile
	off      int64
	tree     Tree
	seg      openSegment
	waiters  []*entry
	unsynced uint64
	gapN     uint64 // lost records stated by gap records it covers
	err      error
}

// syncer runs the fsyncs the sequencer asks for, one at a time.
func (s *sequencer) syncer() {
	for r := range s.syncCh {
		r.err = r.f.Sync()
		s.doneCh <- r
	}
}

// openSegment is the segment being written.
type openSegment struct {
	start       uint64
	leaves      [][32]byte
	sums        []uint64 // each line's lineSum, as written to the spool file
	bytes       int64
	first, last time.Time
	opened      time.Time // when its first record was written
}

func (g *openSegment) empty() bool { return len(g.leaves) == 0 }

func spoolName(start uint64) string { return fmt.Sprintf("%020d.jsonl", start) }

func (s *sequencer) run() {
	a := s.a
	defer close(a.seqDone)
	defer close(s.syncCh)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	batch := make([]*entry, 0, 256)
	for {
		timer.Reset(max(time.Until(s.nextDeadline()), 0))
		select {
		case e := <-a.in:
			batch = s.drain(append(batch[:0], e))
			s.take(batch)
		case r := <-s.doneCh:
			s.syncDone(r)
		case r := <-a.sysIn:
			if s.down == nil {
				s.system(r)
				if r.Kind == "alert" {
					a.stats.alerts.Add(1)
				}
				s.flush()
				s.startSync()
			}
		case <-timer.C:
			s.tick(time.Now())
		case <-a.stop:
			if a.abandoned.Load() {
				s.abandon()
				return
			}
			for {
				batch = s.drain(batch[:0])
				if len(batch) == 0 {
					break
				}
				s.take(batch)
			}
			s.shutdown()
			return
		}
	}
}

// drain adds whatever is queued, up to a batch's worth.
func (s *sequencer) drain(batch []*entry) []*entry {
	for len(batch) < 1024 {
		select {
		case e := <-s.a.in:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// nextDeadline is when tick has something to do: the group commit, the
// segment's age limit, the heartbeat, or another try of a failing spool.
func (s *sequencer) nextDeadline() time.Time {
	if s.down != nil {
		return s.lastTry.Add(s.o.RetryInterval)
	}
	next := s.lastRecord.Add(s.o.Heartbeat)
	if !s.seg.empty() {
		next = minTime(next, s.seg.opened.Add(s.o.MaxAge))
	}
	if !s.dirtySince.IsZero() && s.syncing == nil {
		// While an fsync runs, syncDone starts the next one.
		next = minTime(next, s.dirtySince.Add(s.o.CommitInterval))
	}
	return next
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (s *sequencer) tick(now time.Time) {
	if s.down != nil {
		if now.Before(s.lastTry.Add(s.o.RetryInterval)) {
			return
		}
		s.recover(now)
		return
	}
	if !s.dirtySince.IsZero() && !now.Before(s.dirtySince.Add(s.o.CommitInterval)) {
		s.startSync()
	}
	if s.down == nil && !s.seg.empty() && !now.Before(s.seg.opened.Add(s.o.MaxAge)) {
		s.cut()
	}
	if s.down == nil && !now.Before(s.lastRecord.Add(s.o.Heartbeat)) {
		s.system(sysHeartbeat(s.o.Heartbeat))
		s.a.stats.heartbeats.Add(1)
		s.flush()
		s.startSync()
	}
	if s.down == nil && s.a.lost.pending() > 0 {
		// Refusals while the queue was full, with nothing queued since.
		s.writeLoss()
		s.flush()
		s.startSync()
	}
}

// take sequences a batch of queued records.
func (s *sequencer) take(batch []*entry) {
	a := s.a
	var bytes int64
	for _, e := range batch {
		bytes += int64(len(e.line))
	}
	a.budget.release(bytes)
	a.stats.queued.Add(-int64(len(batch)))

	if s.down != nil {
		// Queued before the spool failed: refused like those after.
		for _, e := range batch {
			s.refuse(e)
		}
		return
	}
	s.writeLoss()
	for i, e := range batch {
		if s.full() {
			s.flush()
			s.cut()
			if s.down != nil {
				for _, e := range batch[i:] {
					s.refuse(e)
				}
				return
			}
		}
		s.add(e.line, e.leaf, e.time)
		if e.done != nil {
			s.waiters = append(s.waiters, e)
		} else {
			s.unsynced++
			freeEntry(e)
		}
	}
	s.flush()
	if len(s.waiters) > 0 {
		s.startSync()
	}
	if s.down == nil && s.full() {
		s.cut()
	}
}

// refuse answers a record that will not be written. An AppendSync caller
// learns of it and decides (refuse the request, or forward it and record
// the exchange later); an Append record is counted as lost.
func (s *sequencer) refuse(e *entry) {
	if e.done != nil {
		e.done <- s.down
		e.done = nil
	} else {
		s.a.lost.add(1, s.o.Now())
	}
	freeEntry(e)
}

func (s *sequencer) full() bool {
	return len(s.seg.leaves) >= s.o.MaxRecords || s.seg.bytes >= s.o.MaxBytes
}

// add appends one record to the buffer, the tree and the open segment.
func (s *sequencer) add(line []byte, leaf [32]byte, t time.Time) {
	now := time.Now()
	if s.seg.empty() {
		s.seg.first, s.seg.last, s.seg.opened = t, t, now
	} else {
		s.seg.first, s.seg.last = minTime(s.seg.first, t), maxTime(s.seg.last, t)
	}
	s.buf = append(s.buf, line...)
	s.buf = append(s.buf, '\n')
	s.a.recent.add(s.tree.Size(), line)
	s.tree.Append(leaf)
	s.seg.leaves = append(s.seg.leaves, leaf)
	s.seg.sums = append(s.seg.sums, s.a.lineSum(line))
	s.seg.bytes += int64(len(line)) + 1
	s.lastRecord = now
	s.a.stats.appended.Add(1)
	s.a.stats.appendedBytes.Add(uint64(len(line)) + 1)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// system appends a record the appender writes itself. It is not counted
// among the records a rollback loses: those count what callers gave.
func (s *sequencer) system(r *sysRecord) {
	r.Stream = s.o.Stream
	line, t := r.line(s.o.Now())
	s.add(line, LeafHash(line), t)
}

// addLoss adds lost records to those the next gap record states.
func (s *sequencer) addLoss(n uint64, first, last time.Time) {
	if n == 0 {
		return
	}
	if s.gapOpen+s.gapWritten == 0 {
		s.gapFirst, s.gapLast = first, last
	} else {
		s.gapFirst, s.gapLast = minTime(s.gapFirst, first), maxTime(s.gapLast, last)
	}
	s.gapOpen += n
}

// writeLoss writes a gap record for the records lost and not yet stated by
// a gap record.
func (s *sequencer) writeLoss() {
	s.addLoss(s.a.lost.take())
	if s.gapOpen == 0 {
		return
	}
	s.system(sysGapLost(s.gapOpen, s.gapFirst, s.gapLast, s.lastError()))
	s.gapWritten += s.gapOpen
	s.gapOpen = 0
	s.a.stats.gaps.Add(1)
}

func (s *sequencer) lastError() string {
	if p := s.a.down.Load(); p != nil {
		return (*p).Error()
	}
	return ""
}

// flush writes the buffer to the spool file.
func (s *sequencer) flush() {
	if len(s.buf) == 0 || s.down != nil {
		s.buf = s.buf[:0]
		return
	}
	n, err := s.f.Write(s.buf)
	s.off += int64(n)
	s.buf = s.buf[:0]
	if err != nil {
		s.fail(fmt.Errorf("write spool file %s: %w", s.path(), err))
		return
	}
	if s.dirtySince.IsZero() {
		s.dirtySince = time.Now()
	}
}

// startSync hands everything written so far to the syncer, unless an
// fsync is in flight: syncDone starts the next one when it returns.
func (s *sequencer) startSync() {
	if s.down != nil || s.syncing != nil {
		return
	}
	if s.off == s.syncedOff && len(s.waiters) == 0 {
		s.dirtySince = time.Time{}
		return
	}
	r := &syncReq{f: s.f, off: s.off, seg: s.seg, waiters: s.waiters, unsynced: s.unsynced, gapN: s.gapWritten}
	r.tree.size, r.tree.chain = s.tree.size, s.tree.chain
	r.tree.hashes = append([][32]byte(nil), s.tree.hashes...)
	s.waiters, s.unsynced, s.gapWritten, s.dirtySince = nil, 0, 0, time.Time{}
	s.syncing = r
	s.syncCh <- r
}

// syncDone takes the result of an fsync: on success what it covered is
// durable and its waiters are released; a failure puts the appender down.
func (s *sequencer) syncDone(r *syncReq) {
	s.syncing = nil
	if r.err != nil {
		s.fail(fmt.Errorf("fsync spool file %s: %w", s.path(), r.err), r)
		return
	}
	s.synced1(r)
	if len(s.waiters) > 0 || !s.dirtySince.IsZero() && time.Since(s.dirtySince) >= s.o.CommitInterval {
		s.startSync()
	}
}

// synced1 makes what a successful fsync covered the durable state.
func (s *sequencer) synced1(r *syncReq) {
	s.a.stats.syncs.Add(1)
	s.syncedOff, s.synced, s.syncedSeg = r.off, r.tree, r.seg
	s.a.stats.size.Store(r.tree.size)
	for _, e := range r.waiters {
		e.done <- nil
		e.done = nil
		freeEntry(e)
	}
}

// waitSync waits for the fsync in flight, if any, and takes its result.
func (s *sequencer) waitSync() {
	if s.syncing != nil {
		s.syncDone(<-s.doneCh)
	}
}

// syncNow makes everything written durable before it returns.
func (s *sequencer) syncNow() {
	s.waitSync()
	s.startSync()
	s.waitSync()
}

func (s *sequencer) markSynced() {
	s.syncedOff = s.off
	s.synced.size, s.synced.chain = s.tree.size, s.tree.chain
	s.synced.hashes = append([][32]byte(nil), s.tree.hashes...)
	s.syncedSeg = s.seg
	s.unsynced = 0
	s.dirtySince = time.Time{}
	s.a.stats.size.Store(s.tree.Size())
}

// fail puts the appender down: records written since the last fsync may
// not be on disk, so they are taken back and counted as lost, and the
// records waiting for the fsync get the error.
func (s *sequencer) fail(err error, failed ...*syncReq) {
	// An fsync in flight settles first: if it succeeds, what it covered
	// stays.
	if s.syncing != nil {
		r := <-s.doneCh
		s.syncing = nil
		if r.err == nil {
			s.synced1(r)
		} else {
			failed = append(failed, r)
		}
	}
	err = fmt.Errorf("%w: %w", ErrTrailDown, err)
	s.down = err
	s.a.down.Store(&err)
	s.a.stats.spoolErrors.Add(1)
	s.o.Log.Error("trail spool failed; refusing records until it works again", zap.String("stream", s.o.Stream), zap.Error(err))
	now := s.o.Now()
	for _, r := range failed {
		s.unsynced += r.unsynced
		s.gapWritten += r.gapN
		s.waiters = append(s.waiters, r.waiters...)
	}
	if s.unsynced > 0 {
		s.a.lost.add(s.unsynced, now)
	}
	// The gap records rolled back state their counts again in the next.
	s.gapOpen += s.gapWritten
	s.gapWritten = 0
	for _, e := range s.waiters {
		s.refuse(e)
	}
	s.waiters = nil
	s.tree.size, s.tree.chain = s.synced.size, s.synced.chain
	s.tree.hashes = append(s.tree.hashes[:0], s.synced.hashes...)
	s.seg = s.syncedSeg
	s.unsynced = 0
	s.dirtySince = time.Time{}
	s.buf = s.buf[:0]
	s.lastTry = time.Now()
	if s.f != nil {
		if terr := s.f.Truncate(s.syncedOff); terr != nil {
			s.f.Close()
			s.f = nil
		}
	}
	s.off = s.syncedOff
}

// recover tries a failing spool again by writing the gap record for what
// was lost and fsyncing it.
func (s *sequencer) recover(now time.Time) {
	s.lastTry = now
	if s.f == nil {
		if err := s.open(); err != nil {
			return
		}
	}
	if err := s.f.Truncate(s.syncedOff); err != nil {
		return
	}
	s.off = s.syncedOff
	was := s.down
	s.down = nil
	s.writeLoss()
	s.flush()
	s.syncNow()
	if s.down != nil {
		return
	}
	s.a.down.Store(nil)
	s.o.Log.Info("trail spool works again", zap.String("stream", s.o.Stream), zap.NamedError("was", was))
}

func (s *sequencer) path() string { return filepath.Join(s.o.Spool, spoolName(s.seg.start)) }

// cut closes the open segment, fsynced, hands it to the sealer and opens
// the next one.
func (s *sequencer) cut() {
	if s.down != nil || s.seg.empty() {
		return
	}
	s.syncNow()
	if s.down != nil {
		return
	}
	c := &cut{
		start: s.seg.start, end: s.tree.Size(), path: s.path(), bytes: s.seg.bytes,
		leaves: s.seg.leaves, sums: s.seg.sums, first: s.seg.first, last: s.seg.last, root: s.tree.Root(),
	}
	if err := s.f.Close(); err != nil {
		// Everything in it is fsynced; the sealer reads it back.
		s.o.Log.Warn("close spool file", zap.String("file", c.path), zap.Error(err))
	}
	s.f = nil
	s.a.sealer.add(c)
	s.seg = openSegment{start: c.end}
	s.off = 0
	s.markSynced()
	if err := s.open(); err != nil {
		s.fail(err)
	}
}

// open creates the open segment's spool file.
func (s *sequencer) open() error {
	f, err := s.o.OpenFile(s.path())
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	// The file's directory entry must be durable before records in it are
	// acknowledged.
	if err := syncDir(s.o.Spool); err != nil {
		f.Close()
		return err
	}
	s.f = f
	return nil
}

// abandon stops as a crash would, for tests: the fsync in flight settles,
// nothing more is written, and waiting callers learn the appender closed.
func (s *sequencer) abandon() {
	for s.syncing != nil {
		r := <-s.doneCh
		s.syncing = nil
		s.waiters = append(s.waiters, r.waiters...)
	}
	for _, e := range s.waiters {
		e.done <- ErrClosed
		e.done = nil
	}
	s.waiters = nil
	if s.f != nil {
		s.f.Close()
	}
}

// shutdown closes the open segment with a stop event and cuts it.
func (s *sequencer) shutdown() {
	if s.down != nil {
		s.recover(time.Now())
	}
	if s.down == nil {
		s.writeLoss()
		s.system(sysEvent("trail.stop", s.o.Heartbeat))
		s.flush()
		s.cut()
	}
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if s.down != nil {
		s.closeErr = fmt.Errorf("stream %s: %w", s.o.Stream, s.down)
		// What was lost is kept for the next start's gap record.
		s.addLoss(s.a.lost.take())
		if err := writeLostFile(s.o.Spool, s.gapOpen+s.gapWritten, s.gapFirst, s.gapLast); err != nil {
			s.closeErr = errors.Join(s.closeErr, err)
		}
	} else if s.seg.empty() {
		// The file opened after the last cut holds nothing.
		if err := os.Remove(s.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.closeErr = err
		}
	}
	s.a.sealer.close()
}
