package worm

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Errors from the Appender; the gateway maps them to its failure modes.
var (
	// ErrPushback means the queue is over its limit: the trail is taking
	// records more slowly than they arrive.
	ErrPushback = errors.New("trail queue is full")
	// ErrTrailDown means the spool cannot be written (disk full, I/O
	// error); the wrapping error gives the cause. The appender retries on
	// its own and writes a gap record once it recovers.
	ErrTrailDown = errors.New("trail cannot write its spool")
	// ErrClosed means the appender was closed.
	ErrClosed = errors.New("trail is closed")
	// ErrSpoolFull means the sealed segments waiting for the store have
	// reached the spool's bound: the store has been unreachable or slow for
	// a while.
	ErrSpoolFull = errors.New("trail spool is full: the store has not taken the sealed segments")
	// ErrBadRecord means a line is not a record the trail can take: not a
	// JSON object with a "time" of RFC 3339 near its start, or too long.
	ErrBadRecord = errors.New("not a trail record")
)

// AppenderOptions configure an Appender. Zero values take the defaults in
// brackets.
type AppenderOptions struct {
	// Stream is the stream's id. Required.
	Stream string
	// Spool is the directory of the stream's spool. Required. It is
	// created if missing and must not be shared with another process.
	Spool string
	// Sealer writes sealed segments. Required.
	Sealer *Sealer

	// A segment is sealed when it holds MaxRecords records [100000] or
	// MaxBytes bytes of record lines [32 MiB], or when its first record is
	// MaxAge old [1m], whichever comes first.
	MaxRecords int
	MaxBytes   int64
	MaxAge     time.Duration
	// Heartbeat is how long the stream may go without a record before the
	// appender writes a heartbeat record [1m].
	Heartbeat time.Duration
	// CommitInterval is the group-commit window of records appended with
	// Append: they are fsynced at most this long after they are written
	// [50ms]. AppendSync fsyncs at once, sharing the fsync with every record
	// queued with it.
	CommitInterval time.Duration
	// QueueRecords [16384] and QueueBytes [64 MiB] bound the records
	// accepted but not yet written. Ready reports pushback above three
	// quarters of either.
	QueueRecords int
	QueueBytes   int64
	// MaxRecord is the longest record line accepted [16 MiB].
	MaxRecord int
	// MaxSpool bounds the bytes of segments cut but not yet in the store
	// [10 GiB]. At the bound the trail refuses records (ErrSpoolFull), and
	// each route's on_trail_failure applies, until the store catches up.
	MaxSpool int64
	// Recent is how many of the latest records Recent keeps [256].
	Recent int
	// RetryInterval is how often a failed spool or store is tried again
	// [1s; seals back off up to 30 times that].
	RetryInterval time.Duration

	// Log receives the appender's warnings; nil logs nothing.
	Log *zap.Logger
	// Now gives the time of the records the appender writes itself; nil
	// means time.Now.
	Now func() time.Time
	// OpenFile opens a spool file for appending, creating it if needed;
	// nil opens it in the file system. Tests inject failures through it.
	OpenFile func(name string) (SpoolFile, error)
}

// SpoolFile is an open spool file.
type SpoolFile interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

