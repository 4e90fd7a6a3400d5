package gateway

import (
	"sync"
	"testing"

	"go.uber.org/zap"
)

// TestRecordersRecordEverythingQueued: exchanges offered from many
// goroutines are all recorded, the last ones by close, and an offer after
// close is refused so that its caller records it.
func TestRecordersRecordEverythingQueued(t *testing.T) {
	rec := newTestRecorder()
	g, err := New(oneRoute("http://127.0.0.1:1"), rec, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				ex := acquireExchange()
				ex.AuditID = g.ids.next()
				g.active.Add(1)
				if !g.recorders.offer(recordJob{g, nil, nil, ex}) {
					g.recordExchange(nil, nil, ex) // the queue was full
				}
			}
		}()
	}
	wg.Wait()
	g.recorders.close()
	rec.mu.Lock()
	got := len(rec.exs)
	rec.mu.Unlock()
	if got != n {
		t.Errorf("%d exchanges recorded, want %d", got, n)
	}
	if a := g.active.Load(); a != 0 {
		t.Errorf("%d exchanges still open after close", a)
	}
	ex := acquireExchange()
	if g.recorders.offer(recordJob{g, nil, nil, ex}) {
		t.Error("an offer after close was queued")
	}
	releaseExchange(ex)
}
