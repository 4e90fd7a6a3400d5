package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultDuration    = 10 * time.Second
	DefaultSlice       = time.Second
	DefaultWarmup      = time.Second
	DefaultSaturation  = 5 * time.Second
	DefaultConcurrency = 64
	DefaultConnections = 256
	DefaultStreamRate  = 20
	// DefaultStreamDuration is short: the streaming measurement is about
	// time to first event and gaps between events, not throughput.
	DefaultStreamDuration = 3 * time.Second
	DefaultTimeout        = 10 * time.Second
	// DefaultResponseSize is the MockOptions.ResponseSize that DefaultMix is
	// meant for: 2 KB requests answered with about 1 KB of text.
	DefaultResponseSize = 1024
)

// DefaultRates are the open-loop steps used when Options.Rates is empty.
var DefaultRates = []int{500, 1000, 2000}

// ErrInvalidOptions is returned, wrapped with every problem found, by
// Options.Validate and Run.
var ErrInvalidOptions = errors.New("invalid bench options")

// Target is one way to reach the upstream: "direct", "nginx", "auditgate".
type Target struct {
	Name string
	// URL is the base URL requests are sent to: http or https, a host and
	// port, and an optional path prefix that Request paths are appended to.
	URL string
	// PID is the process whose CPU time, with that of its child processes,
	// is charged to the target. If zero, none is.
	PID int
	// Metrics is the Prometheus /metrics URL of an auditgate admin API. If
	// empty, the target's allocation and trail figures are zero.
	Metrics string
}

// Request is one kind of request in the mix.
type Request struct {
	Name   string // "chat", "chat-stream", "embeddings", "infer"
	Method string // if empty, POST
	Path   string
	Body   []byte
	// Header is sent with the request. Without a User-Agent, it is
	// "auditgate-bench"; without a Content-Type, a body is sent as
	// application/json.
	Header map[string]string
	// Stream marks a server-sent-events answer: its time to the first data
	// event and the gaps between events are measured.
	Stream bool
	// Weight is the request's share of the open-loop and closed-loop mix. A
	// request with weight 0 is left out of them; a Stream request still
	// serves the streaming measurement.
	Weight int
}

// Options configure Run. The zero value is valid: every field documents what
// zero means.
type Options struct {
	Targets []Target
	// Mix is what is sent. If empty, DefaultMix().
	Mix []Request
	// Rates are the open-loop steps, in requests per second. If empty,
	// DefaultRates.
	Rates []int
	// Duration is the measured time per step and target. If zero, 10 s.
	Duration time.Duration
	// Slice is how long one target is loaded before the next one's turn:
	// each step runs the targets in turn, Slice each, until each had
	// Duration, so that noise on a shared machine hits them alike. If zero,
	// 1 s.
	Slice time.Duration
	// Warmup is an unmeasured open-loop run per target, at the first rate,
	// before the steps. If zero, 1 s; if negative, none.
	Warmup time.Duration
	// Saturation is the length of the closed-loop maximum-throughput run per
	// target. If zero, there is none; DefaultSaturation is a usual choice.
	Saturation time.Duration
	// Concurrency is the number of closed-loop workers. If zero, 64.
	Concurrency int
	// Connections is the most keep-alive connections per target, and so the
	// most open-loop requests in flight at once. If zero, 256.
	Connections int
	// StreamRate is the open-loop rate of the streaming measurement, in
	// requests per second. If zero, 20.
	StreamRate int
	// StreamDuration is the streaming measurement's time per target. If
	// zero, 3 s; if negative, there is none. There is none either when the
	// mix has no Stream request.
	StreamDuration time.Duration
	// Timeout bounds each request, answer body included. If zero, 10 s.
	Timeout time.Duration
	// Progress receives one line per step and target as the run goes. If
	// nil, nothing is written.
	Progress io.Writer `json:"-"`
}

