package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/policy"
)

// audit turns exchanges into records. It is swapped with the routes on
// reload, so policies and routes always change together.
type audit struct {
	AuditOptions
	// settings caches the capture settings of each policy decision; the
	// set's decisions are fixed, so this grows to their number and stops.
	settings sync.Map // *policy.Decision -> *capture.Settings
	lines    sync.Pool
	// strictFailures counts strict request records the trail did not take.
	strictFailures prometheus.Counter
}

func newAudit(o *AuditOptions, m *metrics) *audit {
	if o == nil || o.Capturer == nil || o.Trail == nil {
		return nil
	}
	return &audit{AuditOptions: *o, strictFailures: m.strictErrors,
		lines: sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}}
}

// record decides the exchange's policy, builds its record and hands it to
// the sink. An exchange whose policy level is none is not recorded.
func (a *audit) record(g *Gateway, rt *route, ex *Exchange) {
	var ro *capture.RouteOptions
	policyName := ""
	if rt != nil {
		ro, policyName = &rt.Capture, rt.Policy
	}
	if ex.Outcome == OutcomeTrailUnavailable {
		// Refused because the trail could not take records: nothing was
		// forwarded, and offering this record would only count it lost.
		return
	}
	d := a.decide(policyName, ro, ex)
	if d.Level == policy.LevelNone {
		g.m.records.WithLabelValues(d.Level.String()).Inc()
		return
	}
	s := a.settingsFor(d)
	bp := a.lines.Get().(*[]byte)
	line := a.Capturer.AppendRecord((*bp)[:0], &ex.Exchange, ro, s)
	var err error
	if ex.trailRefused {
		err = a.Trail.Append(line)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), recordWait)
		err = a.Trail.AppendWait(ctx, line)
		cancel()
	}
	if err != nil {
		g.m.recordErrors.Inc()
		if ce := g.log.Check(zap.ErrorLevel, "record not written"); ce != nil {
			ce.Write(zap.Stringer("audit_id", ex.AuditID), zap.Error(err))
		}
	}
	g.m.records.WithLabelValues(d.Level.String()).Inc()
	*bp = line
	a.lines.Put(bp)
}

// recordWait bounds how long a finished exchange's record waits for room
// in the trail's queue, and strictWait how long a strict request waits for
// its record to be durable. Past either, the record counts as lost (and a
// strict request is refused when its policy fails closed).
const (
	recordWait = 10 * time.Second
	strictWait = 10 * time.Second
)

// admit runs before a request is forwarded. It refuses the request with
// 503 while the trail cannot take records and the request's policy fails
// closed, and under strict durability it reads the whole body (up to the
// capture limit, 413 beyond) and makes the request record durable first.
//
// Policy rules on the requested model see it before forwarding when the
// body has been read: bodies of up to 64 KiB, and, on routes whose policy
// has a strict rule (or while the trail is down), every body, which is
// then read up to the capture limit first.
func (a *audit) admit(rt *route, ex *Exchange, req *fasthttp.Request, rs **requestStream, capLimit int, routeLimit int64) (Outcome, bool) {
	ready := a.Trail.Ready()
	if *rs != nil && a.Policies != nil && a.Policies.NeedsModel(rt.Policy) && (ready != nil || a.Policies.HasStrict(rt.Policy)) {
		if o, ok := readBody(ex, req, rs, capLimit, routeLimit); !ok {
			return o, false
		}
	}
	d := a.decide(rt.Policy, &rt.Capture, ex)
	if d.Level == policy.LevelNone {
		return OutcomeOK, true
	}
	closed := d.OnTrailFailure == policy.FailClosed
	if d.Durability != policy.DurabilityStrict {
		if ready != nil {
			if closed {
				return OutcomeTrailUnavailable, false
			}
			ex.trailRefused = true // open: forwarded; its record may be lost
		}
		return OutcomeOK, true
	}
	if *rs != nil {
		if o, ok := readBody(ex, req, rs, capLimit, routeLimit); !ok {
			return o, false
		}
	}
	ex.reqTee.finish(true)
	bp := a.lines.Get().(*[]byte)
	line := a.Capturer.AppendRequestRecord((*bp)[:0], &ex.Exchange, &rt.Capture, a.settingsFor(d))
	// Never derived from the fasthttp.RequestCtx: a context derived from
	// it watches it from a goroutine, and it is reused once the handler
	// returns.
	wctx, cancel := context.WithTimeout(context.Background(), strictWait)
	err := a.Trail.AppendSync(wctx, line)
	cancel()
	*bp = line
	a.lines.Put(bp)
	if err != nil {
		a.strictFailures.Inc()
		if closed {
			return OutcomeTrailUnavailable, false
		}
		ex.trailRefused = true
	}
	return OutcomeOK, true
}

