package bench

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

//go:embed nginx/nginx.conf.tmpl
var nginxTemplate string

// NginxConfig is the reverse-proxy configuration the comparison runs
// nginx with: upstream and listen as host:port, prefix a directory for its
// pid, logs and temporary files.
func NginxConfig(upstream, listen, prefix string) string {
	return strings.NewReplacer("{{UPSTREAM}}", upstream, "{{LISTEN}}", listen, "{{PREFIX}}", prefix).Replace(nginxTemplate)
}

// Nginx is an nginx started as a plain reverse proxy in front of an
// upstream, for comparison.
type Nginx struct {
	URL    string
	cmd    *exec.Cmd
	dir    string
	exited chan error
}

// FindNginx returns the nginx binary: path if not empty, else the first
// nginx on PATH or in /usr/sbin.
func FindNginx(path string) (string, error) {
	if path != "" {
		return exec.LookPath(path)
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("nginx not found: install it (apt-get install nginx; make bench-compare does) or give its path")
}

// StartNginx starts nginx in the foreground on a free loopback port in
// front of upstream (host:port), with its files in a new directory under
// dir, and waits until it accepts connections.
func StartNginx(binary, upstream, dir string) (*Nginx, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	listen := ln.Addr().String()
	ln.Close()
	prefix, err := os.MkdirTemp(dir, "nginx-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(NginxConfig(upstream, listen, prefix)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "-p", prefix, "-c", conf, "-g", "daemon off;")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that stopping it stops its workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	exited := make(chan error, 1)
	n := &Nginx{URL: "http://" + listen, cmd: cmd, dir: prefix, exited: exited}
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond); err == nil {
			c.Close()
			return n, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("nginx exited at start (%v): %s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.Close() // waits for it to exit, so out is complete
			return nil, fmt.Errorf("nginx did not listen on %s within 10 s: %s", listen, out.String())
		}
	}
}

// PIDs returns nginx's master and worker processes, for charging CPU.
func (n *Nginx) PIDs() []int {
	pids := []int{n.cmd.Process.Pid}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", n.cmd.Process.Pid, n.cmd.Process.Pid))
	if err == nil {
		for _, f := range strings.Fields(string(data)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// Close stops nginx and its workers (gracefully, then by force after 2 s)
// and removes its files. It must be called once.
func (n *Nginx) Close() error {
	pgid := n.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGQUIT)
	select {
	case <-n.exited:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-n.exited
	}
	// On SIGQUIT the master waits for its workers before it exits.
	return os.RemoveAll(n.dir)
}
