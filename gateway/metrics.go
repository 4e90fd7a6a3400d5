package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditgate/auditgate/capture"
)

// metrics are the gateway's Prometheus series. Per-route handles are looked
// up once when routes are compiled, so the request path does no label
// hashing.
type metrics struct {
	requests       *prometheus.CounterVec
	upstreamDur    *prometheus.HistogramVec
	addedDur       *prometheus.HistogramVec
	bytesIn        *prometheus.CounterVec
	bytesOut       *prometheus.CounterVec
	outcomes       *prometheus.CounterVec
	inFlight       prometheus.Gauge
	recorderPanics prometheus.Counter
	records        *prometheus.CounterVec
	recordErrors   prometheus.Counter
	strictErrors   prometheus.Counter

	mu     sync.Mutex
	routes map[string]*routeMetrics
}

// routeMetrics are one route's handles. Status-code counters are made on
// first use and cached by code.
type routeMetrics struct {
	name     string
	requests *prometheus.CounterVec
	codes    [600]atomic.Pointer[prometheus.Counter]
	outcomes [capture.NumOutcomes]prometheus.Counter
	upstream prometheus.Observer
	added    prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	// Sub-millisecond buckets for the gateway's own time, which should stay
	// well under a millisecond; model latencies span milliseconds to minutes.
	addedBuckets := []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}
	upstreamBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditgate_requests_total",
			Help: "Requests answered, by route and status code sent to the client.",
		}, []string{"route", "code"}),
		upstreamDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "auditgate_upstream_duration_seconds",
			Help:    "Time from sending a request upstream to receiving its response headers.",
			Buckets: upstreamBuckets,
		}, []string{"route"}),
		addedDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "auditgate_added_latency_seconds",
			Help:    "Time the gateway itself spent on a request before forwarding it and after the upstream's response headers arrived.",
			Buckets: addedBuckets,
		}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditgate_request_bytes_total",
			Help: "Request body bytes received from clients.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditgate_response_bytes_total",
			Help: "Response body bytes sent to clients.",
		}, []string{"route"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditgate_outcomes_total",
			Help: "Exchanges by how they ended (ok, upstream_timeout, client_gone, ...).",
		}, []string{"route", "outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "auditgate_in_flight_requests",
			Help: "Requests being handled, streamed responses included.",
		}),
		recorderPanics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditgate_recorder_panics_total",
			Help: "Exchanges lost because the recorder panicked on them.",
		}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditgate_records_total",
			Help: "Exchanges by the capture level their policy chose; level none is counted but not recorded.",
		}, []string{"level"}),
		recordErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditgate_record_errors_total",
			Help: "Records of finished exchanges the trail did not take; each is counted as lost in the trail's next gap record.",
		}),
		strictErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auditgate_strict_record_errors_total",
			Help: "Strict-durability request records the trail did not make durable; the request was refused (closed) or forwarded unaudited (open).",
		}),
		routes: make(map[string]*routeMetrics),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.upstreamDur, m.addedDur, m.bytesIn, m.bytesOut, m.outcomes, m.inFlight, m.recorderPanics, m.records, m.recordErrors, m.strictErrors)
	}
	return m
}

// noRoute labels requests that matched no route; route names cannot hold
// parentheses, so it never collides with one.
const noRoute = "(none)"

// forRoute returns the handles of the named route.
func (m *metrics) forRoute(name string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm, ok := m.routes[name]; ok {
		return rm
	}
	rm := &routeMetrics{
		name:     name,
		requests: m.requests,
		upstream: m.upstreamDur.WithLabelValues(name),
		added:    m.addedDur.WithLabelValues(name),
		bytesIn:  m.bytesIn.WithLabelValues(name),
		bytesOut: m.bytesOut.WithLabelValues(name),
	}
	for o := range rm.outcomes {
		rm.outcomes[o] = m.outcomes.WithLabelValues(name, capture.Outcome(o).String())
	}
	m.routes[name] = rm
	return rm
}

func (rm *routeMetrics) countStatus(code int) {
	if code < 100 || code >= len(rm.codes) {
		rm.requests.WithLabelValues(rm.name, strconv.Itoa(code)).Inc()
		return
	}
	c := rm.codes[code].Load()
	if c == nil {
		cc := rm.requests.WithLabelValues(rm.name, strconv.Itoa(code))
		rm.codes[code].CompareAndSwap(nil, &cc)
		c = rm.codes[code].Load()
	}
	(*c).Inc()
}
