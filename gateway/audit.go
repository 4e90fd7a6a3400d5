package gateway

import (
	"sync"

	"github.com/tidwall/gjson"
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
}

func newAudit(o *AuditOptions) *audit {
	if o == nil || o.Capturer == nil || o.Sink == nil {
		return nil
	}
	return &audit{AuditOptions: *o, lines: sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}}
}

// record decides the exchange's policy, builds its record and hands it to
// the sink. An exchange whose policy level is none is not recorded.
func (a *audit) record(g *Gateway, rt *route, ex *Exchange) {
	var ro *capture.RouteOptions
	policyName := ""
	if rt != nil {
		ro, policyName = &rt.Capture, rt.Policy
	}
	d := a.decide(policyName, ex)
	if d.Level == policy.LevelNone {
		g.m.records.WithLabelValues(d.Level.String()).Inc()
		return
	}
	s := a.settingsFor(d)
	bp := a.lines.Get().(*[]byte)
	line := a.Capturer.AppendRecord((*bp)[:0], &ex.Exchange, ro, s)
	if err := a.Sink.WriteRecord(line); err != nil {
		g.m.recordErrors.Inc()
		if ce := g.log.Check(zap.ErrorLevel, "record not written"); ce != nil {
			ce.Write(zap.Stringer("audit_id", ex.AuditID), zap.Error(err))
		}
	}
	g.m.records.WithLabelValues(d.Level.String()).Inc()
	*bp = line
	a.lines.Put(bp)
}

// decide finds the exchange's policy decision, reading the caller and the
// requested model only when the policy's rules look at them.
func (a *audit) decide(name string, ex *Exchange) *policy.Decision {
	if a.Policies == nil {
		return policy.Default()
	}
	path := ex.URI
	for i, c := range path {
		if c == '?' {
			path = path[:i]
			break
		}
	}
	q := policy.Query{Route: ex.Route, Path: string(path), Method: string(ex.Method)}
	if a.Policies.NeedsCaller(name) {
		c, _ := a.Capturer.Identifier().Identify(&ex.Exchange)
		q.KeyID, q.Subject = c.KeyID, c.Subject
	}
	if a.Policies.NeedsModel(name) {
		q.Model = gjson.GetBytes(ex.RequestBody.Data, "model").String()
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
