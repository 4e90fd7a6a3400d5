package worm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"runtime"
	"sync"
)

// The walk over a stream's manifests is sequential: each manifest
// continues the one before it. Reading its segments is not: a segment's
// bytes, records and leaf hashes depend only on its manifest. So the
// manifests are read ahead of the walk, and their segments checked by
// workers, one per CPU, while the walk goes on with the records' leaves
// in order.

// manifestAhead is a manifest read ahead of the walk, and its segment's
// check when the walk will want one.
type manifestAhead struct {
	key   Key
	data  []byte
	found bool
	err   error // a failure of the store: stops the verification

	// Opened and parsed here; the walk reports what is wrong, in order.
	keyID    string
	openErr  error
	m        Manifest
	parseErr error
	check    *segCheck
}

// segCheck is the work on one segment that needs nothing of the walk:
// reading it, hashing its stored bytes, decoding it, hashing its records
// and reading their heads.
type segCheck struct {
	found       bool
	err         error // a failure of the store
	sum         [32]byte
	decodeErr   error
	scan        recordScan
	rangeHashes [][32]byte // the leaves' range hashes, as in the manifest
	// The hash chain through the records from chainFrom, the chain head
	// of the manifest read before, if it parsed; the walk uses chainEnd
	// when it continues the chain from that same head.
	chainFrom, chainEnd [32]byte
	chained             bool
	done                chan struct{}
}

// readAhead reads manifests in order and checks the segments the walk
// will read, at most ahead segments at a time, sending each manifest in
// order on the channel it returns. The walk calls release after it is
// done with each check, and stop when it leaves early.
func (v *streamVerifier) readAhead(ctx context.Context, manifests []Key) (out <-chan *manifestAhead, release func(), stop func()) {
	workers := runtime.GOMAXPROCS(0)
	ch := make(chan *manifestAhead, 2*workers)
	slots := make(chan struct{}, workers+1)
	jobs := make(chan *manifestAhead)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range jobs {
				v.checkSegment(ctx, &a.m, a.check)
			}
		}()
	}
	go func() {
		defer close(ch)
		defer func() {
			close(jobs)
			wg.Wait()
		}()
		var prevHead [32]byte
		prevOK := false
		for _, k := range manifests {
			a := &manifestAhead{key: k}
			a.data, a.found, a.err = v.getCtx(ctx, k.String())
			if a.err == nil && a.found {
				var body []byte
				body, a.keyID, a.openErr = OpenJSON(a.data, v.o.Trust, ManifestSealedAt)
				if a.openErr == nil {
					a.m, a.parseErr = ParseManifest(body)
				}
				m := &a.m
				if a.openErr == nil && a.parseErr == nil && m.Stream == v.rep.Stream && m.End == k.End {
					if _, ok := v.objs.segments[m.Segment]; ok && (v.inWindow(m) || len(v.midIn(m)) > 0) {
						a.check = &segCheck{done: make(chan struct{}), chainFrom: prevHead, chained: prevOK}
					}
				}
				prevHead, prevOK = m.ChainHead, a.openErr == nil && a.parseErr == nil
			} else {
				prevOK = false
			}
			if a.check != nil && !(sendCtx(ctx, slots, struct{}{}) && sendCtx(ctx, jobs, a)) {
				return // the walk has stopped and wants no more
			}
			if !sendCtx(ctx, ch, a) || a.err != nil {
				return
			}
		}
	}()
	drain := func() {
		for a := range ch {
			if a.check != nil {
				<-a.check.done
			}
		}
	}
	return ch, func() { <-slots }, func() { cancel(); drain() }
}

// checkSegment does c's work for the segment m names, and closes c.done.
func (v *streamVerifier) checkSegment(ctx context.Context, m *Manifest, c *segCheck) {
	defer close(c.done)
	data, found, err := v.getCtx(ctx, m.Segment)
	if err != nil || !found {
		c.err = err
		return
	}
	c.found = true
	c.sum = sha256.Sum256(data)
	sc := &c.scan
	if r, ok := v.scans.Get().(*recordScan); ok {
		*sc = *r
	}
	sc.reset(v.rep.Stream, m)
	c.decodeErr = ForEachLine(bytes.NewReader(data), sc.line)
	if c.decodeErr == nil && uint64(len(sc.leaves)) == m.End-m.Start {
		c.rangeHashes = segmentRangeOf(m.Start, sc.leaves)
		if c.chained {
			c.chainEnd = c.chainFrom
			for i := range sc.leaves {
				c.chainEnd = ChainNext(c.chainEnd, sc.leaves[i])
			}
		}
	}
}

// recycle keeps c's buffers for a segment checked later: allocating them
// afresh for every segment costs page faults and collections.
func (v *streamVerifier) recycle(c *segCheck) {
	<-c.done
	if c.scan.h != nil {
		v.scans.Put(&recordScan{h: c.scan.h, leaves: c.scan.leaves[:0], obs: c.scan.obs[:0]})
	}
	c.scan = recordScan{}
}

// sendCtx sends v on c unless ctx is done first.
func sendCtx[T any](ctx context.Context, c chan<- T, v T) bool {
	select {
	case c <- v:
		return true
	case <-ctx.Done():
		return false
	}
}