func (o *AppenderOptions) setDefaults() {
	setDefault(&o.MaxRecords, 100000)
	setDefault(&o.MaxBytes, 32<<20)
	setDefault(&o.MaxAge, time.Minute)
	setDefault(&o.Heartbeat, time.Minute)
	setDefault(&o.CommitInterval, 50*time.Millisecond)
	setDefault(&o.QueueRecords, 16384)
	setDefault(&o.QueueBytes, 64<<20)
	setDefault(&o.MaxRecord, 16<<20)
	// Every record sealed must be readable back.
	o.MaxRecord = min(o.MaxRecord, MaxLineBytes)
	setDefault(&o.RetryInterval, time.Second)
	setDefault(&o.MaxSpool, 10<<30)
	setDefault(&o.Recent, 256)
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OpenFile == nil {
		o.OpenFile = func(name string) (SpoolFile, error) {
			return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		}
	}
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Appender is the write side of one stream. Records are leaf-hashed by the
// caller's goroutine, then one sequencer goroutine gives each its index,
// extends the chain and the tree, and appends it to the spool file of the
// open segment, fsyncing by group commit. Full segments are handed to a
// sealing goroutine that writes them to the store and deletes the spool
// file once the store holds them.
//
// The spool directory holds the open and the unsealed segments as
// <start>.jsonl, state.json (the tree and manifest link after the last
// seal, replaced atomically), and a "clean" marker while the appender is
// closed cleanly. Open recovers from a crash: it cuts a torn last line,
// resumes the tree from the records on disk, writes a gap record, and seals
// what was pending.
// lineSum checks a line read back from the spool file against the line
// sequenced, so that a file changed on disk is never sealed. It hashes at
// about 10 GB/s here, where hashing every record again with SHA-256 (1.5
// GB/s) would hash each byte twice. Its seed is random and lives only in
// this process's memory, so an edit cannot be made to keep the sum without
// reading that memory; it is not a cryptographic MAC. Either way the
// checkpoint signs the sequencer's leaf hashes, so a change that got
// through would fail verify.
func (a *Appender) lineSum(line []byte) uint64 { return maphash.Bytes(a.lineSeed, line) }

type Appender struct {
	o AppenderOptions
	// lineSeed keys lineSum.
	lineSeed maphash.Seed
	in       chan *entry
	budget   budget
	lost     lossCounter

	// down holds the spool's failure, nil while it works.
	down atomic.Pointer[error]

	closing   atomic.Bool
	abandoned atomic.Bool // set by tests to stop as a crash would
	closeOnce sync.Once
	// inflight counts Append calls between their closing check and their
	// enqueue; Close waits for none before stopping the sequencer, so that
	// no record is queued after the last drain.
	inflight  atomic.Int64
	closingCh chan struct{} // closed when Close begins: waits for room end
	stop      chan struct{} // closed by Close: the sequencer drains and stops
	seqDone   chan struct{}
	sealDone  chan struct{}
	sealStop  chan struct{} // closed when Close's deadline passes

	seq    *sequencer
	sealer *sealLoop
	unlock func()
	sysIn  chan *sysRecord // records the seal loop asks the sequencer to write
	recent recentRing

	stats appendStats
}

// entry is one record on its way to the spool.
type entry struct {
	line []byte
	leaf [32]byte
	time time.Time
	done chan error // AppendSync's waiter; nil for Append
}

var entryPool = sync.Pool{New: func() any { return &entry{} }}

// Append queues a record line (JSON, without its newline). It copies line
// and returns without waiting for the disk; the record is fsynced within
// the commit interval. It returns ErrPushback when the queue is full and an
// error wrapping ErrTrailDown when the spool is failing; either way the
// record is counted as lost, and a gap record with the count is written
// once the trail takes records again — so a caller must not offer a
// refused record again (AppendWait waits instead).
func (a *Appender) Append(line []byte) error {
	a.inflight.Add(1)
	defer a.inflight.Add(-1)
	e, err := a.newEntry(line, false, true)
	if err != nil {
		return err
	}
	if !a.budget.try(int64(len(e.line))) {
		a.drop(e)
		return ErrPushback
	}
	return a.enqueue(e)
}

// AppendWait is Append that waits, until ctx is done, for room in the queue
// (records and bytes) instead of returning ErrPushback, and that the
// spool's bound does not refuse (the spool overshoots it by the records in
// flight). It is for records of exchanges admitted while the trail took
// records, which have nowhere else to go. A record it gives up on is
// counted as lost.
func (a *Appender) AppendWait(ctx context.Context, line []byte) error {
	a.inflight.Add(1)
	defer a.inflight.Add(-1)
	e, err := a.newEntry(line, false, false)
	if err != nil {
		return err
	}
	n := int64(len(e.line))
	if err := a.budget.wait(ctx, n, a.closingCh); err != nil {
		if errors.Is(err, errBudgetStopped) {
			freeEntry(e)
			return ErrClosed
		}
		a.drop(e)
		return fmt.Errorf("%w: %w", ErrPushback, err)
	}
	select {
	case a.in <- e:
		a.stats.queued.Add(1)
		return nil
	case <-a.closingCh:
		a.budget.release(n)
		freeEntry(e)
		return ErrClosed
	case <-ctx.Done():
		a.budget.release(n)
		a.drop(e)
		return fmt.Errorf("%w: %w", ErrPushback, context.Cause(ctx))
	}
}

// AppendSync queues a record line and waits until it is fsynced, or ctx is
// done. Records queued together share one fsync. It fails fast like Append
// when the queue is full or the spool is failing; a record it returns an
// error for is not in the trail, except when ctx ended the wait, in which
// case it may still be written. Unlike Append's, its refusals are not
// counted as lost: the caller knows, and decides.
func (a *Appender) AppendSync(ctx context.Context, line []byte) error {
	done, err := a.appendSync(line)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("record not yet on disk: %w", context.Cause(ctx))
	}
}

