package worm

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Notices are what an auditor should know that does not make the trail
// invalid: the trail's own statements that records may be missing, and
// silences longer than its heartbeat allows. They do not change the exit
// status of verify.
const (
	// NoticeGapRecord: the gateway wrote a gap record (a crash, or records
	// refused while the trail could not take them).
	NoticeGapRecord = "gap_record"
	// NoticeAlertRecord: the gateway wrote an alert about its trail (the
	// store unreachable, or back).
	NoticeAlertRecord = "alert_record"
	// NoticeHeartbeatGap: no record at all for longer than twice the
	// heartbeat, outside a clean stop; the gateway was stalled or its clock
	// jumped.
	NoticeHeartbeatGap = "heartbeat_gap"
)

// silence follows a stream's record times across segments to find
// periods without any record, which heartbeats rule out while the
// gateway runs.
type silence struct {
	every time.Duration // the heartbeat, from the latest event or heartbeat; 0 until known
	// The latest record time so far, in TimeLayout, copied: the line it
	// came from is reused.
	maxB    [len(TimeLayout)]byte
	have    bool
	maxT    time.Time
	stopped bool // the latest record was a clean stop
	notices []Finding
	stream  string
}

// parse parses tm, which has TimeLayout's shape. Records come in time
// order, so most share their minute with the latest time: those are read
// from their seconds and nanoseconds alone.
func (s *silence) parse(tm string) (time.Time, error) {
	const minute = len("2006-01-02T15:04:")
	if s.have && tm[:minute] == string(s.maxB[:minute]) && tm[minute] <= '5' {
		var ns int64
		for _, c := range tm[minute : len(tm)-1] {
			if c != '.' {
				ns = ns*10 + int64(c-'0')
			}
		}
		return s.maxT.Truncate(time.Minute).Add(time.Duration(ns)), nil
	}
	return time.Parse(TimeLayout, tm)
}

// silenceObs is what the silence needs of one record, kept from a
// segment read ahead of the walk: its time, copied (the line it came from
// is reused), and for the trail's own records, which observe reads, the
// kind, time and line themselves.
type silenceObs struct {
	tm   [len(TimeLayout)]byte // the time, when it has TimeLayout's shape
	has  bool                  // the record had a time
	own  bool                  // one of the trail's own records: kind, tmS and line are set
	kind string
	tmS  string
	line string
}

// appendSilenceObs appends the observation of a record with time tm and
// kind, whose line is line.
func appendSilenceObs(obs []silenceObs, tm, kind, line string) []silenceObs {
	o := silenceObs{has: true}
	switch kind {
	case "gap", "alert", "heartbeat", "event":
		// line is a view of a reused buffer, and kind and tm views of
		// line: all are copied.
		o.own, o.kind = true, ownKinds[kind]
		o.line = string([]byte(line))
		o.tmS = string([]byte(tm))
	default:
		if !layoutTime(tm) {
			// observe does nothing with it.
			o.has = false
		}
		copy(o.tm[:], tm)
	}
	return append(obs, o)
}

var ownKinds = map[string]string{"gap": "gap", "alert": "alert", "heartbeat": "heartbeat", "event": "event"}

// replay observes a segment's records, the first being record start, in
// stream order.
func (s *silence) replay(start uint64, obs []silenceObs) {
	for i := range obs {
		o := &obs[i]
		switch {
		case o.own:
			s.observe(start+uint64(i), o.tmS, o.kind, o.line)
		case o.has:
			s.observe(start+uint64(i), unsafe.String(&o.tm[0], len(o.tm)), "", "")
		}
	}
}

// forget drops the latest time, for a segment not read (outside --from and
// --to, or missing): the silence cannot be measured across it.
func (s *silence) forget() { s.have, s.stopped = false, false }

// observe takes a record's time and kind in stream order; line is read
// only for the trail's own records.
func (s *silence) observe(index uint64, tm, kind string, line string) {
	switch kind {
	case "gap":
		g := gjson.Get(line, "gap")
		lost := "an unknown number of"
		if n := g.Get("lost"); n.Type == gjson.Number {
			lost = n.Raw
		}
		s.notices = append(s.notices, Finding{Stream: s.stream, Code: NoticeGapRecord,
			Msg: fmt.Sprintf("record %d at %s: the gateway states that %s records may be missing (%s)", index, tm, lost, g.Get("reason").Str)})
	case "alert":
		a := gjson.Get(line, "alert")
		s.notices = append(s.notices, Finding{Stream: s.stream, Code: NoticeAlertRecord,
			Msg: fmt.Sprintf("record %d at %s: %s (%s): %s", index, tm, a.Get("name").Str, a.Get("severity").Str, a.Get("detail").Str)})
	case "heartbeat":
		if ms := gjson.Get(line, "heartbeat.every_ms").Int(); ms > 0 {
			s.every = time.Duration(ms) * time.Millisecond
		}
	case "event":
		if ms := gjson.Get(line, "event.heartbeat_ms").Int(); ms > 0 {
			s.every = time.Duration(ms) * time.Millisecond
		}
	}
	if layoutTime(tm) && (!s.have || tm > string(s.maxB[:])) {
		if t, err := s.parse(tm); err == nil {
			if s.have && s.every > 0 && !s.stopped && kind != "gap" && t.Sub(s.maxT) > 2*s.every {
				s.notices = append(s.notices, Finding{Stream: s.stream, Code: NoticeHeartbeatGap,
					Msg: fmt.Sprintf("no record from %s to %s (%s, heartbeats due every %s), before record %d",
						s.maxB[:], tm, t.Sub(s.maxT).Round(time.Millisecond), s.every, index)})
			}
			copy(s.maxB[:], tm)
			s.have, s.maxT, s.stopped = true, t, false
		}
	}
	if kind == "event" && gjson.Get(line, "event.name").Str == "trail.stop" {
		s.stopped = true
	}
}
