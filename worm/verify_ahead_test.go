package worm

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// getFailStore fails every Get of a key containing fail.
type getFailStore struct {
	Store
	fail string
}

var errStoreDown = errors.New("store down")

func (s getFailStore) Get(ctx context.Context, key string) ([]byte, error) {
	if strings.Contains(key, s.fail) {
		return nil, errStoreDown
	}
	return s.Store.Get(ctx, key)
}

// TestVerifyReadAheadStopsOnAStoreError: segments are read ahead of the
// walk by several workers; a store failure on one of them ends Verify
// with that error, and every goroutine the read-ahead started ends too.
func TestVerifyReadAheadStopsOnAStoreError(t *testing.T) {
	k := newTestKey(t, "gw")
	st := NewMemStore()
	vtSeal(t, st, k, "", "gw-a", 5, 5, 5, 5, 5, 5, 5, 5, 5, 5)
	before := runtime.NumGoroutine()
	// The fourth segment (records [15, 20)) cannot be read.
	_, err := Verify(context.Background(), getFailStore{st, SegmentKey("", "gw-a", 15, 20)}, VerifyOptions{Trust: vtTrust(t, "", k)})
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("Verify: %v, want the store's error", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Verify, %d before", n, before)
	}
}

// TestVerifyReadAheadKeepsOrder: with many segments read ahead at once,
// findings come in the order of the records, as a walk one segment at a
// time would give them.
func TestVerifyReadAheadKeepsOrder(t *testing.T) {
	k := newTestKey(t, "gw")
	st := NewMemStore()
	batches := make([]int, 40)
	for i := range batches {
		batches[i] = 3
	}
	vtSeal(t, st, k, "", "gw-a", batches...)
	// Replace segments 5, 17 and 33 with another segment's bytes.
	other, err := st.Get(context.Background(), SegmentKey("", "gw-a", 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, i := range []uint64{5, 17, 33} {
		key := SegmentKey("", "gw-a", 3*i, 3*i+3)
		if err := st.Set(key, other); err != nil {
			t.Fatal(err)
		}
		want = append(want, key)
	}
	for range 5 {
		rep := vtVerify(t, st, VerifyOptions{Trust: vtTrust(t, "", k)})
		var got []string
		for _, f := range rep.all() {
			if f.Code == FindingSegmentHashMismatch {
				got = append(got, f.Object)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("hash mismatches reported for %v, want %v in that order", got, want)
		}
	}
}
