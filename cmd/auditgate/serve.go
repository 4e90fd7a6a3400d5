package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"reflect"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/auditgate/auditgate/config"
	"github.com/auditgate/auditgate/gateway"
)

// serveFlags are the command-line overrides of the configuration file.
type serveFlags struct {
	config, upstream, listen, admin string
	store, spool, key               string
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "serve [flags]", stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "YAML configuration `file` (see auditgate.example.yaml); SIGHUP reloads it")
	fs.StringVar(&f.upstream, "upstream", "", "upstream base `URL`; alone, a complete zero-config start")
	fs.StringVar(&f.listen, "listen", "", "proxy listen `address` (default 127.0.0.1:8080)")
	fs.StringVar(&f.admin, "admin", "", "admin listen `address` for /healthz, /readyz, /metrics (default 127.0.0.1:9090)")
	fs.StringVar(&f.store, "store", "", "the trail's store `URL`: file:///abs/path, a directory, or s3://bucket/prefix?endpoint=… (default DATA_DIR/trail)")
	fs.StringVar(&f.spool, "spool", "", "the trail's spool `directory` (default DATA_DIR/spool)")
	fs.StringVar(&f.key, "key", "", "signing key `file` from auditgate keygen (default DATA_DIR/signing.key, generated on first start)")
	if code, ok := parseArgs(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "auditgate serve: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	cfg, err := f.load()
	if err != nil {
		fmt.Fprintf(stderr, "auditgate serve: %v\n", err)
		if errors.Is(err, errNoUpstream) {
			return exitUsage
		}
		return exitFailure
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "auditgate serve: %v\n", err)
		return exitFailure
	}
	defer func() { _ = log.Sync() }()
	if err := serve(cfg, f, log); err != nil {
		log.Error("auditgate stopped", zap.Error(err))
		return exitFailure
	}
	return exitOK
}

var errNoUpstream = errors.New("no upstream: pass --upstream URL, or --config FILE with routes")

// load reads the file (if any) and applies the flags over it; the same
// steps run again on every reload, so flags keep winning.
func (f serveFlags) load() (*config.Config, error) {
	var cfg *config.Config
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
			return nil, err
		}
	} else {
		cfg = config.Default()
		cfg.ApplyEnv()
	}
	if f.listen != "" {
		cfg.Gateway.Listen = f.listen
	}
	if f.admin != "" {
		cfg.Admin.Listen = f.admin
	}
	if f.store != "" {
		cfg.Trail.Store = f.store
	}
	if f.spool != "" {
		cfg.Trail.Spool = f.spool
	}
	if f.key != "" {
		cfg.Trail.Key = f.key
	}
	if f.upstream != "" {
		if err := cfg.ApplyUpstream(f.upstream); err != nil {
			return nil, err
		}
	}
	if len(cfg.Gateway.Routes) == 0 {
		return nil, errNoUpstream
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func serve(cfg *config.Config, f serveFlags, log *zap.Logger) error {
	// AUDITGATE_CPUPROFILE=FILE writes a CPU profile of the whole run, for
	// profiling under load (auditgate bench runs the gateway as a child).
	if path := os.Getenv("AUDITGATE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	rm := newReloadMetrics(reg)
	// Signals are caught from here on, so that a SIGTERM sent as soon as
	// the "serving" line appears still closes the trail cleanly.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	openCtx, cancelOpen := context.WithTimeout(context.Background(), time.Minute)
	trail, err := openTrail(openCtx, cfg, log)
	cancelOpen()
	if err != nil {
		return err
	}
	reg.MustRegister(newTrailCollector(trail))
	closeTrail := func(ctx context.Context) error {
		if err := trail.Close(ctx); err != nil {
			return fmt.Errorf("close trail: %w", err)
		}
		log.Info("trail closed", zap.Uint64("size", trail.Stats().Size), zap.Uint64("sealed", trail.Stats().Sealed))
		return nil
	}
	if err := withAudit(cfg, trail); err != nil {
		closeTrail(context.Background())
		return err
	}
	g, err := gateway.New(cfg.Gateway, nil, log, reg)
	if err != nil {
		closeTrail(context.Background())
		return fmt.Errorf("start gateway: %w", err)
	}
	adm := gateway.NewAdmin(gateway.AdminOptions{Listen: cfg.Admin.Listen, Tokens: cfg.Admin.Tokens, Ready: trail.Health, Trail: trail}, g, reg, log)
	running := cfg

	// Listen on both addresses before announcing anything, so a busy port
	// fails the start instead of a half-running gateway.
	pln, err := net.Listen("tcp", listenAddr(cfg.Gateway.Listen, "127.0.0.1:8080"))
	if err != nil {
		closeTrail(context.Background())
		return fmt.Errorf("listen on proxy address: %w", err)
	}
	aln, err := net.Listen("tcp", listenAddr(cfg.Admin.Listen, "127.0.0.1:9090"))
	if err != nil {
		pln.Close()
		closeTrail(context.Background())
		return fmt.Errorf("listen on admin address: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- g.Serve(pln) }()
	go func() { errc <- adm.Serve(aln) }()
	scheme := "http"
	if cfg.Gateway.TLS != nil {
		scheme = "https"
	}
	log.Info("auditgate serving",
		zap.String("version", versionString()),
		zap.String("proxy", scheme+"://"+pln.Addr().String()),
		zap.String("admin", "http://"+aln.Addr().String()),
		zap.Int("routes", len(cfg.Gateway.Routes)),
		zap.String("config", cfg.File))

	var serveErr error
loop:
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				rm.observe(reload(g, adm, f, trail, running, log))
				continue
			}
			log.Info("shutting down: draining in-flight requests", zap.String("signal", s.String()))
			break loop
		case err := <-errc:
			serveErr = fmt.Errorf("serve: %w", err)
			break loop
		}
	}

	// One budget covers the whole stop: the drain of in-flight requests,
	// then sealing what the trail holds. The drain may use all of it but a
	// reserve kept for sealing, which also gets whatever the drain left.
	timeout := cfg.Gateway.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	start := time.Now()
	deadline := start.Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-sealReserve(timeout)))
	defer cancel()
	go func() {
		// A second signal stops waiting for the drain.
		select {
		case <-sig:
			log.Warn("second signal: not waiting for in-flight requests")
			cancel()
		case <-ctx.Done():
		}
	}()
	err = errors.Join(serveErr, g.Shutdown(ctx), adm.Shutdown(ctx))
	log.Info("drained", zap.Duration("drained_in", time.Since(start)))
	// Requests cut off at the drain's deadline take a few seconds more to
	// end; sealing then still has its reserve, at least.
	sctx, scancel := context.WithDeadline(context.Background(), later(deadline, time.Now().Add(sealReserve(timeout))))
	defer scancel()
	err = errors.Join(err, closeTrail(sctx))
	log.Info("auditgate stopped", zap.Duration("took", time.Since(start)))
	return err
}

