package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/auditgate/auditgate/worm"
)

func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keygen", "keygen --out DIR [flags]", stderr)
	out := fs.String("out", "", "`directory` to write signing.key (mode 0600) and trust.pub into")
	name := fs.String("name", "", "key `name` in signatures (default: the host name)")
	if code, ok := parseArgs(fs, args, stdout); !ok {
		return code
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "auditgate keygen: --out DIR is required")
		fs.Usage()
		return exitUsage
	}
	if *name == "" {
		host, _ := os.Hostname()
		*name = keyName(host)
	}
	signing, trust, err := worm.WriteKeyPair(*out, *name)
	if err != nil {
		fmt.Fprintf(stderr, "auditgate keygen: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "signing key: %s (keep it secret; give it to serve --key)\n", signing)
	fmt.Fprintf(stdout, "trust file:  %s (give it to auditors for verify --trust)\n", trust)
	return exitOK
}

// keyName turns a host name into a signed-note key name.
func keyName(host string) string {
	var b strings.Builder
	for _, r := range host {
		if r > ' ' && r < 0x7f && r != '+' && r != '#' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "auditgate"
	}
	return b.String()
}

func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", "verify [--store] URL --trust FILE [flags]", stderr)
	store := fs.String("store", "", "the trail's store `URL`: file:///path, a plain path, or s3://bucket/prefix?endpoint=… (may be given as the argument instead)")
	trustPath := fs.String("trust", "", "trust `file` pinning the verifier keys (required)")
	since := fs.String("since-checkpoint", "", "a checkpoint `file` kept earlier: the trail must extend it")
	stream := fs.String("stream", "", "check only this `stream` (default: every stream found)")
	prefix := fs.String("prefix", "", "the trail's key `prefix` inside the store")
	from := fs.String("from", "", "re-hash only segments with records at or after `T` (RFC 3339, or relative like -24h)")
	to := fs.String("to", "", "re-hash only segments with records at or before `T`")
	format := fs.String("format", "text", "output `format`: text or json")
	pos, code, ok := parseInterspersed(fs, args, stdout)
	if !ok {
		return code
	}
	if *store == "" && len(pos) == 1 {
		*store = pos[0]
	} else if len(pos) > 0 {
		fs.Usage()
		return exitUsage
	}
	usage := func(msg string, a ...any) int {
		fmt.Fprintf(stderr, "auditgate verify: "+msg+"\n", a...)
		return exitUsage
	}
	switch {
	case *store == "":
		return usage("give the trail's store: auditgate verify file:///path/to/trail --trust trust.pub")
	case *trustPath == "":
		return usage("--trust FILE is required: verification trusts nothing but the keys you pin")
	case *format != "text" && *format != "json":
		return usage("--format must be text or json")
	}
	now := time.Now()
	o := worm.VerifyOptions{Prefix: *prefix, Stream: *stream}
	var err error
	if o.From, err = parseWhen(*from, now); err != nil {
		return usage("--from: %v", err)
	}
	if o.To, err = parseWhen(*to, now); err != nil {
		return usage("--to: %v", err)
	}
	if o.Trust, err = worm.LoadTrust(*trustPath); err != nil {
		return usage("%v", err)
	}
	if *since != "" {
		if o.SinceCheckpoint, err = os.ReadFile(*since); err != nil {
			return usage("read --since-checkpoint: %v", err)
		}
	}
	st, err := worm.OpenStore(*store)
	if err != nil {
		return usage("%v", err)
	}
	bar := newVerifyBar(stderr)
	if bar != nil {
		o.Progress = bar.draw
	}
	rep, err := worm.Verify(context.Background(), st, o)
	// The report may go to the same terminal: the bar leaves first.
	bar.clear()
	if err != nil {
		fmt.Fprintf(stderr, "auditgate verify: %v\n", err)
		return exitFailure
	}
	if *format == "json" {
		writeVerifyJSON(stdout, rep)
	} else {
		writeVerifyText(stdout, rep, *store)
	}
	if !rep.OK() {
		return exitFailure
	}
	return exitOK
}

