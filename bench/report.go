package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is what Run measured. Durations are in nanoseconds in its JSON.
type Report struct {
	Started time.Time
	Machine Machine
	// Options are the effective options, defaults filled in.
	Options    Options
	Steps      []Step         // one per rate
	Saturation []Saturation   // one per target, if Options.Saturation > 0
	Stream     []StreamResult // one per target, if the mix has a Stream request
}

// Machine describes where the load ran.
type Machine struct {
	GOOS, GOARCH string
	NumCPU       int
	CPUModel     string // from /proc/cpuinfo, if readable
	GoVersion    string
}

func currentMachine() Machine {
	m := Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(), GoVersion: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Step is one open-loop rate.
type Step struct {
	Rate    int // requests per second offered to each target
	Results []Result
}

// Result is one target's measurement at one rate.
type Result struct {
	Target string
	// Sent counts requests sent; OK those answered 2xx; Errors those that
	// failed in transport or were answered otherwise.
	Sent, OK, Errors int
	// Late counts sends that started more than 10 ms behind schedule: the
	// load generator, not the target, was behind. Their latency still counts
	// from the schedule.
	Late int
	// Achieved is OK answers per second of the target's slices, the drain
	// of each slice included.
	Achieved float64
	// Latency is from each request's scheduled time to the end of its
	// answer's body, over OK answers.
	Latency Percentiles
	// Curve is the latency at percentiles from the 50th to the highest the
	// count resolves, for plots.
	Curve []Quantile `json:",omitempty"`
	// CPUPer1000 is CPU seconds of Target.PID and its children per 1,000
	// requests sent; 0 without a PID.
	CPUPer1000 float64
	// AllocsPerRequest is the growth of go_memstats_mallocs_total per
	// request sent, the cost of scraping taken off; 0 without Metrics.
	AllocsPerRequest float64
	// TrailRecordsPerSec is the growth of auditgate_trail_records_total
	// per second of the target's slices; 0 without Metrics.
	TrailRecordsPerSec float64
	// TrailBytesPerRecord is the growth of
	// auditgate_trail_record_bytes_total over that of
	// auditgate_trail_records_total; 0 if either is absent.
	TrailBytesPerRecord float64
	// Error is the first error seen, if any.
	Error string `json:",omitempty"`
}

// Percentiles of a latency distribution.
type Percentiles struct {
	P50, P90, P99, P999, Max time.Duration
}

// Quantile is one point of a latency distribution: Q of the answers took
// Latency or less.
type Quantile struct {
	Q       float64
	Latency time.Duration
}

// Saturation is one target's closed-loop run.
type Saturation struct {
	Target     string
	OK, Errors int
	Achieved   float64     // OK answers per second
	Latency    Percentiles // from each send to the end of its answer
	CPUPer1000 float64
	Error      string `json:",omitempty"`
}

// StreamResult is one target's streaming measurement.
type StreamResult struct {
	Target                 string
	Sent, OK, Errors, Late int
	// TTFB is from the scheduled time to the end of the first data event.
	TTFB Percentiles
	// Latency is from the scheduled time to the end of the stream.
	Latency Percentiles
	// MeanGap is the mean time between successive data events of a stream,
	// over Gaps such gaps.
	MeanGap time.Duration
	Gaps    int
	Error   string `json:",omitempty"`
}

func micros(v int64) time.Duration { return time.Duration(v) * time.Microsecond }

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		P50:  micros(h.ValueAtQuantile(50)),
		P90:  micros(h.ValueAtQuantile(90)),
		P99:  micros(h.ValueAtQuantile(99)),
		P999: micros(h.ValueAtQuantile(99.9)),
		Max:  micros(h.Max()),
	}
}

// curve samples h at percentiles evenly spaced on a log(1/(1-q)) scale,
// from the 50th to the one a single sample resolves (1 - 1/count), at most
// the 99.999th.
func curve(h *hdrhistogram.Histogram) []Quantile {
	n := h.TotalCount()
	if n < 2 {
		return nil
	}
	const step = 0.05
	top := min(math.Log10(float64(n)), 5)
	var out []Quantile
	for x := math.Log10(2); x <= top+1e-9; x += step {
		q := 1 - math.Pow(10, -x)
		out = append(out, Quantile{Q: q, Latency: micros(h.ValueAtQuantile(q * 100))})
	}
	return out
}