// sealReserve is the part of the shutdown budget kept for sealing the
// trail: a third of it, at most 10 s.
func sealReserve(budget time.Duration) time.Duration { return min(budget/3, 10*time.Second) }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// reload applies the configuration file again. It is all or nothing: any
// problem keeps the running configuration, and every problem is logged.
func reload(g *gateway.Gateway, adm *gateway.Admin, f serveFlags, trail gateway.Trail, running *config.Config, log *zap.Logger) bool {
	if f.config == "" {
		log.Warn("SIGHUP ignored: started without --config, nothing to reload")
		return true
	}
	cfg, err := f.load()
	if err == nil {
		err = withAudit(cfg, trail)
	}
	if err == nil && !reflect.DeepEqual(cfg.Trail, running.Trail) {
		log.Warn("the trail section changed; trail settings are read at start only, so they apply at the next restart")
	}
	if err == nil && cfg.Admin.Listen != running.Admin.Listen {
		log.Warn("admin listen address changes take effect on restart",
			zap.String("running", running.Admin.Listen), zap.String("configured", cfg.Admin.Listen))
	}
	if err == nil {
		err = g.Reload(cfg.Gateway)
	}
	if err != nil {
		var ps *config.Problems
		if errors.As(err, &ps) {
			for _, p := range *ps {
				log.Error("reload rejected: configuration problem", zap.String("problem", p.String()))
			}
		} else {
			log.Error("reload rejected", zap.Error(err))
		}
		log.Warn("reload failed: the previous configuration keeps running", zap.String("config", f.config))
		return false
	}
	adm.SetTokens(cfg.Admin.Tokens)
	log.Info("configuration reloaded", zap.String("config", f.config), zap.Int("routes", len(cfg.Gateway.Routes)))
	return true
}

// reloadMetrics let operators alert on a configuration that did not apply.
type reloadMetrics struct {
	total *prometheus.CounterVec
	last  prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) reloadMetrics {
	m := reloadMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "auditgate_config_reloads_total",
			Help: "Configuration reloads by result (ok or failed).",
		}, []string{"result"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "auditgate_config_last_reload_successful",
			Help: "1 if the last configuration reload applied (or none was tried), 0 if it failed.",
		}),
	}
	m.last.Set(1)
	reg.MustRegister(m.total, m.last)
	return m
}

func (m reloadMetrics) observe(ok bool) {
	if ok {
		m.total.WithLabelValues("ok").Inc()
		m.last.Set(1)
		return
	}
	m.total.WithLabelValues("failed").Inc()
	m.last.Set(0)
}

func listenAddr(addr, def string) string {
	if addr == "" {
		return def
	}
	return addr
}