// parseWhen reads an RFC 3339 time or a duration relative to now ("-24h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-27T18:00:00Z) nor a duration relative to now (-24h)", s)
}

func writeVerifyText(w io.Writer, rep *worm.Report, store string) {
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "FINDING %s\n", f)
	}
	for _, s := range rep.Streams {
		fmt.Fprintf(w, "stream %s: %d segments, %d records re-hashed, size %d, root %s", s.Stream, s.Segments, s.Records, s.Size, hex.EncodeToString(s.Root[:]))
		if !s.First.IsZero() {
			fmt.Fprintf(w, ", %s to %s", s.First.UTC().Format(time.RFC3339), s.Last.UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(w)
		if l := s.Lock; l.Objects > 0 {
			fmt.Fprintf(w, "  object lock: %d object versions", l.Objects)
			if l.Mode != "" {
				fmt.Fprintf(w, ", %s, retained until %s at the earliest", l.Mode, l.MinRetain.UTC().Format(time.RFC3339))
			}
			if l.LegalHolds > 0 {
				fmt.Fprintf(w, ", %d under legal hold", l.LegalHolds)
			}
			fmt.Fprintln(w)
		}
		for _, f := range s.Findings {
			fmt.Fprintf(w, "FINDING %s\n", f)
		}
		for _, f := range s.Notices {
			fmt.Fprintf(w, "NOTICE %s\n", f)
		}
	}
	if rep.OK() {
		fmt.Fprintf(w, "ok: %s verified: every signature, link, hash, chain and root holds\n", store)
		if len(rep.Streams) > 0 && rep.Streams[0].Lock.Unavailable != "" {
			fmt.Fprintf(w, "note: %s\n", rep.Streams[0].Lock.Unavailable)
		}
		return
	}
	n := len(rep.Findings)
	for _, s := range rep.Streams {
		n += len(s.Findings)
	}
	fmt.Fprintf(w, "FAILED: %d finding(s) in %s\n", n, store)
}

func writeVerifyJSON(w io.Writer, rep *worm.Report) {
	type finding struct {
		Stream string `json:"stream,omitempty"`
		Object string `json:"object,omitempty"`
		Code   string `json:"code"`
		Msg    string `json:"message"`
	}
	type lock struct {
		Objects    int    `json:"objects"`
		Mode       string `json:"weakest_mode,omitempty"`
		MinRetain  string `json:"min_retain_until,omitempty"`
		LegalHolds int    `json:"legal_holds"`
	}
	type stream struct {
		Stream   string    `json:"stream"`
		Segments uint64    `json:"segments"`
		Records  uint64    `json:"records_rehashed"`
		Size     uint64    `json:"size"`
		Root     string    `json:"root"`
		First    string    `json:"first_time,omitempty"`
		Last     string    `json:"last_time,omitempty"`
		Findings []finding `json:"findings"`
		Notices  []finding `json:"notices"`
		Lock     *lock     `json:"object_lock"`
	}
	conv := func(fs []worm.Finding) []finding {
		out := []finding{}
		for _, f := range fs {
			out = append(out, finding{f.Stream, f.Object, f.Code, f.Msg})
		}
		return out
	}
	out := struct {
		OK       bool      `json:"ok"`
		Streams  []stream  `json:"streams"`
		Findings []finding `json:"findings"`
	}{OK: rep.OK(), Streams: []stream{}, Findings: conv(rep.Findings)}
	for _, s := range rep.Streams {
		js := stream{Stream: s.Stream, Segments: s.Segments, Records: s.Records, Size: s.Size,
			Root: hex.EncodeToString(s.Root[:]), Findings: conv(s.Findings), Notices: conv(s.Notices)}
		if !s.First.IsZero() {
			js.First, js.Last = s.First.UTC().Format(worm.TimeLayout), s.Last.UTC().Format(worm.TimeLayout)
		}
		if s.Lock.Unavailable == "" {
			js.Lock = &lock{Objects: s.Lock.Objects, Mode: s.Lock.Mode, LegalHolds: s.Lock.LegalHolds}
			if !s.Lock.MinRetain.IsZero() {
				js.Lock.MinRetain = s.Lock.MinRetain.UTC().Format(time.RFC3339)
			}
		}
		out.Streams = append(out.Streams, js)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

// verifyBar draws verify's progress as one line on a terminal, redrawn in
// place with '\r' and cleared when verify is done, so that neither a
// pipe, a file nor the report on stdout ever sees it.
type verifyBar struct {
	w      io.Writer
	width  int       // of the terminal
	stream string    // the stream being walked
	start  time.Time // when its walk began
	drawn  int       // length of the line on screen
}

// newVerifyBar returns a bar on stderr if stderr is a terminal, else nil.
func newVerifyBar(stderr io.Writer) *verifyBar {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		width = 80
	}
	return &verifyBar{w: f, width: width}
}

func (b *verifyBar) draw(p worm.VerifyProgress) {
	now := time.Now()
	if p.Stream != b.stream {
		b.stream, b.start = p.Stream, now
	}
	line := renderVerifyBar(p, now.Sub(b.start), b.width)
	// Spaces, not an escape sequence, erase the rest of a longer line, so
	// that any terminal shows it right.
	pad := max(b.drawn-len(line), 0)
	fmt.Fprintf(b.w, "\r%s%s", line, strings.Repeat(" ", pad))
	b.drawn = len(line)
}

// clear erases the bar; a nil bar does nothing.
func (b *verifyBar) clear() {
	if b == nil || b.drawn == 0 {
		return
	}
	fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", b.drawn))
	b.drawn = 0
}

// renderVerifyBar is the bar's line for p, elapsed since the stream's walk
// began, fitted into a terminal width columns wide (leaving the last
// column free, where some terminals wrap):
//
//	verifying gw-1  [=======>         ]  412/1000 segments  1.2 M records  480 MB/s
//
// The bar's width depends only on the stream and the terminal, so that it
// does not jitter as the numbers after it grow.
func renderVerifyBar(p worm.VerifyProgress, elapsed time.Duration, width int) string {
	head := "verifying " + p.Stream
	var tail strings.Builder
	if p.SegmentsTotal > 0 {
		fmt.Fprintf(&tail, "  %d/%d segments", p.Segments, p.SegmentsTotal)
	} else {
		fmt.Fprintf(&tail, "  %d segments", p.Segments)
	}
	fmt.Fprintf(&tail, "  %s records", verifyBarCount(p.Records))
	if secs := elapsed.Seconds(); secs >= 0.05 && p.Bytes > 0 {
		fmt.Fprintf(&tail, "  %.0f MB/s", float64(p.Bytes)/1e6/secs)
	}
	line := head + tail.String()
	const minBar, maxBar = 10, 40
	widest := len(fmt.Sprintf("  %d/%d segments  999.9 k records  9999 MB/s", p.SegmentsTotal, p.SegmentsTotal))
	if n := width - 1 - len(head) - len("  []") - widest; p.SegmentsTotal > 0 && n >= minBar {
		line = head + "  [" + verifyBarFill(p.Segments, p.SegmentsTotal, min(n, maxBar)) + "]" + tail.String()
	}
	if len(line) > width-1 {
		line = line[:max(width-1, 0)]
	}
	return line
}

// verifyBarFill is a bar n columns wide, done/total of it filled.
func verifyBarFill(done, total uint64, n int) string {
	filled := n
	if done < total {
		filled = int(uint64(n) * done / total)
	}
	bar := strings.Repeat("=", filled)
	if filled < n {
		bar += ">" + strings.Repeat(" ", n-filled-1)
	}
	return bar
}

// verifyBarCount writes a count short: 412, 41.2 k, 1.2 M, 3.4 G.
func verifyBarCount(n uint64) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 1e6:
		return fmt.Sprintf("%.1f k", float64(n)/1e3)
	case n < 1e9:
		return fmt.Sprintf("%.1f M", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1f G", float64(n)/1e9)
}
