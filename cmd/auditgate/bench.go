package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/auditgate/auditgate/bench"
	"github.com/auditgate/auditgate/config"
)

// runBench is `auditgate bench`: the mock upstream (or --target), the
// gateway as a child `auditgate serve` measured from outside, optionally
// nginx beside it, and open-loop load at several rates against each, in
// one run.
func runBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", "bench [flags]", stderr)
	duration := fs.Duration("duration", 5*time.Second, "measured time per rate and target")
	rates := fs.String("rates", "500,1000,2000", "open-loop `rates` in requests/s, comma-separated")
	saturation := fs.Duration("saturation", 3*time.Second, "closed-loop maximum-throughput run per target (0 skips it)")
	target := fs.String("target", "", "measure against this upstream `URL` instead of the built-in mock")
	cfgPath := fs.String("config", "", "run the gateway with this configuration `file` (default: full capture, redaction, local store, async trail)")
	strict := fs.Bool("strict", true, "also measure a gateway whose policy is durability: strict (not with --config: give a strict policy in the file to measure it)")
	nginx := fs.String("nginx", "", "also measure nginx as a plain reverse proxy: its binary `path`, or auto to find it")
	format := fs.String("format", "text", "output `format`: text or json")
	svg := fs.String("svg", "", "also write a latency-percentile plot to this `file`")
	respSize := fs.Int("response-size", 1024, "`bytes` of the mock's answers")
	if code, ok := parseArgs(fs, args, stdout); !ok {
		return code
	}
	var rs []int
	for _, f := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "auditgate bench: --rates: %q is not a positive whole number\n", f)
			return exitUsage
		}
		rs = append(rs, n)
	}
	if fs.NArg() > 0 || (*format != "text" && *format != "json") {
		fs.Usage()
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &benchRun{stderr: stderr}
	defer b.cleanup()
	rep, err := b.run(ctx, benchSetup{target: *target, config: *cfgPath, strict: *strict, nginx: *nginx, respSize: *respSize},
		bench.Options{Rates: rs, Duration: *duration, Saturation: *saturation, Progress: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "auditgate bench: %v\n", err)
		return exitFailure
	}
	if *format == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err == nil && *svg != "" {
		var f *os.File
		if f, err = os.Create(*svg); err == nil {
			err = errors.Join(rep.WriteSVG(f), f.Close())
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "auditgate bench: %v\n", err)
		return exitFailure
	}
	return exitOK
}

type benchSetup struct {
	target, config, nginx string
	strict                bool
	respSize              int
}

// benchRun owns what a run starts, so that cleanup stops all of it.
type benchRun struct {
	stderr   io.Writer
	dir      string
	mock     *bench.MockServer
	nginx    *bench.Nginx
	gateways []*benchGateway
}

func (b *benchRun) run(ctx context.Context, s benchSetup, o bench.Options) (*bench.Report, error) {
	var err error
	if b.dir, err = os.MkdirTemp("", "auditgate-bench-"); err != nil {
		return nil, err
	}
	upstream := s.target
	if upstream == "" {
		b.mock, err = bench.StartMock(ctx, "127.0.0.1:0", bench.MockOptions{ResponseSize: s.respSize, StreamChunks: 20, ChunkDelay: 2 * time.Millisecond})
		if err != nil {
			return nil, fmt.Errorf("start the mock upstream: %w", err)
		}
		upstream = b.mock.URL()
	}
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--target %q is not a URL", upstream)
	}
	o.Targets = append(o.Targets, bench.Target{Name: "direct", URL: upstream})
	if s.nginx != "" {
		path := s.nginx
		if path == "auto" {
			path = ""
		}
		bin, err := bench.FindNginx(path)
		if err != nil {
			return nil, err
		}
		if u.Scheme != "http" {
			return nil, errors.New("the nginx comparison proxies plain http upstreams only")
		}
		if b.nginx, err = bench.StartNginx(bin, u.Host, b.dir); err != nil {
			return nil, err
		}
		o.Targets = append(o.Targets, bench.Target{Name: "nginx", URL: b.nginx.URL, PID: b.nginx.PIDs()[0]})
	}
	cfg := s.config
	gw, err := b.startGateway(ctx, "auditgate", upstream, cfg)
	if err != nil {
		return nil, err
	}
	o.Targets = append(o.Targets, gw.target)
	if s.strict && s.config == "" {
		strictCfg := filepath.Join(b.dir, "strict.yaml")
		if err := os.WriteFile(strictCfg, []byte("policies:\n  default:\n    - {level: full, durability: strict}\n"), 0o600); err != nil {
			return nil, err
		}
		gw, err := b.startGateway(ctx, "auditgate-strict", upstream, strictCfg)
		if err != nil {
			return nil, err
		}
		o.Targets = append(o.Targets, gw.target)
	}
	return bench.Run(ctx, o)
}

// benchGateway is a child `auditgate serve`.
type benchGateway struct {
	target bench.Target
	cmd    *exec.Cmd
	exited chan error
}

// startGateway starts `auditgate serve` with its own data directory and
// waits until its admin API says it is ready.
func (b *benchRun) startGateway(ctx context.Context, name, upstream, cfgPath string) (*benchGateway, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	proxy, admin := freePort(), freePort()
	args := []string{"serve", "--listen", proxy, "--admin", admin}
	withRoutes := false
	if cfgPath != "" {
		args = append(args, "--config", cfgPath)
		c, err := config.Load(cfgPath)
		if err != nil {
			return nil, err
		}
		withRoutes = len(c.Gateway.Routes) > 0
	}
	if !withRoutes {
		args = append(args, "--upstream", upstream)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "AUDITGATE_DATA_DIR="+filepath.Join(b.dir, name), "AUDITGATE_LOG_LEVEL=warn")
	logs, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	g := &benchGateway{cmd: cmd, exited: make(chan error, 1),
		target: bench.Target{Name: name, URL: "http://" + proxy, PID: cmd.Process.Pid, Metrics: "http://" + admin + "/metrics"}}
	b.gateways = append(b.gateways, g)
	var tail strings.Builder
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if tail.Len() < 1<<16 {
				tail.WriteString(sc.Text() + "\n")
			}
		}
		g.exited <- cmd.Wait()
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := client.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g, nil
			}
		}
		select {
		case err := <-g.exited:
			g.cmd = nil
			return nil, fmt.Errorf("%s exited before it was ready (%v): %s", name, err, tail.String())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not ready within 30 s", name)
		}
	}
}

// cleanup stops the gateways (SIGTERM: they seal their trails), nginx and
// the mock, and removes the run's files.
func (b *benchRun) cleanup() {
	for _, g := range b.gateways {
		if g.cmd == nil || g.cmd.Process == nil {
			continue
		}
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(40 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.exited
		}
	}
	if b.nginx != nil {
		_ = b.nginx.Close()
	}
	if b.mock != nil {
		_ = b.mock.Close()
	}
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}
