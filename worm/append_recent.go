package worm

import (
	"context"
	"errors"
	"sync"
)

// RecentRecord is one of the latest records the appender wrote.
type RecentRecord struct {
	Index uint64
	Line  []byte
}

// recentRing keeps copies of the latest records, for the admin API: the
// trail's own view of what it just wrote, before it is sealed.
type recentRing struct {
	mu    sync.Mutex
	max   int
	recs  []RecentRecord
	next  int // where the next record goes once the ring is full
	limit int // bytes a kept line may have; longer ones are not kept
}

// recentMaxLine bounds a kept line, so that the ring's memory stays small.
const recentMaxLine = 64 << 10

func (r *recentRing) add(index uint64, line []byte) {
	if r.max <= 0 || len(line) > recentMaxLine {
		return
	}
	r.mu.Lock()
	if len(r.recs) < r.max {
		r.recs = append(r.recs, RecentRecord{Index: index, Line: append([]byte(nil), line...)})
	} else {
		rec := &r.recs[r.next]
		rec.Index, rec.Line = index, append(rec.Line[:0], line...)
		r.next = (r.next + 1) % r.max
	}
	r.mu.Unlock()
}

// Recent returns copies of up to n of the latest records written to the
// spool, oldest first. Records longer than 64 KiB are not kept.
func (a *Appender) Recent(n int) []RecentRecord {
	r := &a.recent
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(n, len(r.recs))
	out := make([]RecentRecord, 0, n)
	for i := len(r.recs) - n; i < len(r.recs); i++ {
		rec := r.recs[(r.next+i)%len(r.recs)]
		out = append(out, RecentRecord{Index: rec.Index, Line: append([]byte(nil), rec.Line...)})
	}
	return out
}

// LatestCheckpoint returns the stream's latest signed checkpoint as
// stored, or an error wrapping ErrNotFound before the first seal.
func (a *Appender) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	size := a.stats.sealed.Load()
	if size == 0 {
		return nil, errors.Join(ErrNotFound, errors.New("no segment sealed yet"))
	}
	s := a.o.Sealer
	return s.Store.Get(ctx, CheckpointKey(s.Prefix, a.o.Stream, size))
}

// system asks the sequencer to write a record of the trail's own; it is
// dropped, and logged, if the sequencer is behind on these.
func (a *Appender) system(r *sysRecord) {
	select {
	case a.sysIn <- r:
	default:
		a.o.Log.Warn("trail record dropped: the sequencer is behind")
	}
}
