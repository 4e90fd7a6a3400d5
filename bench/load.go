package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

const (
	// lateThreshold is how far behind schedule a send may start before it
	// counts as late: beyond it the load generator, not the target, is the
	// bottleneck.
	lateThreshold = 10 * time.Millisecond
	dialTimeout   = 5 * time.Second
	// maxBodySize bounds what one answer may make the harness buffer.
	maxBodySize = 64 << 20
	// histMaxMicros is the histograms' range, 1 µs to 60 s.
	histMaxMicros = 60_000_000
	// timerGrain bounds the lateness of the load generator's own timer that
	// is not charged to a target. Go's runtime on Linux wakes a sleeping
	// goroutine up to about a millisecond late when nothing else runs.
	timerGrain = 2 * time.Millisecond
)

var errPoolClosed = errors.New("connection pool closed")

// pool holds one target's keep-alive connections. It hands out the most
// recently used idle connection first, so a run opens only as many
// connections as it has requests in flight at once. Unlike
// fasthttp.HostClient it starts no goroutines, and close also ends
// connections in use, which is how a cancelled run stops requests in flight.
type pool struct {
	addr   string      // host:port
	tls    *tls.Config // nil for plain http
	dialed atomic.Int64

	mu     sync.Mutex
	idle   []*conn
	open   map[*conn]struct{}
	closed bool
}

type conn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func newPool(addr string, tlsConf *tls.Config) *pool {
	return &pool{addr: addr, tls: tlsConf, open: make(map[*conn]struct{})}
}

// get returns an idle connection, or a new one; reused says which.
func (p *pool) get(ctx context.Context) (c *conn, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errPoolClosed
	}
	if n := len(p.idle); n > 0 {
		c = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, true, nil
	}
	p.mu.Unlock()

	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, err
	}
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, false, fmt.Errorf("tls handshake with %s: %w", p.addr, err)
		}
		nc = tc
	}
	p.dialed.Add(1)
	c = &conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 16<<10)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		nc.Close()
		return nil, false, errPoolClosed
	}
	p.open[c] = struct{}{}
	return c, false, nil
}

// put returns a connection for reuse.
func (p *pool) put(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.nc.Close()
		return
	}
	p.idle = append(p.idle, c)
}

// discard closes a connection that must not be reused.
func (p *pool) discard(c *conn) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
	c.nc.Close()
}

// close closes every connection, idle or in use; later gets fail.
func (p *pool) close() {
	p.mu.Lock()
	conns := p.open
	p.open, p.idle, p.closed = nil, nil, true
	p.mu.Unlock()
	for c := range conns {
		c.nc.Close()
	}
}

// do sends req on a connection of the pool and reads the answer into resp,
// all before deadline. A streamed answer's body is read here, event by event,
// into ev. A reused connection that fails before any byte of the answer
// arrives was most likely closed by the server while idle; the request is
// sent once more on a new connection, as net/http does.
func (p *pool) do(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, ev *sseTiming) error {
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		stale, err := c.roundTrip(req, resp, deadline, ev)
		if err == nil && !resp.ConnectionClose() && resp.Header.ContentLength() != -2 {
			p.put(c)
		} else {
			p.discard(c)
		}
		if err != nil && stale && reused && attempt == 0 && ctx.Err() == nil {
			resp.Reset()
			continue
		}
		return err
	}
}