// withDefaults returns o with its zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if len(o.Mix) == 0 {
		o.Mix = DefaultMix()
	}
	if len(o.Rates) == 0 {
		o.Rates = append([]int(nil), DefaultRates...)
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&o.Duration, DefaultDuration)
	set(&o.Slice, DefaultSlice)
	set(&o.Warmup, DefaultWarmup)
	set(&o.StreamDuration, DefaultStreamDuration)
	set(&o.Timeout, DefaultTimeout)
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Connections == 0 {
		o.Connections = DefaultConnections
	}
	if o.StreamRate == 0 {
		o.StreamRate = DefaultStreamRate
	}
	return o
}

// Validate reports every problem of o, each naming its field, wrapped in
// ErrInvalidOptions. Zero values are valid.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(o.Targets) == 0 {
		bad("Targets: at least one target is needed")
	}
	seen := make(map[string]int)
	for i, t := range o.Targets {
		switch j, dup := seen[t.Name]; {
		case t.Name == "":
			bad("Targets[%d].Name: must not be empty", i)
		case dup:
			bad("Targets[%d].Name: %q is also the name of Targets[%d]", i, t.Name, j)
		default:
			seen[t.Name] = i
		}
		if _, _, err := parseBase(t.URL); err != nil {
			bad("Targets[%d].URL: %v", i, err)
		}
		if t.PID < 0 {
			bad("Targets[%d].PID: must not be negative", i)
		}
		if t.Metrics != "" {
			if u, err := url.Parse(t.Metrics); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("Targets[%d].Metrics: %q is not an http or https URL", i, t.Metrics)
			}
		}
	}
	weighted := len(o.Mix) == 0
	for i, r := range o.Mix {
		if r.Name == "" {
			bad("Mix[%d].Name: must not be empty", i)
		}
		if !strings.HasPrefix(r.Path, "/") {
			bad("Mix[%d].Path: %q does not start with /", i, r.Path)
		}
		if r.Weight < 0 {
			bad("Mix[%d].Weight: must not be negative", i)
		}
		weighted = weighted || r.Weight > 0
	}
	if !weighted {
		bad("Mix: no request has a positive Weight")
	}
	for i, r := range o.Rates {
		if r <= 0 {
			bad("Rates[%d]: %d is not a positive rate", i, r)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"Duration", o.Duration}, {"Slice", o.Slice}, {"Saturation", o.Saturation}, {"Timeout", o.Timeout}} {
		if f.v < 0 {
			bad("%s: %v must not be negative", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"Concurrency", o.Concurrency}, {"Connections", o.Connections}, {"StreamRate", o.StreamRate}} {
		if f.v < 0 {
			bad("%s: %d must not be negative", f.name, f.v)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
}

// parseBase splits a target's base URL into a dial address and the prefix
// of request URIs.
func parseBase(base string) (addr string, tlsConf *tls.Config, err error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("%q is not a URL", base)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", nil, fmt.Errorf("%q is not a base URL such as http://127.0.0.1:8080", base)
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		tlsConf = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	default:
		return "", nil, fmt.Errorf("%q is not an http or https URL", base)
	}
	return net.JoinHostPort(u.Hostname(), port), tlsConf, nil
}

// DefaultMix is a 2 KB OpenAI chat request, weight 1, and the same request
// streamed, weight 0: the streamed one serves only the streaming
// measurement. Run the mock with ResponseSize DefaultResponseSize for
// answers of about 1 KB.
func DefaultMix() []Request {
	return []Request{
		{Name: "chat", Method: "POST", Path: "/v1/chat/completions", Body: makeChatBody(2048, false),
			Header: map[string]string{"Content-Type": "application/json"}, Weight: 1},
		{Name: "chat-stream", Method: "POST", Path: "/v1/chat/completions", Body: makeChatBody(2048, true),
			Header: map[string]string{"Content-Type": "application/json", "Accept": "text/event-stream"}, Stream: true},
	}
}

// ChatBody returns an OpenAI chat completion request of size bytes (or the
// smallest such request, if size is smaller), its user message padded with
// words.
func ChatBody(size int) []byte { return makeChatBody(size, false) }

func makeChatBody(size int, stream bool) []byte {
	head := `{"model":"gpt-4o-mini",`
	if stream {
		head += `"stream":true,`
	}
	head += `"max_tokens":512,"messages":[{"role":"system","content":"You are a careful assistant."},{"role":"user","content":"`
	const tail = `"}]}`
	b := make([]byte, 0, max(size, len(head)+len(tail)))
	b = append(b, head...)
	for i := 0; len(b)+len(tail) < size; i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, words[i%len(words)]...)
	}
	// The last word may overshoot; cutting it keeps the size exact, and the
	// words are plain ASCII, so the JSON string stays valid.
	if n := size - len(tail); len(b) > n && n >= len(head) {
		b = b[:n]
	}
	return append(b, tail...)
}

