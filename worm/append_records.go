package worm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// sysRecord is a record the appender writes itself: heartbeat, gap and
// trail events. Its keys begin in the order of every record (v, id, time,
// kind, stream); encoding/json keeps the field order.
type sysRecord struct {
	V         int               `json:"v"`
	ID        string            `json:"id"`
	Time      string            `json:"time"`
	Kind      string            `json:"kind"`
	Stream    string            `json:"stream"`
	Heartbeat *sysHeartbeatBody `json:"heartbeat,omitempty"`
	Gap       *SysGap           `json:"gap,omitempty"`
	Event     *sysEventBody     `json:"event,omitempty"`
	Alert     *sysAlertBody     `json:"alert,omitempty"`
}

// sysAlertBody is the body of an alert record the trail writes about
// itself.
type sysAlertBody struct {
	Name            string `json:"name"`
	Severity        string `json:"severity"`
	Detail          string `json:"detail"`
	PendingSegments int    `json:"pending_segments"`
}

func sysAlert(name, severity, detail string, pending int) *sysRecord {
	return &sysRecord{Kind: "alert", Alert: &sysAlertBody{Name: name, Severity: severity, Detail: detail, PendingSegments: pending}}
}

type sysHeartbeatBody struct {
	EveryMS int64 `json:"every_ms"`
}

// SysGap is the body of a gap record: what may be missing from the trail
// and why.
type SysGap struct {
	// Reason is "trail_failure" (records refused while the queue was full
	// or the spool failing; Lost counts them exactly) or
	// "unclean_shutdown" (the gateway stopped without closing the trail:
	// records accepted in the last group-commit window may be missing, and
	// their number is not known).
	Reason string `json:"reason"`
	// Lost is the number of records missing, when known.
	Lost *uint64 `json:"lost"`
	// First and Last bound the time the records went missing, when known.
	First *string `json:"first"`
	Last  *string `json:"last"`
	// After is the index of the last record kept before the gap, for
	// unclean_shutdown; null when the stream was empty.
	After *uint64 `json:"after"`
	// TornBytes counts the bytes cut from the end of the spool on recovery.
	TornBytes int64  `json:"torn_bytes"`
	Detail    string `json:"detail"`
}

type sysEventBody struct {
	Name        string `json:"name"`
	HeartbeatMS int64  `json:"heartbeat_ms"`
}

func sysHeartbeat(every time.Duration) *sysRecord {
	return &sysRecord{Kind: "heartbeat", Heartbeat: &sysHeartbeatBody{EveryMS: every.Milliseconds()}}
}

func sysEvent(name string, heartbeat time.Duration) *sysRecord {
	return &sysRecord{Kind: "event", Event: &sysEventBody{Name: name, HeartbeatMS: heartbeat.Milliseconds()}}
}

func sysGapLost(n uint64, first, last time.Time, cause string) *sysRecord {
	f, l := first.UTC().Format(TimeLayout), last.UTC().Format(TimeLayout)
	detail := "records refused while the trail could not take them (queue full, spool failing, or spool full while the store lagged)"
	if cause != "" {
		detail += ": " + cause
	}
	return &sysRecord{Kind: "gap", Gap: &SysGap{Reason: "trail_failure", Lost: &n, First: &f, Last: &l, Detail: detail}}
}

func sysGapUnclean(after *uint64, lastTime time.Time, torn int64) *sysRecord {
	g := &SysGap{Reason: "unclean_shutdown", After: after, TornBytes: torn,
		Detail: "the gateway stopped without closing the trail; records accepted in its last group-commit window may be missing"}
	if !lastTime.IsZero() {
		s := lastTime.UTC().Format(TimeLayout)
		g.First = &s
	}
	return &sysRecord{Kind: "gap", Gap: g}
}

// line encodes the record at time now with a fresh UUIDv7.
func (r *sysRecord) line(now time.Time) ([]byte, time.Time) {
	r.V = 1
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	r.ID = id.String()
	now = now.UTC()
	r.Time = now.Format(TimeLayout)
	b, err := json.Marshal(r)
	if err != nil {
		// The fields are strings and numbers; this cannot fail.
		panic(fmt.Sprintf("encode %s record: %v", r.Kind, err))
	}
	return b, now
}

// recordTimeWindow is how far into a line recordTime looks for "time".
// Every record begins with v, id and time.
const recordTimeWindow = 256

// recordTime checks that line looks like a record — one JSON object of
// valid UTF-8 on one line — and returns the time given by its "time" key,
// which must appear near the start.
func recordTime(line []byte) (time.Time, error) {
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
		return time.Time{}, fmt.Errorf("%w: not a JSON object", ErrBadRecord)
	}
	if bytes.IndexByte(line, '\n') >= 0 || bytes.IndexByte(line, '\r') >= 0 {
		return time.Time{}, fmt.Errorf("%w: a record is one line, without carriage returns", ErrBadRecord)
	}
	if !utf8.Valid(line) {
		return time.Time{}, fmt.Errorf("%w: not valid UTF-8", ErrBadRecord)
	}
	head := line[:min(len(line), recordTimeWindow)]
	i := bytes.Index(head, []byte(`"time":"`))
	if i < 0 {
		return time.Time{}, fmt.Errorf("%w: no \"time\" within its first %d bytes", ErrBadRecord, recordTimeWindow)
	}
	rest := line[i+len(`"time":"`):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, fmt.Errorf("%w: unterminated \"time\"", ErrBadRecord)
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: \"time\" %q is not RFC 3339", ErrBadRecord, rest[:j])
	}
	return t, nil
}
