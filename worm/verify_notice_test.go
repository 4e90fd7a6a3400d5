package worm

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestVerifyNotices seals records by hand and checks the notices: a
// silence longer than twice the heartbeat is reported unless a clean stop
// precedes it, and a gap record is reported with its count.
func TestVerifyNotices(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	at := func(s float64) string { return t0.Add(time.Duration(s * float64(time.Second))).Format(TimeLayout) }
	rec := func(s float64, kind, body string) []byte {
		line := fmt.Sprintf(`{"v":1,"id":"x","time":%q,"kind":%q,"stream":"s1"`, at(s), kind)
		if body != "" {
			line += "," + body
		}
		return []byte(line + "}")
	}
	start := `"event":{"name":"trail.start","heartbeat_ms":1000}`
	stop := `"event":{"name":"trail.stop","heartbeat_ms":1000}`
	lines := [][]byte{
		rec(0, "event", start),
		rec(0.5, "inference", ""),
		rec(1.5, "heartbeat", `"heartbeat":{"every_ms":1000}`),
		rec(1.4, "inference", ""), // recorded at its start, appended later
		rec(9, "inference", ""),   // 7.5 s of silence: a notice
		rec(9.5, "event", stop),
		rec(60, "event", start), // a clean restart: no notice
		rec(60.1, "gap", `"gap":{"reason":"trail_failure","lost":3}`),
		rec(61, "heartbeat", `"heartbeat":{"every_ms":1000}`),
	}
	k := newTestKey(t, "gw-test")
	st := NewMemStore()
	s := &Sealer{Store: st, Signer: k.signer, Now: func() time.Time { return t0.Add(time.Hour) }}
	if _, err := s.Seal(context.Background(), SealState{Stream: "s1"}, lines, t0, t0.Add(61*time.Second)); err != nil {
		t.Fatal(err)
	}
	trust, _ := ParseTrust("t", []byte(k.vkey+"\n"))
	rep := vtVerify(t, st, VerifyOptions{Trust: trust})
	if !rep.OK() {
		t.Fatalf("findings: %v", rep.all())
	}
	ns := rep.Streams[0].Notices
	if len(ns) != 2 {
		t.Fatalf("notices %v, want a heartbeat gap and a gap record", ns)
	}
	if ns[0].Code != NoticeHeartbeatGap || !strings.Contains(ns[0].Msg, "from "+at(1.5)+" to "+at(9)) || !strings.Contains(ns[0].Msg, "before record 4") {
		t.Errorf("heartbeat gap notice: %v", ns[0])
	}
	if ns[1].Code != NoticeGapRecord || !strings.Contains(ns[1].Msg, "record 7") || !strings.Contains(ns[1].Msg, "3 records may be missing (trail_failure)") {
		t.Errorf("gap record notice: %v", ns[1])
	}
}

// TestSilenceParse: the fast path for times sharing the latest time's
// minute reads them as time.Parse does.
func TestSilenceParse(t *testing.T) {
	base := time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC)
	var s silence
	for i, d := range []time.Duration{0, 1, 999_999_999, 59*time.Second + 999_999_999, 60 * time.Second, 61*time.Second + 7, time.Hour + 3*time.Second} {
		tm := base.Add(d).Format(TimeLayout)
		want, err := time.Parse(TimeLayout, tm)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.parse(tm)
		if err != nil || !got.Equal(want) {
			t.Errorf("%d: parse(%s) = %v, %v; want %v", i, tm, got, err, want)
		}
		copy(s.maxB[:], tm)
		s.have, s.maxT = true, want
	}
}
