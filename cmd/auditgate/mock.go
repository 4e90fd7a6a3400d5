package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/auditgate/auditgate/bench"
)

func runMock(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("mock-upstream", "mock-upstream [flags]", stderr)
	listen := fs.String("listen", "127.0.0.1:8000", "listen `address`")
	var o bench.MockOptions
	fs.DurationVar(&o.Delay, "delay", 0, "wait this `duration` before each answer")
	fs.IntVar(&o.ResponseSize, "response-size", 0, "approximate `bytes` of generated text per answer (0: a short sentence)")
	fs.IntVar(&o.StreamChunks, "stream-chunks", 0, "content `chunks` per streamed answer (0: 5)")
	fs.DurationVar(&o.ChunkDelay, "chunk-delay", 0, "wait this `duration` between streamed chunks")
	if code, ok := parseArgs(fs, args, stdout); !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := bench.StartMock(ctx, *listen, o)
	if err != nil {
		fmt.Fprintf(stderr, "auditgate mock-upstream: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "mock model API on %s (OpenAI, Anthropic, Open Inference Protocol v2); Ctrl-C stops it\n", srv.URL())
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "auditgate mock-upstream: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// syncBuffer is a bytes.Buffer safe for a child process's two output
// streams.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
