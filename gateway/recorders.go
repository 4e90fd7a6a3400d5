package gateway

import (
	"runtime"
	"sync"
	"time"
)

// recorders build records off the connections, in batches. An exchange is
// queued when its response is written, but before fasthttp flushes its
// last bytes: waking a goroutine there would put that wake-up, and the
// record's work on the other CPU, beside the flush. So the queue wakes its
// goroutines only when a batch is full, or recordDelay after the first
// exchange queued, whichever comes first. The goroutines are long-lived,
// so their stacks stay grown (record building runs deep). They start with
// the first exchange and stop at Shutdown, once every queued exchange is
// recorded.
type recorders struct {
	mu      sync.Mutex
	pending []recordJob
	timer   *time.Timer // armed while pending is not empty
	stopped bool

	kick  chan struct{} // a batch is ready
	stop  chan struct{}
	start sync.Once
	done  sync.WaitGroup
	max   int // exchanges queued at most; past it the connection records its own
}

type recordJob struct {
	g  *Gateway
	a  *audit
	rt *route
	ex *Exchange
}

const (
	// recordBatch wakes the recorders at once, without waiting for
	// recordDelay; under load, records are built in batches of it.
	recordBatch = 16
	// recordDelay bounds how long a queued exchange waits for a recorder.
	recordDelay = time.Millisecond
)

func (r *recorders) init() {
	// Enough queued to keep both cores busy building records while the
	// connections go on; each holds one exchange's buffers.
	r.max = 64 * runtime.GOMAXPROCS(0)
	r.kick = make(chan struct{}, runtime.GOMAXPROCS(0))
	r.stop = make(chan struct{})
}

// offer queues j for a recorder; false if the queue is full or the
// recorders stopped, and the caller records j itself.
func (r *recorders) offer(j recordJob) bool {
	r.start.Do(func() {
		r.timer = time.AfterFunc(time.Hour, r.wake)
		r.timer.Stop()
		n := runtime.GOMAXPROCS(0)
		r.done.Add(n)
		for range n {
			go r.run()
		}
	})
	r.mu.Lock()
	if r.stopped || len(r.pending) >= r.max {
		r.mu.Unlock()
		return false
	}
	r.pending = append(r.pending, j)
	n := len(r.pending)
	if n == 1 {
		r.timer.Reset(recordDelay)
	}
	r.mu.Unlock()
	if n%recordBatch == 0 {
		r.wake()
	}
	return true
}

// wake has a recorder take what is queued.
func (r *recorders) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// take removes up to recordBatch queued exchanges into buf.
func (r *recorders) take(buf []recordJob) []recordJob {
	r.mu.Lock()
	n := min(len(r.pending), recordBatch)
	buf = append(buf[:0], r.pending[:n]...)
	rest := copy(r.pending, r.pending[n:])
	clear(r.pending[rest:])
	r.pending = r.pending[:rest]
	if rest > 0 {
		r.timer.Reset(recordDelay)
	} else {
		r.timer.Stop()
	}
	r.mu.Unlock()
	return buf
}

func (r *recorders) run() {
	defer r.done.Done()
	var batch []recordJob
	for {
		select {
		case <-r.kick:
		case <-r.stop:
			// Whatever was queued before the stop is still recorded.
			r.drain()
			return
		}
		for {
			if batch = r.take(batch); len(batch) == 0 {
				break
			}
			for _, j := range batch {
				j.g.recordExchange(j.a, j.rt, j.ex)
			}
			clear(batch)
		}
	}
}

// drain records the exchanges queued, until there are none.
func (r *recorders) drain() {
	var batch []recordJob
	for {
		if batch = r.take(batch); len(batch) == 0 {
			return
		}
		for _, j := range batch {
			j.g.recordExchange(j.a, j.rt, j.ex)
		}
	}
}

// close stops the recorders once they recorded what is queued.
func (r *recorders) close() {
	r.mu.Lock()
	already := r.stopped
	r.stopped = true
	r.mu.Unlock()
	if !already {
		close(r.stop)
	}
	r.done.Wait()
	if r.timer != nil {
		r.drain() // what was queued after the recorders left
		r.timer.Stop()
	}
}
