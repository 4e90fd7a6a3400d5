package capture

import (
	"slices"
	"strings"
	"testing"
)

type sseTestEvent struct{ Event, Data, ID string }

func collectSSE(body []byte) ([]sseTestEvent, bool) {
	var evs []sseTestEvent
	clean := ForEachSSE(body, func(ev SSEEvent) bool {
		evs = append(evs, sseTestEvent{string(ev.Event), string(ev.Data), string(ev.ID)})
		return true
	})
	return evs, clean
}

func TestForEachSSE(t *testing.T) {
	d := func(data string) sseTestEvent { return sseTestEvent{Data: data} }
	tests := []struct {
		name  string
		body  string
		want  []sseTestEvent
		clean bool
	}{
		{"empty", "", nil, true},
		{"lf", "data: a\n\ndata: b\n\n", []sseTestEvent{d("a"), d("b")}, true},
		{"crlf", "event: x\r\ndata: a\r\n\r\ndata: b\r\n\r\n", []sseTestEvent{{Event: "x", Data: "a"}, d("b")}, true},
		{"cr", "data: a\r\rdata: b\r\r", []sseTestEvent{d("a"), d("b")}, true},
		{"mixed endings", "data: a\r\n\ndata: b\r\r\ndata: c\n\r", []sseTestEvent{d("a"), d("b"), d("c")}, true},
		{"multi-line data", "data: a\ndata:b\ndata\ndata:  c\n\n", []sseTestEvent{d("a\nb\n\n c")}, true},
		{"multi-line data crlf", "data: {\r\ndata: \"k\": 1\r\ndata: }\r\n\r\n", []sseTestEvent{d("{\n\"k\": 1\n}")}, true},
		{"comments", ": ping\n\n:\ndata: a\n: inside an event\n\n", []sseTestEvent{d("a")}, true},
		{"event without data", "event: ping\n\ndata: a\n\n", []sseTestEvent{d("a")}, true},
		{"id without data", "id: 7\n\n", nil, true},
		{"empty data", "data\n\ndata:\n\n", []sseTestEvent{d(""), d("")}, true},
		{"event, id and data", "event: message_start\nid: 42\ndata: {}\n\n", []sseTestEvent{{"message_start", "{}", "42"}}, true},
		{"no space after colon", "data:a\n\n", []sseTestEvent{d("a")}, true},
		{"one space dropped", "data:  a \n\n", []sseTestEvent{d(" a ")}, true},
		{"retry and unknown fields", "retry: 10\nfoo: bar\nDATA: x\ndata: a\n\n", []sseTestEvent{d("a")}, true},
		{"colon in value", "data: {\"a\":\"b:c\"}\n\n", []sseTestEvent{d(`{"a":"b:c"}`)}, true},
		{"blank lines around", "\n\n\ndata: a\n\n\n\n", []sseTestEvent{d("a")}, true},
		{"byte order mark", "\xef\xbb\xbfdata: a\n\n", []sseTestEvent{d("a")}, true},
		{"final event without blank line", "data: a\n\ndata: b\n", []sseTestEvent{d("a")}, false},
		{"final line without end", "data: a\n\ndata: b", []sseTestEvent{d("a")}, false},
		{"cut after a field", "data: a\n\nevent: x\n", []sseTestEvent{d("a")}, false},
		{"cut inside a comment", "data: a\n\n: keep", []sseTestEvent{d("a")}, false},
		{"ends after a comment line", "data: a\n\n: keep-alive\n", []sseTestEvent{d("a")}, true},
		{"cr ends the last blank line", "data: a\r\n\r", []sseTestEvent{d("a")}, true},
		{"lf only, no event", "\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, clean := collectSSE([]byte(tt.body))
			if !slices.Equal(got, tt.want) || clean != tt.clean {
				t.Errorf("ForEachSSE(%q) = %q, clean %v; want %q, clean %v", tt.body, got, clean, tt.want, tt.clean)
			}
		})
	}
}

func TestForEachSSEStopsEarly(t *testing.T) {
	calls := 0
	clean := ForEachSSE([]byte("data: a\n\ndata: b\n\ndata: c\n\n"), func(ev SSEEvent) bool {
		calls++
		return string(ev.Data) != "b"
	})
	if calls != 2 || clean {
		t.Errorf("calls = %d, clean = %v; want 2 calls and false", calls, clean)
	}
}

// TestForEachSSEKeepsData checks that an event's slices stay valid after fn
// returns, even for data joined from several lines, since the Reassemble
// functions keep them until the end.
func TestForEachSSEKeepsData(t *testing.T) {
	var kept [][]byte
	ForEachSSE([]byte("data: a\ndata: b\n\ndata: c\ndata: d\n\ndata: e\n\n"), func(ev SSEEvent) bool {
		kept = append(kept, ev.Data)
		return true
	})
	got := make([]string, len(kept))
	for i, k := range kept {
		got[i] = string(k)
	}
	if want := []string{"a\nb", "c\nd", "e"}; !slices.Equal(got, want) {
		t.Errorf("kept data = %q, want %q", got, want)
	}
}

// sseReference is a plain reading of the WHATWG parsing rules, written for
// clarity rather than speed, that the fuzz test holds ForEachSSE to.
func sseReference(body string) (evs []sseTestEvent, clean bool) {
	body = strings.TrimPrefix(body, "\ufeff")
	var lines []string
	start := 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '\r':
			lines = append(lines, body[start:i])
			if i+1 < len(body) && body[i+1] == '\n' {
				i++
			}
			start = i + 1
		case '\n':
			lines = append(lines, body[start:i])
			start = i + 1
		}
	}
	var (
		cur     sseTestEvent
		data    []string
		pending bool
	)
	for _, l := range lines {
		if l == "" {
			if data != nil {
				cur.Data = strings.Join(data, "\n")
				evs = append(evs, cur)
			}
			cur, data, pending = sseTestEvent{}, nil, false
			continue
		}
		if l[0] == ':' {
			continue
		}
		pending = true
		name, value, found := strings.Cut(l, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch name {
		case "event":
			cur.Event = value
		case "id":
			cur.ID = value
		case "data":
			data = append(data, value)
		}
	}
	return evs, start == len(body) && !pending
}

func FuzzForEachSSE(f *testing.F) {
	for _, s := range []string{
		"", "data: a\n\n", "event: x\r\ndata: a\r\ndata: b\r\n\r\n", "data: a\r\rid: 1\r\r",
		": c\n\ndata\n\n", "data: a\n\ndata: b", "\xef\xbb\xbfdata: x\r\n\r",
		"event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, clean := collectSSE(body)
		want, wantClean := sseReference(string(body))
		if !slices.Equal(got, want) || clean != wantClean {
			t.Fatalf("ForEachSSE(%q) = %q, clean %v; reference %q, clean %v", body, got, clean, want, wantClean)
		}
	})
}

func TestSSELooksLikeStream(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{"", true},
		{"d", true},
		{"dat", true},
		{"data", true},
		{"data: {}", true},
		{"event: x\n", true},
		{": comment", true},
		{"\r\n\r\nid: 1", true},
		{"retry: 5", true},
		{`{"error":{"message":"bad"}}`, false},
		{"<html><body>Bad Gateway</body></html>", false},
		{"datum: x\n", false},
		{"data2", false},
		{"hello world", false},
	}
	for _, tt := range tests {
		if got := sseLooksLikeStream([]byte(tt.body)); got != tt.want {
			t.Errorf("sseLooksLikeStream(%q) = %v, want %v", tt.body, got, tt.want)
		}
	}
}