// schedule spreads the requests with a positive weight (or, if stream, the
// Stream requests, with weight 0 counting as 1) over a cycle as evenly as
// their weights allow, by smooth weighted round robin. Weights adding up to
// more than 1,000 are scaled down to about that. It returns indexes into
// mix, or nil if nothing qualifies.
func schedule(mix []Request, stream bool) []int {
	var idx, weight []int
	for i, r := range mix {
		w := r.Weight
		if stream {
			if !r.Stream {
				continue
			}
			w = max(w, 1)
		}
		if w > 0 {
			idx, weight = append(idx, i), append(weight, w)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	g := weight[0]
	for _, w := range weight {
		g = gcd(g, w)
	}
	total := 0
	for i := range weight {
		weight[i] /= g
		total += weight[i]
	}
	// A longer cycle only refines proportions nobody can see; scaled down,
	// every request keeps a place in it.
	const maxCycle = 1000
	if total > maxCycle {
		scaled := 0
		for i, w := range weight {
			weight[i] = max(1, w*maxCycle/total)
			scaled += weight[i]
		}
		total = scaled
	}
	current := make([]int, len(idx))
	out := make([]int, 0, total)
	for range total {
		best := 0
		for i, w := range weight {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		out = append(out, idx[best])
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Run measures the targets from outside, as a client, and returns the
// report. It stops by itself; if ctx ends first, it returns the steps
// measured so far with ctx's error.
//
// After an unmeasured warmup, each rate is a step of open-loop load: request
// i of a slice is scheduled at i/rate from its start and sent then, whatever
// became of the earlier ones, and its latency counts from that scheduled time
// to the end of its answer's body, so that a stall shows in the tail even
// when it held the sender up. The targets take turns, one Slice each, until
// each had Duration, and each slice ends when its last answer is in. Then
// each target's maximum throughput is measured in a closed loop, and last,
// at a low rate, the time to the first event and the gaps between events of
// streamed answers.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	r, err := newRunner(ctx, o)
	if err != nil {
		return nil, err
	}
	defer r.close()
	rep := &Report{Started: time.Now().UTC().Truncate(time.Second), Machine: currentMachine(), Options: o}
	err = r.run(ctx, rep)
	if err == nil {
		err = ctx.Err()
	}
	return rep, err
}

// runner is one Run: a loader per target and the schedules of the mix.
type runner struct {
	o       Options
	targets []*runTarget
	open    []int // schedule of the open-loop and closed-loop mix
	stream  []int // schedule of the streaming measurement; nil if none
	scraper *scraper
	stop    func() bool
}

type runTarget struct {
	Target
	load  *loader
	cpuOK bool // PID's CPU time is readable
}

func newRunner(ctx context.Context, o Options) (*runner, error) {
	r := &runner{o: o, open: schedule(o.Mix, false), stream: schedule(o.Mix, true), scraper: newScraper()}
	if o.StreamDuration < 0 {
		r.stream = nil
	}
	for _, t := range o.Targets {
		addr, tlsConf, _ := parseBase(t.URL) // Validate accepted it
		base := strings.TrimSuffix(t.URL, "/")
		l := &loader{pool: newPool(addr, tlsConf), timeout: o.Timeout}
		for _, q := range o.Mix {
			l.reqs = append(l.reqs, prepare(q, base))
		}
		rt := &runTarget{Target: t, load: l}
		r.targets = append(r.targets, rt)
		if t.PID != 0 {
			if _, err := processCPU(t.PID); err != nil {
				r.close()
				return nil, fmt.Errorf("read CPU time of target %q: %w", t.Name, err)
			}
			rt.cpuOK = true
		}
		if t.Metrics != "" {
			if _, err := r.scraper.scrape(ctx, t.Metrics); err != nil {
				r.close()
				return nil, fmt.Errorf("read metrics of target %q: %w", t.Name, err)
			}
		}
	}
	// Closing the pools ends requests in flight at once, so that a
	// cancelled run does not wait out their timeouts.
	r.stop = context.AfterFunc(ctx, r.closePools)
	return r, nil
}

func prepare(q Request, base string) prepared {
	p := prepared{method: []byte(q.Method), uri: base + q.Path, body: q.Body, stream: q.Stream}
	if len(p.method) == 0 {
		p.method = []byte("POST")
	}
	hasUA, hasCT := false, false
	for k, v := range q.Header {
		p.header = append(p.header, [2]string{k, v})
		hasUA = hasUA || strings.EqualFold(k, "User-Agent")
		hasCT = hasCT || strings.EqualFold(k, "Content-Type")
	}
	if !hasUA {
		p.header = append(p.header, [2]string{"User-Agent", "auditgate-bench"})
	}
	if !hasCT && len(q.Body) > 0 {
		p.header = append(p.header, [2]string{"Content-Type", "application/json"})
	}
	return p
}

func (r *runner) closePools() {
	for _, t := range r.targets {
		t.load.pool.close()
	}
}

func (r *runner) close() {
	if r.stop != nil {
		r.stop()
	}
	r.closePools()
	r.scraper.close()
}

// progress writes one line about a phase of a target, the names in columns.
func (r *runner) progress(phase, target, format string, args ...any) {
	if r.o.Progress == nil {
		return
	}
	w := 0
	for _, t := range r.targets {
		w = max(w, len(t.Name))
	}
	fmt.Fprintf(r.o.Progress, "%-10s %-*s  "+format+"\n", append([]any{phase, w, target}, args...)...)
}

func (r *runner) run(ctx context.Context, rep *Report) error {
	if r.o.Warmup > 0 {
		for _, t := range r.targets {
			tl := newTally()
			t.load.openLoop(ctx, r.o.Rates[0], count(r.o.Rates[0], 0, r.o.Warmup), r.o.Connections, r.open, tl)
			if err := ctx.Err(); err != nil {
				return err
			}
			r.progress("warmup", t.Name, "%d ok, %d errors%s", tl.ok.Load(), tl.errs.Load(), errNote(tl.firstErr))
		}
	}
	for _, rate := range r.o.Rates {
		step, err := r.step(ctx, rate)
		if err != nil {
			return err
		}
		rep.Steps = append(rep.Steps, step)
	}
	if r.o.Saturation > 0 {
		for _, t := range r.targets {
			s, err := r.saturate(ctx, t)
			if err != nil {
				return err
			}
			rep.Saturation = append(rep.Saturation, s)
		}
	}
	if r.stream != nil {
		s, err := r.streaming(ctx)
		if err != nil {
			return err
		}
		rep.Stream = s
	}
	return nil
}

// count is the number of requests at rate scheduled in [from, to) of a
// phase, so that slices add up to exactly rate × the phase's length.
func count(rate int, from, to time.Duration) int {
	at := func(d time.Duration) int64 { return int64(rate) * int64(d) / int64(time.Second) }
	return int(at(to) - at(from))
}

// interleave runs the targets in turn, Slice each, until each had d of
// open-loop load at rate from sched.
func (r *runner) interleave(ctx context.Context, rate int, d time.Duration, sched []int) ([]*tally, error) {
	tallies := make([]*tally, len(r.targets))
	for i := range tallies {
		tallies[i] = newTally()
	}
	for from := time.Duration(0); from < d; from += r.o.Slice {
		n := count(rate, from, min(from+r.o.Slice, d))
		for i, t := range r.targets {
			cpu0 := t.cpu()
			t.load.openLoop(ctx, rate, n, r.o.Connections, sched, tallies[i])
			tallies[i].cpu += t.cpu() - cpu0
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	return tallies, nil
}

// cpu returns the CPU time used so far by the target's process tree, or 0.
func (t *runTarget) cpu() time.Duration {
	if !t.cpuOK {
		return 0
	}
	d, _ := processCPU(t.PID)
	return d
}

// step measures every target at one rate.
func (r *runner) step(ctx context.Context, rate int) (Step, error) {
	meters := make([]*meter, len(r.targets))
	for i, t := range r.targets {
		if t.Metrics != "" {
			meters[i] = r.scraper.start(ctx, t.Metrics)
		}
	}
	tallies, err := r.interleave(ctx, rate, r.o.Duration, r.open)
	if err != nil {
		return Step{}, err
	}
	step := Step{Rate: rate}
	for i, t := range r.targets {
		res := resultOf(t.Name, tallies[i])
		if m := meters[i]; m != nil {
			d, err := r.scraper.delta(ctx, m)
			if err != nil {
				r.progress(fmt.Sprintf("%d/s", rate), t.Name, "metrics: %v", err)
			}
			res.addMetrics(d, tallies[i].elapsed)
		}
		step.Results = append(step.Results, res)
		r.progress(fmt.Sprintf("%d/s", rate), t.Name, "p50 %s  p99 %s  %d ok, %d errors, %d late%s",
			ms(res.Latency.P50), ms(res.Latency.P99), res.OK, res.Errors, res.Late, errNote(res.Error))
	}
	return step, nil
}

// saturate measures one target's closed-loop throughput.
func (r *runner) saturate(ctx context.Context, t *runTarget) (Saturation, error) {
	tl := newTally()
	cpu0 := t.cpu()
	t.load.closedLoop(ctx, r.o.Saturation, r.o.Concurrency, r.open, tl)
	tl.cpu = t.cpu() - cpu0
	if err := ctx.Err(); err != nil {
		return Saturation{}, err
	}
	res := resultOf(t.Name, tl)
	s := Saturation{Target: t.Name, OK: res.OK, Errors: res.Errors, Achieved: res.Achieved, Latency: res.Latency,
		CPUPer1000: res.CPUPer1000, Error: res.Error}
	r.progress("saturation", t.Name, "%.0f requests/s  p50 %s  p99 %s  %d errors%s", s.Achieved,
		ms(s.Latency.P50), ms(s.Latency.P99), s.Errors, errNote(s.Error))
	return s, nil
}

// streaming measures time to first event and gaps between events of the
// Stream requests, interleaved like a step.
func (r *runner) streaming(ctx context.Context) ([]StreamResult, error) {
	tallies, err := r.interleave(ctx, r.o.StreamRate, r.o.StreamDuration, r.stream)
	if err != nil {
		return nil, err
	}
	var out []StreamResult
	for i, t := range r.targets {
		tl := tallies[i]
		res := resultOf(t.Name, tl)
		s := StreamResult{Target: t.Name, Sent: res.Sent, OK: res.OK, Errors: res.Errors, Late: res.Late,
			TTFB: percentiles(tl.ttfb), Latency: res.Latency, Gaps: int(tl.gaps), Error: res.Error}
		if tl.gaps > 0 {
			s.MeanGap = tl.gapSum / time.Duration(tl.gaps)
		}
		out = append(out, s)
		r.progress("streaming", t.Name, "TTFB p50 %s  p99 %s  mean gap %s  %d ok, %d errors%s",
			ms(s.TTFB.P50), ms(s.TTFB.P99), ms(s.MeanGap), s.OK, s.Errors, errNote(s.Error))
	}
	return out, nil
}

func errNote(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

// processCPU returns the user and system CPU time of pid and its
// descendants, from /proc (Linux). Clock ticks are taken as 1/100 s, the
// USER_HZ that Linux reports in on every architecture Go supports.
func processCPU(pid int) (time.Duration, error) {
	var total time.Duration
	seen := make(map[int]bool)
	var walk func(pid int, depth int) error
	walk = func(pid int, depth int) error {
		if seen[pid] || depth > 8 {
			return nil
		}
		seen[pid] = true
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return err
		}
		d, err := parseStatCPU(stat)
		if err != nil {
			return fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
		}
		total += d
		// A child that exits between the listing and its reading only
		// loses its own share.
		for _, child := range childPIDs(pid) {
			_ = walk(child, depth+1)
		}
		return nil
	}
	return total, walk(pid, 0)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of /proc/PID/stat.
// Field 2, the command name in parentheses, may itself hold spaces and
// parentheses, so counting starts after its last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("CPU time %q is not a tick count", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// childPIDs lists the children of every thread of pid.
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// Metrics read from a target's admin API.
const (
	metricMallocs     = "go_memstats_mallocs_total"
	metricRecords     = "auditgate_trail_records_total"
	metricRecordBytes = "auditgate_trail_record_bytes_total"
)

var scrapedMetrics = []string{metricMallocs, metricRecords, metricRecordBytes}

// scraper reads Prometheus text from admin APIs. Its connections are not
// kept alive, so that it leaves no goroutine behind between scrapes.
type scraper struct {
	tr *http.Transport
	hc *http.Client
}

func newScraper() *scraper {
	tr := &http.Transport{DisableKeepAlives: true}
	return &scraper{tr: tr, hc: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

func (s *scraper) close() { s.tr.CloseIdleConnections() }

// scrape returns the values of scrapedMetrics found at url, each summed over
// its label sets.
func (s *scraper) scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return parseProm(io.LimitReader(resp.Body, 64<<20), scrapedMetrics)
}

// meter measures how a target's counters move over a step.
type meter struct {
	url  string
	base map[string]float64
	// scrapeAllocs is what one scrape costs the target in allocations; it
	// is taken off the step's count.
	scrapeAllocs float64
	err          error
}

// start scrapes twice in a row: the second is the baseline, and the
// difference is the cost of a scrape.
func (s *scraper) start(ctx context.Context, url string) *meter {
	m := &meter{url: url}
	a, err := s.scrape(ctx, url)
	if err != nil {
		m.err = err
		return m
	}
	if m.base, m.err = s.scrape(ctx, url); m.err == nil {
		m.scrapeAllocs = max(0, m.base[metricMallocs]-a[metricMallocs])
	}
	return m
}

// delta returns the change of each counter present at both ends.
func (s *scraper) delta(ctx context.Context, m *meter) (map[string]float64, error) {
	if m.err != nil {
		return nil, m.err
	}
	end, err := s.scrape(ctx, m.url)
	if err != nil {
		return nil, err
	}
	d := make(map[string]float64)
	for k, v := range end {
		if b, ok := m.base[k]; ok {
			d[k] = max(0, v-b)
		}
	}
	if v, ok := d[metricMallocs]; ok {
		d[metricMallocs] = max(0, v-m.scrapeAllocs)
	}
	return d, nil
}

// parseProm sums, over label sets, the samples of the named metrics in
// Prometheus text format. Metrics that do not appear are absent from the
// map; lines it cannot read are skipped.
func parseProm(r io.Reader, names []string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ \t")
		if end < 0 || !want[line[:end]] {
			continue
		}
		rest := line[end:]
		if rest[0] == '{' {
			i := labelsEnd(rest)
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[line[:end]] += v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

// labelsEnd returns the index of the '}' closing the label set that s
// starts with, skipping quoted values, or -1.
func labelsEnd(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == '}' && !quoted:
			return i
		}
	}
	return -1
}