// roundTrip writes req and reads the answer. stale reports a failure before
// the first byte of the answer that was not a timeout.
func (c *conn) roundTrip(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, ev *sseTiming) (stale bool, err error) {
	if err := c.nc.SetDeadline(deadline); err != nil {
		return false, err
	}
	if err := req.Write(c.bw); err != nil {
		return !isTimeout(err), fmt.Errorf("write request: %w", err)
	}
	if err := c.bw.Flush(); err != nil {
		return !isTimeout(err), fmt.Errorf("write request: %w", err)
	}
	if _, err := c.br.Peek(1); err != nil {
		return !isTimeout(err), fmt.Errorf("read answer: %w", err)
	}
	resp.StreamBody = ev != nil
	resp.SkipBody = req.Header.IsHead()
	if err := resp.ReadLimitBody(c.br, maxBodySize); err != nil {
		return false, fmt.Errorf("read answer: %w", err)
	}
	if ev == nil {
		return false, nil
	}
	err = readStream(resp, ev)
	if cerr := resp.CloseBodyStream(); err == nil && cerr != nil {
		err = fmt.Errorf("read event stream: %w", cerr)
	}
	return false, err
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// readStream reads a streamed body to its end, timing its data events.
func readStream(resp *fasthttp.Response, ev *sseTiming) error {
	body := resp.BodyStream()
	if body == nil {
		ev.feed(resp.Body(), time.Now())
		return nil
	}
	bp := getBuf()
	defer putBuf(bp)
	buf := (*bp)[:cap(*bp)]
	for {
		n, err := body.Read(buf)
		if n > 0 {
			ev.feed(buf[:n], time.Now())
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read event stream: %w", err)
		}
	}
}

// sseTiming follows the data events of one streamed answer as they arrive.
type sseTiming struct {
	scan   sseScanner
	first  time.Time // when the first data event was complete
	last   time.Time
	gapSum time.Duration
	gaps   int
}

func (t *sseTiming) feed(p []byte, now time.Time) {
	for k := t.scan.feed(p); k > 0; k-- {
		if t.first.IsZero() {
			t.first = now
		} else {
			// Events that came in one read arrived together: their gap is 0.
			t.gapSum += now.Sub(t.last)
			t.gaps++
		}
		t.last = now
	}
}

// sseScanner counts complete server-sent events that carry data, fed in
// pieces of any size. It follows the event-stream grammar: lines end in LF,
// CRLF or CR, a blank line ends an event, and an event counts only if one of
// its lines is a "data" field.
type sseScanner struct {
	prefix  [5]byte
	n       int // bytes of the current line so far
	afterCR bool
	data    bool // the current event has a data line
}

// feed consumes p and returns the number of data events it completed.
func (s *sseScanner) feed(p []byte) (events int) {
	for _, b := range p {
		if b == '\n' && s.afterCR {
			s.afterCR = false
			continue
		}
		s.afterCR = b == '\r'
		if b != '\n' && b != '\r' {
			if s.n < len(s.prefix) {
				s.prefix[s.n] = b
			}
			s.n++
			continue
		}
		switch {
		case s.n == 0:
			if s.data {
				events++
				s.data = false
			}
		case s.n == 4 && string(s.prefix[:4]) == "data", s.n >= 5 && string(s.prefix[:]) == "data:":
			s.data = true
		}
		s.n = 0
	}
	return events
}

// tally accumulates the outcomes of one target's requests in one phase of a
// run, across its slices. Senders record into it concurrently.
type tally struct {
	sent, ok, errs, late atomic.Int64

	mu       sync.Mutex
	latency  *hdrhistogram.Histogram
	ttfb     *hdrhistogram.Histogram
	gapSum   time.Duration
	gaps     int64
	firstErr string

	// Kept by the phase's single driving goroutine.
	elapsed time.Duration // wall time of the slices, drains included
	cpu     time.Duration // CPU time charged to the target during the slices
	next    int           // position in the mix schedule
}

func newTally() *tally {
	return &tally{latency: newHist(), ttfb: newHist()}
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMaxMicros, 3) }

func recordMicros(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	// Out of range values are clamped rather than dropped, so that a stall
	// still shows in the tail.
	_ = h.RecordValue(min(max(us, 0), histMaxMicros))
}

// record notes one finished request whose latency counts from start.
func (t *tally) record(start, end time.Time, err error, ev *sseTiming) {
	if err != nil {
		t.errs.Add(1)
		t.mu.Lock()
		if t.firstErr == "" {
			t.firstErr = err.Error()
		}
		t.mu.Unlock()
		return
	}
	t.ok.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	recordMicros(t.latency, end.Sub(start))
	if ev != nil && !ev.first.IsZero() {
		recordMicros(t.ttfb, ev.first.Sub(start))
		t.gapSum += ev.gapSum
		t.gaps += int64(ev.gaps)
	}
}

