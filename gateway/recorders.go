package gateway

import (
	"runtime"
	"sync"
)

// recorders are the long-lived goroutines that build records off the
// connections. Being long-lived, their stacks stay grown: a goroutine per
// record would grow a new stack for each (record building runs deep).
// They start with the first exchange and stop at Shutdown, once every
// queued exchange is recorded.
type recorders struct {
	jobs  chan recordJob
	start sync.Once
	stop  chan struct{}
	once  sync.Once // closes stop
	done  sync.WaitGroup
}

type recordJob struct {
	g  *Gateway
	a  *audit
	rt *route
	ex *Exchange
}

func (r *recorders) init() {
	// Enough queued to keep both cores busy building records while the
	// connections go on; each holds one exchange's buffers.
	r.jobs = make(chan recordJob, 8*runtime.GOMAXPROCS(0))
	r.stop = make(chan struct{})
}

// offer queues j for a recorder; false if the queue is full or the
// recorders stopped, and the caller records j itself.
func (r *recorders) offer(j recordJob) bool {
	r.start.Do(func() {
		n := runtime.GOMAXPROCS(0)
		r.done.Add(n)
		for range n {
			go r.run()
		}
	})
	select {
	case <-r.stop:
		return false
	default:
	}
	select {
	case r.jobs <- j:
		return true
	default:
		return false
	}
}

func (r *recorders) run() {
	defer r.done.Done()
	for {
		select {
		case j := <-r.jobs:
			j.g.recordExchange(j.a, j.rt, j.ex)
		case <-r.stop:
			// Whatever was queued before the stop is still recorded.
			r.drain()
			return
		}
	}
}

// drain records the jobs queued, until there are none.
func (r *recorders) drain() {
	for {
		select {
		case j := <-r.jobs:
			j.g.recordExchange(j.a, j.rt, j.ex)
		default:
			return
		}
	}
}

// close stops the recorders once they recorded what is queued.
func (r *recorders) close() {
	r.once.Do(func() { close(r.stop) })
	r.done.Wait()
	r.drain() // an offer that raced with the stop
}
