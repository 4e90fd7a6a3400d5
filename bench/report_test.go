package bench

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// syntheticReport has two rates, three targets (one with a PID and
// metrics), errors and late sends, saturation and streaming.
func syntheticReport() *Report {
	o := Options{
		Targets: []Target{
			{Name: "direct", URL: "http://127.0.0.1:9001"},
			{Name: "nginx", URL: "http://127.0.0.1:9002", PID: 42},
			{Name: "auditgate <&>", URL: "http://127.0.0.1:9003", PID: 43, Metrics: "http://127.0.0.1:9004/metrics"},
		},
		Rates:      []int{500, 2000},
		Saturation: DefaultSaturation,
	}.withDefaults()
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	res := func(target string, shift float64, n int) Result {
		l := Percentiles{P50: ms(0.2 + shift), P90: ms(0.4 + shift), P99: ms(1.1 + shift), P999: ms(3 + shift), Max: ms(9 + shift)}
		r := Result{Target: target, Sent: n, OK: n, Achieved: float64(n) / 10, Latency: l}
		for x := 0.30103; x <= 4; x += 0.25 {
			r.Curve = append(r.Curve, Quantile{Q: 1 - 1/pow10(x), Latency: ms(0.2 + shift + x*x/2)})
		}
		return r
	}
	var steps []Step
	for _, rate := range o.Rates {
		n := rate * 10
		d, g, a := res("direct", 0, n), res("nginx", 0.15, n), res("auditgate <&>", 0.3, n)
		g.CPUPer1000 = 0.081
		a.CPUPer1000, a.AllocsPerRequest, a.TrailRecordsPerSec, a.TrailBytesPerRecord = 0.3, 42.5, float64(rate), 2100
		a.OK, a.Errors, a.Late, a.Error = n-3, 3, 17, "status 502"
		steps = append(steps, Step{Rate: rate, Results: []Result{d, g, a}})
	}
	return &Report{
		Started: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC),
		Machine: Machine{GOOS: "linux", GOARCH: "amd64", NumCPU: 2, CPUModel: "AMD EPYC", GoVersion: "go1.26.8"},
		Options: o,
		Steps:   steps,
		Saturation: []Saturation{
			{Target: "direct", OK: 150000, Achieved: 30000, Latency: Percentiles{P50: ms(1.5), P99: ms(6)}},
			{Target: "nginx", OK: 100000, Achieved: 20000, Latency: Percentiles{P50: ms(2.5), P99: ms(9)}, CPUPer1000: 0.05},
			{Target: "auditgate <&>", OK: 90000, Errors: 1, Error: "read answer: EOF", Achieved: 18000, Latency: Percentiles{P50: ms(3), P99: ms(12)}, CPUPer1000: 0.1},
		},
		Stream: []StreamResult{
			{Target: "direct", Sent: 60, OK: 60, TTFB: Percentiles{P50: ms(0.3), P99: ms(0.9)}, Latency: Percentiles{P50: ms(40)}, MeanGap: ms(2), Gaps: 1200},
			{Target: "nginx", Sent: 60, OK: 60, TTFB: Percentiles{P50: ms(0.45), P99: ms(1.2)}, Latency: Percentiles{P50: ms(40.2)}, MeanGap: ms(2.01), Gaps: 1200},
			{Target: "auditgate <&>", Sent: 60, OK: 60, TTFB: Percentiles{P50: ms(0.6), P99: ms(2)}, Latency: Percentiles{P50: ms(41)}, MeanGap: ms(2.02), Gaps: 1200},
		},
	}
}

func pow10(x float64) float64 {
	v := 1.0
	for ; x >= 1; x-- {
		v *= 10
	}
	// Good enough between integer decades for a synthetic curve.
	return v * (1 + x*9)
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := syntheticReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	lines := strings.Split(out, "\n")
	// row finds the table row of target after the line that starts with
	// heading and returns its fields.
	row := func(heading, target string) []string {
		t.Helper()
		in := false
		for _, l := range lines {
			if strings.HasPrefix(l, heading) {
				in = true
			}
			if in && strings.HasPrefix(strings.TrimSpace(l), target+" ") {
				return strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), target))
			}
		}
		t.Fatalf("no row for %q under %q in:\n%s", target, heading, out)
		return nil
	}
	tests := []struct {
		heading, target string
		want            []string
	}{
		{"500 requests/s", "direct", []string{"0.200", "0.400", "1.10", "3.00", "9.00", "+0", "+0", "500", "0", "0", "-", "-", "-", "-"}},
		{"500 requests/s", "nginx", []string{"0.350", "0.550", "1.25", "3.15", "9.15", "+0.150", "+0.150", "500", "0", "0", "0.081", "-", "-", "-"}},
		{"2000 requests/s", "auditgate <&>", []string{"0.500", "0.700", "1.40", "3.30", "9.30", "+0.300", "+0.300", "2000", "3", "17", "0.300", "42.5", "2000", "2100"}},
		{"saturation", "nginx", []string{"20000", "67%", "2.50", "9.00", "0", "0.050"}},
		{"streaming", "auditgate <&>", []string{"0.600", "2.00", "+0.300", "+1.10", "2.02", "+0.020", "41.0", "60", "0"}},
	}
	for _, tt := range tests {
		if got := row(tt.heading, tt.target); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s, %s: %q, want %q", tt.heading, tt.target, got, tt.want)
		}
	}
	for _, want := range []string{
		"machine: linux/amd64, 2 CPUs (AMD EPYC), go1.26.8",
		"mix: chat (POST /v1/chat/completions, 2048 B) weight 1; chat-stream (POST /v1/chat/completions, 2048 B, streamed) weight 0",
		"  auditgate <&>: 3 errors, the first: status 502",
		"  auditgate <&>: 1 error, the first: read answer: EOF",
		"late: sends that started over 10ms behind schedule",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestWriteTextWithoutDirect(t *testing.T) {
	r := syntheticReport()
	r.Options.Targets = r.Options.Targets[1:]
	for i := range r.Steps {
		r.Steps[i].Results = r.Steps[i].Results[1:]
	}
	r.Saturation, r.Stream = r.Saturation[1:], r.Stream[1:]
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "+") {
		t.Errorf("added columns without a direct target:\n%s", b.String())
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	r := syntheticReport()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("unmarshal: %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("round trip changed the report:\n got %+v\nwant %+v", back, *r)
	}
	var again bytes.Buffer
	if err := back.WriteJSON(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), b.Bytes()) {
		t.Error("the report read back writes different JSON")
	}
}