func (a *Appender) appendSync(line []byte) (chan error, error) {
	a.inflight.Add(1)
	defer a.inflight.Add(-1)
	e, err := a.newEntry(line, true, true)
	if err != nil {
		return nil, err
	}
	if !a.budget.try(int64(len(e.line))) {
		// Not counted as lost: the caller learns of it and decides.
		freeEntry(e)
		return nil, ErrPushback
	}
	done := e.done
	select {
	case a.in <- e:
		a.stats.queued.Add(1)
		return done, nil
	default:
		// Not counted as lost either.
		a.budget.release(int64(len(e.line)))
		freeEntry(e)
		return nil, ErrPushback
	}
}

// newEntry checks a record and the trail's state; bound says whether the
// spool's bound refuses it.
func (a *Appender) newEntry(line []byte, sync, bound bool) (*entry, error) {
	if a.closing.Load() {
		return nil, ErrClosed
	}
	if len(line) > a.o.MaxRecord {
		return nil, fmt.Errorf("%w: record of %d bytes, over the limit of %d", ErrBadRecord, len(line), a.o.MaxRecord)
	}
	t, err := recordTime(line)
	if err != nil {
		return nil, err
	}
	if err := a.Down(); err != nil {
		if !sync {
			a.lost.add(1, a.o.Now())
		}
		return nil, err
	}
	if bound && a.sealer.spoolFull() {
		if !sync {
			a.lost.add(1, a.o.Now())
		}
		return nil, ErrSpoolFull
	}
	e := entryPool.Get().(*entry)
	e.line = append(e.line[:0], line...)
	e.leaf = LeafHash(line)
	e.time = t
	e.done = nil
	if sync {
		e.done = make(chan error, 1)
	}
	return e, nil
}

func (a *Appender) enqueue(e *entry) error {
	// The channel holds QueueRecords entries, so a send that would block
	// means the record limit is reached.
	select {
	case a.in <- e:
		a.stats.queued.Add(1)
		return nil
	default:
		a.budget.release(int64(len(e.line)))
		a.drop(e)
		return ErrPushback
	}
}

// drop counts a record the trail could not take.
func (a *Appender) drop(e *entry) {
	a.lost.add(1, a.o.Now())
	freeEntry(e)
}

func freeEntry(e *entry) {
	if cap(e.line) > 64<<10 {
		e.line = nil // keep the pool from pinning large buffers
	}
	e.done = nil
	entryPool.Put(e)
}

// Ready returns nil when the trail takes records: the spool works and the
// queue is under three quarters of its limits. Otherwise it returns the
// reason, wrapping ErrTrailDown, ErrPushback or ErrClosed. The gateway asks
// before forwarding a request whose policy fails closed.
func (a *Appender) Ready() error {
	if a.closing.Load() {
		return ErrClosed
	}
	if err := a.Down(); err != nil {
		return err
	}
	if a.sealer.spoolFull() {
		return ErrSpoolFull
	}
	if len(a.in) > cap(a.in)*3/4 || a.budget.high() {
		return ErrPushback
	}
	return nil
}

// Health returns why the trail refuses new requests for a while, nil
// while it takes them: the spool failing, or full (ErrSpoolFull). Unlike
// Ready it ignores a momentarily full queue, so it suits a readiness probe.
func (a *Appender) Health() error {
	if err := a.Down(); err != nil {
		return err
	}
	if a.sealer.spoolFull() {
		return ErrSpoolFull
	}
	return nil
}