// prepared is a Request made ready for one target.
type prepared struct {
	method []byte
	uri    string
	header [][2]string
	body   []byte
	stream bool
}

func (p *prepared) fill(req *fasthttp.Request) {
	req.Header.SetNoDefaultContentType(true)
	req.Header.SetMethodBytes(p.method)
	req.SetRequestURI(p.uri)
	for _, kv := range p.header {
		req.Header.Set(kv[0], kv[1])
	}
	// The body is shared by all senders; Write only reads it.
	req.SetBodyRaw(p.body)
}

// loader sends requests to one target.
type loader struct {
	pool    *pool
	reqs    []prepared // indexed like Options.Mix
	timeout time.Duration
}

// exchange sends one request and records it in t, its latency counted from
// start to the end of the answer's body.
func (l *loader) exchange(ctx context.Context, p *prepared, start time.Time, t *tally) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	p.fill(req)
	var ev *sseTiming
	if p.stream {
		ev = new(sseTiming)
	}
	err := l.pool.do(ctx, req, resp, time.Now().Add(l.timeout), ev)
	end := time.Now()
	if err == nil {
		if code := resp.StatusCode(); code < 200 || code > 299 {
			err = errors.New("status " + strconv.Itoa(code))
		}
	}
	t.record(start, end, err, ev)
}

// job is one request of an open-loop schedule.
type job struct {
	at    time.Time // when it is scheduled
	start time.Time // when its latency starts to count
	req   *prepared
}

// openLoop sends n requests at rate per second, request i scheduled at
// start + i/rate, whether or not earlier answers have come back, with up to
// senders in flight. Latency counts from the scheduled time, so that a
// request held up behind slow answers is charged the wait instead of
// omitted. It returns when every request sent has been answered or has
// failed.
//
// The one allowance is the overshoot of the dispatcher's own timer: a
// request that fell due while the dispatcher slept toward it counts from
// the wake-up, at most timerGrain late. While it sleeps the dispatcher waits
// on nothing a target does, so this hides no stall; without it every
// latency would carry up to a millisecond of timer rounding.
func (l *loader) openLoop(ctx context.Context, rate, n, senders int, sched []int, t *tally) {
	if n <= 0 || rate <= 0 {
		return
	}
	jobs := make(chan job, senders)
	var wg sync.WaitGroup
	for range min(senders, n) {
		wg.Go(func() {
			for j := range jobs {
				if time.Since(j.at) > lateThreshold {
					t.late.Add(1)
				}
				l.exchange(ctx, j.req, j.start, t)
			}
		})
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	start := time.Now()
	var woke time.Time // end of the dispatcher's last sleep
	interval := float64(time.Second) / float64(rate)
dispatch:
	for i := range n {
		at := start.Add(time.Duration(float64(i) * interval))
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				break dispatch
			}
			woke = time.Now()
		}
		j := job{at: at, start: at, req: &l.reqs[sched[t.next%len(sched)]]}
		if woke.After(at) {
			// Due while the dispatcher slept, not while it waited for a
			// sender.
			j.start = woke
			if limit := at.Add(timerGrain); woke.After(limit) {
				j.start = limit
			}
		}
		select {
		case jobs <- j:
			t.next++
			t.sent.Add(1)
		case <-ctx.Done():
			break dispatch
		}
	}
	close(jobs)
	wg.Wait()
	// n requests span n intervals of the schedule, or longer if the last
	// answers came late.
	t.elapsed += max(time.Since(start), time.Duration(float64(n)*interval))
}

// closedLoop keeps workers requests in flight for d: each worker sends its
// next request as soon as the last one is answered. Latency counts from each
// send.
func (l *loader) closedLoop(ctx context.Context, d time.Duration, workers int, sched []int, t *tally) {
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i += workers {
				now := time.Now()
				if !now.Before(end) {
					return
				}
				t.sent.Add(1)
				l.exchange(ctx, &l.reqs[sched[i%len(sched)]], now, t)
			}
		})
	}
	wg.Wait()
	t.elapsed += time.Since(start)
}
