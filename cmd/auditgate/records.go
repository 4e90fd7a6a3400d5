package main

import (
	"fmt"
	"os"
	"sync"

	"github.com/auditgate/auditgate/capture"
	"github.com/auditgate/auditgate/config"
	"github.com/auditgate/auditgate/gateway"
)

// withAudit sets cfg.Gateway.Audit from the configuration's identity,
// policies and stream, sending records to sink; with no sink, exchanges are
// not turned into records.
func withAudit(cfg *config.Config, sink gateway.RecordSink) error {
	if sink == nil {
		return nil
	}
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
	cfg.Gateway.Audit = &gateway.AuditOptions{Capturer: capt, Policies: set, Sink: sink}
	return nil
}

// recordFile appends records to a file, one line each, in one write each
// so that concurrent records never interleave.
type recordFile struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

func openRecordFile(path string) (*recordFile, error) {
	if path == "-" {
		return &recordFile{f: os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open records file: %w", err)
	}
	return &recordFile{f: f}, nil
}

func (r *recordFile) WriteRecord(line []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(append(r.buf[:0], line...), '\n')
	_, err := r.f.Write(r.buf)
	return err
}

func (r *recordFile) Close() error {
	if r.f == os.Stdout {
		return nil
	}
	return r.f.Close()
}