func resultOf(target string, t *tally) Result {
	r := Result{
		Target:  target,
		Sent:    int(t.sent.Load()),
		OK:      int(t.ok.Load()),
		Errors:  int(t.errs.Load()),
		Late:    int(t.late.Load()),
		Latency: percentiles(t.latency),
		Curve:   curve(t.latency),
		Error:   t.firstErr,
	}
	if s := t.elapsed.Seconds(); s > 0 {
		r.Achieved = float64(r.OK) / s
	}
	if r.Sent > 0 {
		r.CPUPer1000 = t.cpu.Seconds() / float64(r.Sent) * 1000
	}
	return r
}

// addMetrics sets the figures taken from the target's counters.
func (r *Result) addMetrics(d map[string]float64, elapsed time.Duration) {
	if v, ok := d[metricMallocs]; ok && r.Sent > 0 {
		r.AllocsPerRequest = v / float64(r.Sent)
	}
	records, ok := d[metricRecords]
	if ok && elapsed > 0 {
		r.TrailRecordsPerSec = records / elapsed.Seconds()
	}
	if b, hasBytes := d[metricRecordBytes]; hasBytes && ok && records > 0 {
		r.TrailBytesPerRecord = b / records
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// referenceName is the target that added latency is measured against.
const referenceName = "direct"

// WriteText writes the report as tables: per rate, per target latency
// percentiles, latency added over the target named "direct" (if there is
// one), throughput, errors and costs; then saturation, then streaming.
func (r *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	o := r.Options
	fmt.Fprintf(&b, "auditgate bench, %s\n", r.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	m := r.Machine
	fmt.Fprintf(&b, "machine: %s/%s, %d CPUs", m.GOOS, m.GOARCH, m.NumCPU)
	if m.CPUModel != "" {
		fmt.Fprintf(&b, " (%s)", m.CPUModel)
	}
	fmt.Fprintf(&b, ", %s\n", m.GoVersion)
	fmt.Fprintf(&b, "load: open loop, %v per rate and target in %v slices taken in turn, %v warmup, up to %d connections per target\n",
		o.Duration, o.Slice, max(o.Warmup, 0), o.Connections)
	for i, q := range o.Mix {
		if i == 0 {
			b.WriteString("mix: ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (%s %s, %d B", q.Name, orDefault(q.Method, "POST"), q.Path, len(q.Body))
		if q.Stream {
			b.WriteString(", streamed")
		}
		fmt.Fprintf(&b, ") weight %d", q.Weight)
	}
	b.WriteString("\nlatency in ms, from each request's scheduled send to the end of its answer")
	if r.hasReference() {
		b.WriteString(`; "+" columns are added over ` + referenceName)
	}
	b.WriteString("\n")

	for _, s := range r.Steps {
		fmt.Fprintf(&b, "\n%d requests/s\n", s.Rate)
		r.writeStep(&b, s)
	}
	if len(r.Saturation) > 0 {
		fmt.Fprintf(&b, "\nsaturation: closed loop, %d workers, %v per target\n", o.Concurrency, o.Saturation)
		r.writeSaturation(&b)
	}
	if len(r.Stream) > 0 {
		fmt.Fprintf(&b, "\nstreaming: %d requests/s for %v per target; TTFB to the first data event, gap between data events\n",
			o.StreamRate, o.StreamDuration)
		r.writeStream(&b)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (r *Report) hasReference() bool {
	for _, t := range r.Options.Targets {
		if t.Name == referenceName {
			return true
		}
	}
	for _, s := range r.Steps {
		for _, res := range s.Results {
			if res.Target == referenceName {
				return true
			}
		}
	}
	return false
}

// target returns the options of the named target.
func (r *Report) target(name string) Target {
	for _, t := range r.Options.Targets {
		if t.Name == name {
			return t
		}
	}
	return Target{Name: name}
}

func newTable(b *bytes.Buffer) *tabwriter.Writer {
	return tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// name pads a target's name to the longest, so that in a right-aligned
// table the names still line up on the left.
func (r *Report) name(s string) string {
	w := len("target")
	for _, t := range r.plotTargets() {
		w = max(w, len(t))
	}
	for _, s := range r.Saturation {
		w = max(w, len(s.Target))
	}
	for _, s := range r.Stream {
		w = max(w, len(s.Target))
	}
	return s + strings.Repeat(" ", w-len(s))
}

// errorLine reports a target's errors under a table.
func errorLine(b *bytes.Buffer, target string, n int, first string) {
	if n == 0 {
		return
	}
	noun := "errors"
	if n == 1 {
		noun = "error"
	}
	fmt.Fprintf(b, "  %s: %d %s, the first: %s\n", target, n, noun, first)
}

func (r *Report) writeStep(b *bytes.Buffer, s Step) {
	var ref *Result
	for i := range s.Results {
		if s.Results[i].Target == referenceName {
			ref = &s.Results[i]
		}
	}
	tw := newTable(b)
	fmt.Fprintf(tw, "%s\tp50\tp90\tp99\tp99.9\tmax\t", r.name("target"))
	if ref != nil {
		fmt.Fprint(tw, "+p50\t+p99\t")
	}
	fmt.Fprint(tw, "req/s\terrors\tlate\tCPU s/1000\tallocs/req\ttrail rec/s\tbytes/rec\t\n")
	for _, res := range s.Results {
		l := res.Latency
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t", r.name(res.Target), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max))
		if ref != nil {
			fmt.Fprintf(tw, "%s\t%s\t", added(l.P50, ref.Latency.P50), added(l.P99, ref.Latency.P99))
		}
		t := r.target(res.Target)
		fmt.Fprintf(tw, "%.0f\t%d\t%d\t%s\t%s\t%s\t%s\t\n", res.Achieved, res.Errors, res.Late,
			figure(t.PID != 0, res.CPUPer1000, 3), figure(t.Metrics != "", res.AllocsPerRequest, 1),
			figure(t.Metrics != "", res.TrailRecordsPerSec, 0), figure(res.TrailBytesPerRecord > 0, res.TrailBytesPerRecord, 0))
	}
	tw.Flush()
	late := 0
	for _, res := range s.Results {
		errorLine(b, res.Target, res.Errors, res.Error)
		late += res.Late
	}
	if late > 0 {
		fmt.Fprintf(b, "  late: sends that started over %v behind schedule (the load generator fell behind; their wait is counted)\n", lateThreshold)
	}
}

func (r *Report) writeSaturation(b *bytes.Buffer) {
	var ref *Saturation
	for i := range r.Saturation {
		if r.Saturation[i].Target == referenceName {
			ref = &r.Saturation[i]
		}
	}
	tw := newTable(b)
	fmt.Fprintf(tw, "%s\treq/s\t", r.name("target"))
	if ref != nil {
		fmt.Fprint(tw, "of direct\t")
	}
	fmt.Fprint(tw, "p50\tp99\terrors\tCPU s/1000\t\n")
	for _, s := range r.Saturation {
		fmt.Fprintf(tw, "%s\t%.0f\t", r.name(s.Target), s.Achieved)
		if ref != nil {
			share := "-"
			if ref.Achieved > 0 {
				share = fmt.Sprintf("%.0f%%", 100*s.Achieved/ref.Achieved)
			}
			fmt.Fprintf(tw, "%s\t", share)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t\n", ms(s.Latency.P50), ms(s.Latency.P99), s.Errors,
			figure(r.target(s.Target).PID != 0, s.CPUPer1000, 3))
	}
	tw.Flush()
	for _, s := range r.Saturation {
		errorLine(b, s.Target, s.Errors, s.Error)
	}
}

func (r *Report) writeStream(b *bytes.Buffer) {
	var ref *StreamResult
	for i := range r.Stream {
		if r.Stream[i].Target == referenceName {
			ref = &r.Stream[i]
		}
	}
	tw := newTable(b)
	fmt.Fprintf(tw, "%s\tTTFB p50\tTTFB p99\t", r.name("target"))
	if ref != nil {
		fmt.Fprint(tw, "+TTFB p50\t+TTFB p99\t")
	}
	fmt.Fprint(tw, "mean gap\t")
	if ref != nil {
		fmt.Fprint(tw, "+gap\t")
	}
	fmt.Fprint(tw, "end p50\tok\terrors\t\n")
	for _, s := range r.Stream {
		fmt.Fprintf(tw, "%s\t%s\t%s\t", r.name(s.Target), ms(s.TTFB.P50), ms(s.TTFB.P99))
		if ref != nil {
			fmt.Fprintf(tw, "%s\t%s\t", added(s.TTFB.P50, ref.TTFB.P50), added(s.TTFB.P99, ref.TTFB.P99))
		}
		fmt.Fprintf(tw, "%s\t", ms(s.MeanGap))
		if ref != nil {
			fmt.Fprintf(tw, "%s\t", added(s.MeanGap, ref.MeanGap))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", ms(s.Latency.P50), s.OK, s.Errors)
	}
	tw.Flush()
	for _, s := range r.Stream {
		errorLine(b, s.Target, s.Errors, s.Error)
	}
}

// ms formats d in milliseconds with about three significant digits.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a < 1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case a < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// added formats d - ref in milliseconds with its sign.
func added(d, ref time.Duration) string {
	s := ms(d - ref)
	if d >= ref {
		s = "+" + s
	}
	return s
}

// figure formats v with prec decimals, or "-" when there is nothing to show.
func figure(ok bool, v float64, prec int) string {
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}