// discardMax bounds how much of a refused request body is read and
// dropped before the connection closes.
const discardMax = 1 << 20

// readBody reads the rest of a streamed request body whole, up to the
// capture limit (and the route's own limit), and sends it upstream from
// memory instead.
func readBody(ex *Exchange, req *fasthttp.Request, rs **requestStream, capLimit int, routeLimit int64) (Outcome, bool) {
	limit := int64(capLimit)
	if routeLimit > 0 && routeLimit < limit {
		limit = routeLimit
	}
	err := ex.reqTee.readAll((*rs).src, limit)
	if errors.Is(err, errStrictTooLarge) {
		// The client may still be sending. Closing the connection with its
		// data unread would reset it, and the client would see a broken
		// connection instead of the 413: read a bounded rest away first,
		// as nginx does.
		_, _ = io.CopyN(io.Discard, (*rs).src, discardMax)
	}
	switch {
	case errors.Is(err, errStrictTooLarge) && limit == routeLimit:
		return OutcomeRequestTooLarge, false
	case errors.Is(err, errStrictTooLarge):
		return OutcomeStrictTooLarge, false
	case err != nil:
		return OutcomeClientGone, false
	}
	req.SetBodyRaw(ex.RequestBody.Data)
	*rs = nil
	return OutcomeOK, true
}

// decide finds the exchange's policy decision, reading the caller and the
// requested model only when the policy's rules look at them. A JWT's
// subject counts only when its signature was verified: anyone can write a
// token that names any subject.
func (a *audit) decide(name string, ro *capture.RouteOptions, ex *Exchange) *policy.Decision {
	if a.Policies == nil {
		return policy.Default()
	}
	// Path rules see the path as the upstream will: the request got here
	// only if normalPath accepted it, and what is still percent-encoded
	// (%3A for ':') the upstream decodes.
	path, _, _ := splitTarget(ex.URI)
	q := policy.Query{Route: ex.Route, Path: string(path), Method: string(ex.Method)}
	if bytes.IndexByte(path, '%') >= 0 {
		if p, err := url.PathUnescape(q.Path); err == nil {
			q.Path = p
		}
	}
	if a.Policies.NeedsCaller(name) {
		c, _ := a.Capturer.Identifier().Identify(&ex.Exchange)
		q.KeyID = c.KeyID
		if c.Verified {
			q.Subject = c.Subject
		}
	}
	if a.Policies.NeedsModel(name) {
		q.Model = a.Capturer.RequestedModel(&ex.Exchange, ro)
	}
	return a.Policies.Decide(name, q)
}

func (a *audit) settingsFor(d *policy.Decision) *capture.Settings {
	if s, ok := a.settings.Load(d); ok {
		return s.(*capture.Settings)
	}
	s := &capture.Settings{
		Input:   d.Level >= policy.LevelRequest,
		Output:  d.Level >= policy.LevelFull,
		MaxBody: d.MaxBody,
	}
	if d.Detectors == nil || len(d.Detectors) > 0 || len(d.RedactPaths) > 0 {
		r, err := capture.NewRedactor(capture.RedactorOptions{
			Secret: a.Capturer.Secret(), Detectors: d.Detectors, Paths: d.RedactPaths,
		})
		if err != nil {
			// Configuration checks make this unreachable; should it happen,
			// redact more, not less.
			r, _ = capture.NewRedactor(capture.RedactorOptions{Secret: a.Capturer.Secret()})
		}
		s.Redactor = r
	}
	got, _ := a.settings.LoadOrStore(d, s)
	return got.(*capture.Settings)
}
