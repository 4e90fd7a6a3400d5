package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/config"
	"github.com/auditgate/auditgate/gateway"
	"github.com/auditgate/auditgate/worm"
)

// withAudit sets cfg.Gateway.Audit from the configuration's identity,
// policies and stream, sending records to trail.
func withAudit(cfg *config.Config, trail gateway.Trail) error {
	secret, err := cfg.LoadSecret()
	if err != nil {
		return err
	}
	stream, err := cfg.StreamID()
	if err != nil {
		return err
	}
	set, err := cfg.Policy()
	if err != nil {
		return err
	}
	ident := cfg.Identity.IdentityOptions
	ident.Secret = secret
	capt, err := capture.NewCapturer(capture.CapturerOptions{Stream: stream, Identity: ident})
	if err != nil {
		return fmt.Errorf("set up capture: %w", err)
	}
	cfg.Gateway.Audit = &gateway.AuditOptions{Capturer: capt, Policies: set, Trail: trail}
	return nil
}

// openTrail opens the stream's appender: the signing key (the default one
// is generated on first start), the store and the spool.
func openTrail(ctx context.Context, cfg *config.Config, log *zap.Logger) (*worm.Appender, error) {
	stream, err := cfg.StreamID()
	if err != nil {
		return nil, err
	}
	keyPath, isDefault := cfg.TrailKey()
	if _, err := os.Stat(keyPath); isDefault && errors.Is(err, fs.ErrNotExist) {
		host, _ := os.Hostname()
		signing, trust, err := worm.WriteKeyPair(cfg.DataDir, keyName("auditgate-"+host))
		if err != nil {
			return nil, fmt.Errorf("generate a signing key: %w", err)
		}
		log.Info("generated a signing key; give the trust file to your auditors for auditgate verify --trust",
			zap.String("signing_key", signing), zap.String("trust_file", trust))
	}
	signer, err := worm.LoadSigner(keyPath)
	if err != nil {
		return nil, err
	}
	store, err := worm.OpenStore(cfg.TrailStore())
	if err != nil {
		return nil, err
	}
	o := cfg.Trail.Appender
	o.Stream = stream
	o.Spool = cfg.TrailSpool()
	o.Sealer = &worm.Sealer{Store: store, Signer: signer, Prefix: cfg.Trail.Prefix}
	o.Log = log.Named("trail")
	a, err := worm.OpenAppender(ctx, o)
	if err != nil {
		return nil, err
	}
	log.Info("trail open", zap.String("stream", stream), zap.String("store", cfg.TrailStore()),
		zap.String("spool", o.Spool), zap.String("key", keyPath), zap.String("key_id", worm.KeyID(signer.Name(), signer.KeyHash())))
	return a, nil
}

// trailCollector exports an appender's counters.
type trailCollector struct {
	a     *worm.Appender
	descs map[string]*prometheus.Desc
}

var trailMetrics = []struct {
	name, help string
	counter    bool
	value      func(worm.AppenderStats) float64
}{
	{"auditgate_trail_records_total", "Records written to the spool, the trail's own (heartbeat, gap, event) included.", true, func(s worm.AppenderStats) float64 { return float64(s.Appended) }},
	{"auditgate_trail_record_bytes_total", "Bytes of the records written to the spool, newlines included.", true, func(s worm.AppenderStats) float64 { return float64(s.AppendedBytes) }},
	{"auditgate_trail_lost_records_total", "Records the trail refused (queue full, spool failing); gap records state them.", true, func(s worm.AppenderStats) float64 { return float64(s.Lost) }},
	{"auditgate_trail_queued_records", "Records waiting for the sequencer.", false, func(s worm.AppenderStats) float64 { return float64(s.Queued) }},
	{"auditgate_trail_queued_bytes", "Bytes of records waiting for the sequencer.", false, func(s worm.AppenderStats) float64 { return float64(s.QueuedBytes) }},
	{"auditgate_trail_size", "Records sequenced: the stream's tree size.", false, func(s worm.AppenderStats) float64 { return float64(s.Size) }},
	{"auditgate_trail_sealed_size", "Tree size of the last sealed, signed checkpoint.", false, func(s worm.AppenderStats) float64 { return float64(s.Sealed) }},
	{"auditgate_trail_pending_segments", "Segments cut but not yet in the store (store unreachable or slow).", false, func(s worm.AppenderStats) float64 { return float64(s.PendingSegments) }},
	{"auditgate_trail_pending_bytes", "Record bytes of the segments waiting for the store; at trail.max_spool new requests meet on_trail_failure.", false, func(s worm.AppenderStats) float64 { return float64(s.PendingBytes) }},
	{"auditgate_trail_alerts_total", "Alert records the trail wrote about itself (store unreachable, store recovered).", true, func(s worm.AppenderStats) float64 { return float64(s.Alerts) }},
	{"auditgate_trail_fsyncs_total", "Group-commit fsyncs of the spool.", true, func(s worm.AppenderStats) float64 { return float64(s.Syncs) }},
	{"auditgate_trail_seals_total", "Segments sealed into the store.", true, func(s worm.AppenderStats) float64 { return float64(s.Seals) }},
	{"auditgate_trail_seal_errors_total", "Failed seal attempts (each is retried).", true, func(s worm.AppenderStats) float64 { return float64(s.SealErrors) }},
	{"auditgate_trail_spool_errors_total", "Spool write or fsync failures.", true, func(s worm.AppenderStats) float64 { return float64(s.SpoolErrors) }},
	{"auditgate_trail_heartbeats_total", "Heartbeat records written while idle.", true, func(s worm.AppenderStats) float64 { return float64(s.Heartbeats) }},
	{"auditgate_trail_gaps_total", "Gap records written.", true, func(s worm.AppenderStats) float64 { return float64(s.Gaps) }},
	{"auditgate_trail_down", "1 while the spool cannot be written.", false, func(s worm.AppenderStats) float64 {
		if s.Down {
			return 1
		}
		return 0
	}},
}

func newTrailCollector(a *worm.Appender) *trailCollector {
	c := &trailCollector{a: a, descs: make(map[string]*prometheus.Desc)}
	for _, m := range trailMetrics {
		c.descs[m.name] = prometheus.NewDesc(m.name, m.help, nil, prometheus.Labels{"stream": a.Stream()})
	}
	return c
}

func (c *trailCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *trailCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.a.Stats()
	for _, m := range trailMetrics {
		t := prometheus.GaugeValue
		if m.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(c.descs[m.name], t, m.value(s))
	}
}
