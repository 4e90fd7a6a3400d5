package worm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// readTestRecord is one record of the test trail, with the fields filters
// select on.
type readTestRecord struct {
	stream, id, kind, route, keyID, subject, requested, served string
	time                                                       time.Time
	index                                                      uint64
	line                                                       []byte
}

// readTestBase is the time of the test trail's first record.
var readTestBase = time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)

// readTestID makes a UUIDv7-shaped id whose time is t.
func readTestID(t time.Time, seq int) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%08x-%04x-7%03x-8000-%012x", ms>>16, ms&0xffff, seq&0xfff, seq)
}

// countingStore counts reads of segment objects.
type countingStore struct {
	Store
	mu   sync.Mutex
	gets map[string]int
}

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	if strings.Contains(key, "/seg/") {
		s.gets[key]++
	}
	s.mu.Unlock()
	return s.Store.Get(ctx, key)
}

func (s *countingStore) segmentReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.gets {
		n += c
	}
	return n
}

// readTestTrail seals two streams into a memory store: gw-a in segments
// of 3, 5, 4 and 6 records an hour apart, gw-b in segments of 4 and 3
// (ten minutes after gw-a's).
func readTestTrail(t testing.TB) (*MemStore, testKey, []readTestRecord) {
	t.Helper()
	key := newTestKey(t, "gw")
	st := NewMemStore()
	s := &Sealer{Store: st, Signer: key.signer, Now: func() time.Time { return readTestBase.Add(100 * time.Hour) }}
	var all []readTestRecord
	seq := 0
	for si, sizes := range [][]int{{3, 5, 4, 6}, {4, 3}} {
		stream := []string{"gw-a", "gw-b"}[si]
		state := SealState{Stream: stream}
		var index uint64
		for segN, n := range sizes {
			var lines [][]byte
			first := readTestBase.Add(time.Duration(segN)*time.Hour + time.Duration(si)*10*time.Minute)
			for i := 0; i < n; i++ {
				seq++
				r := readTestRecord{
					stream:    stream,
					time:      first.Add(time.Duration(i) * time.Second),
					kind:      "inference",
					route:     []string{"openai", "anthropic"}[seq%2],
					keyID:     fmt.Sprintf("k_%d", seq%3),
					subject:   fmt.Sprintf("svc-%d", seq%4),
					requested: "gpt-x",
					served:    fmt.Sprintf("gpt-x-%d", seq%2),
					index:     index,
				}
				if seq%5 == 0 {
					r.kind = "heartbeat"
				}
				r.id = readTestID(r.time, seq)
				r.line = fmt.Appendf(nil, `{"v":1,"id":"%s","time":"%s","kind":"%s","stream":"%s","route":"%s","method":"POST","path":"/v1/chat/completions","status":200,"caller":{"key_id":"%s","subject":"%s"},"model":{"requested":"%s","served":"%s"},"input":{"q":%d},"output":null}`,
					r.id, r.time.Format(TimeLayout), r.kind, stream, r.route, r.keyID, r.subject, r.requested, r.served, seq)
				lines = append(lines, r.line)
				all = append(all, r)
				index++
			}
			var err error
			if state, err = s.Seal(context.Background(), state, lines, first, first.Add(time.Duration(n-1)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st, key, all
}

func readTestTrust(t testing.TB, keys ...testKey) *Trust {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.vkey + "\n")
	}
	tr, err := ParseTrust("trust.pub", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestReaderStreamsAndManifests(t *testing.T) {
	st, key, _ := readTestTrail(t)
	ctx := context.Background()
	r := &Reader{Store: st, Trust: readTestTrust(t, key)}
	streams, err := r.Streams(ctx)
	if err != nil || !slices.Equal(streams, []string{"gw-a", "gw-b"}) {
		t.Fatalf("Streams = %v, %v", streams, err)
	}
	ms, err := r.Manifests(ctx, "gw-a")
	if err != nil {
		t.Fatal(err)
	}
	var ends []uint64
	for _, m := range ms {
		ends = append(ends, m.End)
	}
	if !slices.Equal(ends, []uint64{3, 8, 12, 18}) {
		t.Errorf("manifest ends %v, want [3 8 12 18]", ends)
	}
	// A manifest signed by a key the reader does not trust is refused.
	r.Trust = readTestTrust(t, newTestKey(t, "other"))
	if _, err := r.Manifests(ctx, "gw-a"); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "gw-a/manifest/00000000000000000003") {
		t.Errorf("Manifests with the wrong trust: %v", err)
	}
	// Without trust, signatures are not checked.
	r.Trust = nil
	if ms, err := r.Manifests(ctx, "gw-b"); err != nil || len(ms) != 2 {
		t.Errorf("Manifests without trust: %d, %v", len(ms), err)
	}
}

func TestReaderScanFilters(t *testing.T) {
	st, key, all := readTestTrail(t)
	r := &Reader{Store: st, Trust: readTestTrust(t, key)}
	hour := func(h int) time.Time { return readTestBase.Add(time.Duration(h) * time.Hour) }
	tests := []struct {
		name string
		f    Filter
		want func(readTestRecord) bool
	}{
		{"all", Filter{}, func(readTestRecord) bool { return true }},
		{"stream", Filter{Stream: "gw-b"}, func(r readTestRecord) bool { return r.stream == "gw-b" }},
		{"key id", Filter{KeyID: "k_1"}, func(r readTestRecord) bool { return r.keyID == "k_1" }},
		{"subject", Filter{Subject: "svc-2"}, func(r readTestRecord) bool { return r.subject == "svc-2" }},
		{"model served", Filter{Model: "gpt-x-1"}, func(r readTestRecord) bool { return r.served == "gpt-x-1" }},
		{"model requested", Filter{Model: "gpt-x"}, func(readTestRecord) bool { return true }},
		{"route", Filter{Route: "anthropic"}, func(r readTestRecord) bool { return r.route == "anthropic" }},
		{"kind", Filter{Kind: "heartbeat"}, func(r readTestRecord) bool { return r.kind == "heartbeat" }},
		{"id", Filter{ID: all[7].id}, func(r readTestRecord) bool { return r.id == all[7].id }},
		{"from", Filter{From: hour(2)}, func(r readTestRecord) bool { return !r.time.Before(hour(2)) }},
		{"to", Filter{To: hour(1).Add(2 * time.Second)}, func(r readTestRecord) bool { return !r.time.After(hour(1).Add(2 * time.Second)) }},
		{"combined", Filter{Stream: "gw-a", Route: "openai", From: hour(1), To: hour(2).Add(time.Minute)},
			func(r readTestRecord) bool {
				return r.stream == "gw-a" && r.route == "openai" && !r.time.Before(hour(1)) && !r.time.After(hour(2).Add(time.Minute))
			}},
		{"nothing", Filter{Subject: "nobody"}, func(readTestRecord) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want, got []string
			for _, rec := range all {
				if tt.want(rec) {
					want = append(want, fmt.Sprintf("%s/%d/%s", rec.stream, rec.index, rec.id))
				}
			}
			err := r.Scan(context.Background(), tt.f, func(stream string, index uint64, line []byte) error {
				got = append(got, fmt.Sprintf("%s/%d/%s", stream, index, gjson.GetBytes(line, "id").String()))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("Scan(%+v)\n got %v\nwant %v", tt.f, got, want)
			}
		})
	}
}

func TestReaderScanSkipsSegmentsByTime(t *testing.T) {
	mem, _, _ := readTestTrail(t)
	st := &countingStore{Store: mem, gets: map[string]int{}}
	r := &Reader{Store: st}
	// Only gw-a's third segment has records in hour 2; gw-b ends in hour 1.
	from := readTestBase.Add(2 * time.Hour)
	n := 0
	err := r.Scan(context.Background(), Filter{From: from, To: from.Add(30 * time.Minute)}, func(string, uint64, []byte) error {
		n++
		return nil
	})
	if err != nil || n != 4 {
		t.Fatalf("Scan of hour 2: %d records, %v; want 4", n, err)
	}
	if got := st.segmentReads(); got != 1 || st.gets["gw-a/seg/00000000000000000008-00000000000000000012.jsonl.zst"] != 1 {
		t.Errorf("segments read: %v, want only gw-a's [8, 12)", st.gets)
	}
}

func TestReaderScanStops(t *testing.T) {
	st, _, _ := readTestTrail(t)
	stop := errors.New("stop")
	n := 0
	err := (&Reader{Store: st}).Scan(context.Background(), Filter{}, func(string, uint64, []byte) error {
		if n++; n == 4 {
			return stop
		}
		return nil
	})
	if err != stop || n != 4 {
		t.Errorf("Scan with fn failing: %v after %d records", err, n)
	}
}

func TestReaderScanAlteredSegment(t *testing.T) {
	st, _, _ := readTestTrail(t)
	key := "gw-b/seg/00000000000000000000-00000000000000000004.jsonl.zst"
	data, _ := st.Get(context.Background(), key)
	data[len(data)-1] ^= 1
	st.Set(key, data)
	err := (&Reader{Store: st}).Scan(context.Background(), Filter{}, func(string, uint64, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "altered") {
		t.Errorf("Scan over an altered segment: %v", err)
	}
}

func TestReaderFind(t *testing.T) {
	mem, key, all := readTestTrail(t)
	st := &countingStore{Store: mem, gets: map[string]int{}}
	r := &Reader{Store: st, Trust: readTestTrust(t, key)}
	ctx := context.Background()
	for _, i := range []int{0, 5, 11, len(all) - 1} {
		want := all[i]
		st.gets = map[string]int{}
		stream, index, line, m, err := r.Find(ctx, want.id)
		if err != nil {
			t.Fatalf("Find(%s): %v", want.id, err)
		}
		if stream != want.stream || index != want.index || string(line) != string(want.line) || index < m.Start || index >= m.End {
			t.Errorf("Find(%s) = %s %d [%d, %d) %s; want %s %d", want.id, stream, index, m.Start, m.End, line, want.stream, want.index)
		}
		// The id's time picks the one segment holding it.
		if n := st.segmentReads(); n != 1 {
			t.Errorf("Find(%s) read %d segments: %v", want.id, n, st.gets)
		}
	}
	missing := readTestID(readTestBase.Add(time.Hour), 4000)
	if _, _, _, _, err := r.Find(ctx, missing); !errors.Is(err, ErrRecordNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Find(missing) = %v", err)
	}
	if _, _, _, _, err := r.Find(ctx, "not-a-uuid"); !errors.Is(err, ErrRecordNotFound) {
		t.Errorf("Find(not-a-uuid) = %v", err)
	}
}

func TestUUIDv7Time(t *testing.T) {
	at := time.Date(2026, 11, 27, 18, 0, 0, 123e6, time.UTC)
	if got, ok := uuidV7Time(readTestID(at, 1)); !ok || !got.Equal(at) {
		t.Errorf("uuidV7Time = %v %v, want %v", got, ok, at)
	}
	for _, id := range []string{"", "r1", "0193a5e2-7c1d-4c3e-9a4b-1f2e3d4c5b6a", "0193a5eZ-7c1d-7c3e-9a4b-1f2e3d4c5b6a"} {
		if _, ok := uuidV7Time(id); ok {
			t.Errorf("uuidV7Time(%q) has a time", id)
		}
	}
}