// Down returns the spool's failure, or nil while it works.
func (a *Appender) Down() error {
	if p := a.down.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops taking records, writes and fsyncs every queued one, closes
// the open segment with a stop event, and seals every pending segment,
// waiting until ctx is done for the store. It then leaves the clean-shutdown
// marker. Segments the store did not take in time stay in the spool and are
// sealed by the next Open; Close says how many.
func (a *Appender) Close(ctx context.Context) error {
	var err error
	a.closeOnce.Do(func() {
		a.closing.Store(true)
		close(a.closingCh)
		for a.inflight.Load() > 0 {
			time.Sleep(100 * time.Microsecond)
		}
		close(a.stop)
		<-a.seqDone
		select {
		case <-a.sealDone:
		case <-ctx.Done():
			close(a.sealStop)
			<-a.sealDone
		}
		err = a.finish()
		a.unlock()
	})
	return err
}

// finish writes the clean marker once the sequencer has stopped: the spool
// then holds only whole, fsynced records.
func (a *Appender) finish() error {
	var errs []error
	if err := a.seq.closeErr; err != nil {
		errs = append(errs, err)
	}
	if n := a.sealer.pending(); n > 0 {
		errs = append(errs, fmt.Errorf("%d segment(s) of stream %s left unsealed in %s (last error: %v); the next start seals them",
			n, a.o.Stream, a.o.Spool, a.sealer.lastError()))
	}
	if a.seq.closeErr == nil {
		if err := writeMarker(a.o.Spool); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AppenderStats are an Appender's counters, for metrics.
type AppenderStats struct {
	Stream          string
	Appended        uint64 // records written to the spool, own records included
	AppendedBytes   uint64 // their bytes, newlines included
	Lost            uint64 // records refused since Open (queue full, spool failing)
	Queued          int    // records waiting for the sequencer
	QueuedBytes     int64
	Size            uint64 // tree size: records sequenced
	Sealed          uint64 // tree size of the last seal
	PendingSegments int    // cut segments not yet sealed
	PendingBytes    int64  // their record bytes, bounded by MaxSpool
	Syncs           uint64 // fsyncs of the spool
	Seals           uint64
	SealErrors      uint64
	SpoolErrors     uint64
	Heartbeats      uint64
	Gaps            uint64 // gap records written
	Alerts          uint64 // alert records written
	Down            bool
}

type appendStats struct {
	queued        atomic.Int64
	appended      atomic.Uint64
	appendedBytes atomic.Uint64
	size          atomic.Uint64
	sealed        atomic.Uint64
	syncs         atomic.Uint64
	seals         atomic.Uint64
	sealErrors    atomic.Uint64
	spoolErrors   atomic.Uint64
	heartbeats    atomic.Uint64
	gaps          atomic.Uint64
	alerts        atomic.Uint64
}

// Stats returns the appender's counters.
func (a *Appender) Stats() AppenderStats {
	s := &a.stats
	return AppenderStats{
		Stream:          a.o.Stream,
		Appended:        s.appended.Load(),
		AppendedBytes:   s.appendedBytes.Load(),
		Lost:            a.lost.total.Load(),
		Queued:          len(a.in),
		QueuedBytes:     a.budget.usedBytes(),
		Size:            s.size.Load(),
		Sealed:          s.sealed.Load(),
		PendingSegments: a.sealer.pending(),
		PendingBytes:    a.sealer.pendingBytes.Load(),
		Syncs:           s.syncs.Load(),
		Seals:           s.seals.Load(),
		SealErrors:      s.sealErrors.Load(),
		SpoolErrors:     s.spoolErrors.Load(),
		Heartbeats:      s.heartbeats.Load(),
		Gaps:            s.gaps.Load(),
		Alerts:          s.alerts.Load(),
		Down:            a.Down() != nil,
	}
}

// Stream is the appender's stream id.
func (a *Appender) Stream() string { return a.o.Stream }

// lossCounter counts records refused since the last gap record, with the
// time of the first and last.
type lossCounter struct {
	mu          sync.Mutex
	n           uint64
	first, last time.Time
	total       atomic.Uint64 // every record lost since Open
}

func (l *lossCounter) add(n uint64, t time.Time) {
	l.total.Add(n)
	l.mu.Lock()
	if l.n == 0 {
		l.first = t
	}
	l.n += n
	l.last = t
	l.mu.Unlock()
}

func (l *lossCounter) pending() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// take returns and resets the count.
func (l *lossCounter) take() (n uint64, first, last time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, first, last = l.n, l.first, l.last
	l.n = 0
	return n, first, last
}

// budget bounds the bytes of queued records.
type budget struct {
	mu   sync.Mutex
	used int64
	max  int64
	room chan struct{} // closed and replaced when bytes are released
}

func newBudget(max int64) budget { return budget{max: max, room: make(chan struct{})} }

// try takes n bytes if they fit; a record larger than the whole budget
// fits an empty queue.
func (b *budget) try(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used > 0 && b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

var errBudgetStopped = errors.New("stopped")

func (b *budget) wait(ctx context.Context, n int64, stop <-chan struct{}) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		room := b.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-stop:
			return errBudgetStopped
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.room)
	b.room = make(chan struct{})
	b.mu.Unlock()
}

func (b *budget) high() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used > b.max*3/4
}

func (b *budget) usedBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
