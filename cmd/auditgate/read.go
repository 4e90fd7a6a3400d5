package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/auditgate/auditgate/worm"
)

// readFlags are the flags every command reading a trail shares.
type readFlags struct {
	store, prefix, trust *string
	format               *string // nil for a command whose output has one form
}

func addReadFlags(fs *flag.FlagSet, trustHelp string, withFormat bool) readFlags {
	f := readFlags{
		store:  fs.String("store", "", "the trail's store `URL`: file:///path, a plain path, or s3://bucket/prefix?endpoint=… (required)"),
		prefix: fs.String("prefix", "", "the trail's key `prefix` inside the store"),
		trust:  fs.String("trust", "", trustHelp),
	}
	if withFormat {
		f.format = fs.String("format", "text", "output `format`: text or json")
	}
	return f
}

// reader checks the shared flags and opens the trail; a problem is a
// usage error, reported on stderr.
// parseRecordID parses the arguments of a command that reads one record,
// given by its id, and opens the reader; usage is the command line shown
// when the id is missing. On !ok the command exits with code.
func (f readFlags) parseRecordID(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (id string, r *worm.Reader, code int, ok bool) {
	pos, code, ok := parseInterspersed(fs, args, stdout)
	if !ok {
		return "", nil, code, false
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "auditgate %s: give one record id: %s\n", fs.Name(), usage)
		return "", nil, exitUsage, false
	}
	if r, ok = f.reader(fs.Name(), stderr); !ok {
		return "", nil, exitUsage, false
	}
	return pos[0], r, 0, true
}

func (f readFlags) reader(name string, stderr io.Writer) (*worm.Reader, bool) {
	fail := func(msg string, a ...any) (*worm.Reader, bool) {
		fmt.Fprintf(stderr, "auditgate %s: "+msg+"\n", append([]any{name}, a...)...)
		return nil, false
	}
	switch {
	case *f.store == "":
		return fail("--store URL is required")
	case f.format != nil && *f.format != "text" && *f.format != "json":
		return fail("--format must be text or json")
	}
	if err := worm.ValidatePrefix(*f.prefix); err != nil {
		return fail("--prefix: %v", err)
	}
	st, err := worm.OpenStore(*f.store)
	if err != nil {
		return fail("%v", err)
	}
	r := &worm.Reader{Store: st, Prefix: *f.prefix}
	if *f.trust != "" {
		if r.Trust, err = worm.LoadTrust(*f.trust); err != nil {
			return fail("%v", err)
		}
	}
	return r, true
}

const trustReadHelp = "trust `file`: check the signatures of what is read against these keys (default: not checked)"

func runShow(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("show", "show ID --store URL [flags]", stderr)
	rf := addReadFlags(fs, trustReadHelp, true)
	id, r, code, ok := rf.parseRecordID(fs, args, "auditgate show ID --store URL", stdout, stderr)
	if !ok {
		return code
	}
	stream, index, line, m, err := r.Find(context.Background(), id)
	if err != nil {
		fmt.Fprintf(stderr, "auditgate show: %v\n", err)
		return exitFailure
	}
	if *rf.format == "json" {
		stdout.Write(append(line, '\n'))
		return exitOK
	}
	writeRecordText(stdout, stream, index, m.Segment, line)
	return exitOK
}

// Limits of the input and output shown by show.
const (
	showMaxLines    = 40
	showMaxLineChar = 160
)

// writeRecordText prints a record for reading: its fields, then its input
// and output pretty-printed and shortened.
func writeRecordText(w io.Writer, stream string, index uint64, segment string, line []byte) {
	rec := gjson.ParseBytes(line)
	get := func(path string) string { return rec.Get(path).String() }
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(w, "%-16s %s\n", name, value)
		}
	}
	join := func(parts ...string) string {
		var out []string
		for i := 0; i+1 < len(parts); i += 2 {
			if parts[i+1] != "" {
				out = append(out, parts[i]+" "+parts[i+1])
			}
		}
		return strings.Join(out, ", ")
	}
	field("id", get("id"))
	field("time", get("time"))
	field("kind", get("kind"))
	field("stream", fmt.Sprintf("%s index %d (segment %s)", stream, index, segment))
	field("route", get("route"))
	req := strings.TrimSpace(get("method") + " " + get("path"))
	if s := rec.Get("status"); s.Exists() {
		req += fmt.Sprintf(" -> %d", s.Int())
	}
	if l := rec.Get("latency_us"); l.Exists() {
		req += fmt.Sprintf(" in %s (first byte %s)", time.Duration(l.Int())*time.Microsecond, time.Duration(rec.Get("ttfb_us").Int())*time.Microsecond)
	}
	field("request", strings.TrimSpace(req))
	var caller []string
	rec.Get("caller").ForEach(func(k, v gjson.Result) bool {
		caller = append(caller, k.String()+"="+v.String())
		return true
	})
	field("caller", strings.Join(caller, " "))
	field("model", join("provider", get("model.provider"), "requested", get("model.requested"),
		"served", get("model.served"), "version", get("model.version"), "digest", get("model.digest")))
	field("operation", get("operation"))
	if u := rec.Get("usage"); u.IsObject() {
		var parts []string
		u.ForEach(func(k, v gjson.Result) bool {
			parts = append(parts, k.String()+"="+v.String())
			return true
		})
		field("usage", strings.Join(parts, " "))
	}
	var red []string
	for _, r := range rec.Get("redactions").Array() {
		red = append(red, r.Get("type").String()+" at "+r.Get("where").String())
	}
	field("redactions", strings.Join(red, "; "))
	var flags []string
	if rec.Get("truncated").Bool() {
		flags = append(flags, "truncated")
	}
	for _, f := range rec.Get("flags").Array() {
		flags = append(flags, f.String())
	}
	field("flags", strings.Join(flags, " "))
	if rules := rec.Get("rules"); len(rules.Array()) > 0 {
		field("rules", rules.Raw)
	}
	if e := rec.Get("error"); e.IsObject() {
		field("error", strings.TrimSpace(get("error.kind")+": "+get("error.message")))
	}
	field("request_sha256", get("request_sha256"))
	field("response_sha256", get("response_sha256"))
	for _, part := range []string{"input", "output", "rationale", "attributes"} {
		v := rec.Get(part)
		if !v.Exists() || v.Type == gjson.Null {
			continue
		}
		fmt.Fprintf(w, "%s:\n", part)
		writeShortened(w, v.Raw)
	}
}

// writeShortened pretty-prints a JSON value, indented, cutting long lines
// and everything past showMaxLines.
func writeShortened(w io.Writer, raw string) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(raw), "", "  "); err != nil {
		buf.Reset()
		buf.WriteString(raw)
	}
	lines := strings.Split(buf.String(), "\n")
	for i, l := range lines {
		if i == showMaxLines {
			fmt.Fprintf(w, "  … %d more lines (--format json shows the record whole)\n", len(lines)-i)
			break
		}
		if r := []rune(l); len(r) > showMaxLineChar {
			l = string(r[:showMaxLineChar]) + fmt.Sprintf("… (%d more characters)", len(r)-showMaxLineChar)
		}
		fmt.Fprintf(w, "  %s\n", l)
	}
}

// errLimit stops a search at --limit.
var errLimit = errors.New("limit reached")

func runSearch(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("search", "search --store URL [flags]", stderr)
	rf := addReadFlags(fs, trustReadHelp, true)
	var f worm.Filter
	fs.StringVar(&f.KeyID, "caller", "", "only records of this caller `key_id`")
	fs.StringVar(&f.Subject, "subject", "", "only records of this caller `subject`")
	fs.StringVar(&f.Model, "model", "", "only records whose requested or served model is `M`")
	fs.StringVar(&f.Route, "route", "", "only records of this `route`")
	fs.StringVar(&f.Kind, "kind", "", "only records of this `kind` (inference, request, alert, heartbeat, …)")
	fs.StringVar(&f.Stream, "stream", "", "only records of this `stream`")
	from := fs.String("from", "", "only records at or after `T` (RFC 3339, or relative like -24h)")
	to := fs.String("to", "", "only records at or before `T`")
	limit := fs.Int("limit", 0, "stop after `N` records (0: no limit)")
	pos, code, ok := parseInterspersed(fs, args, stdout)
	if !ok {
		return code
	}
	usage := func(msg string, a ...any) int {
		fmt.Fprintf(stderr, "auditgate search: "+msg+"\n", a...)
		return exitUsage
	}
	if len(pos) > 0 {
		return usage("unexpected argument %q: search takes only flags", pos[0])
	}
	if *limit < 0 {
		return usage("--limit must not be negative")
	}
	if f.Stream != "" {
		if err := worm.ValidateStream(f.Stream); err != nil {
			return usage("--stream: %v", err)
		}
	}
	now := time.Now()
	var err error
	if f.From, err = parseWhen(*from, now); err != nil {
		return usage("--from: %v", err)
	}
	if f.To, err = parseWhen(*to, now); err != nil {
		return usage("--to: %v", err)
	}
	r, ok := rf.reader("search", stderr)
	if !ok {
		return exitUsage
	}
	n := 0
	err = r.Scan(context.Background(), f, func(stream string, index uint64, line []byte) error {
		if *rf.format == "json" {
			stdout.Write(line)
			io.WriteString(stdout, "\n")
		} else {
			writeRecordLine(stdout, line)
		}
		if n++; *limit > 0 && n >= *limit {
			return errLimit
		}
		return nil
	})
	if err != nil && !errors.Is(err, errLimit) {
		fmt.Fprintf(stderr, "auditgate search: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// writeRecordLine prints one record as one line: time, id, route, model
// (served, else requested), status, caller.
func writeRecordLine(w io.Writer, line []byte) {
	r := gjson.GetManyBytes(line, "time", "id", "route", "model.served", "status", "caller.subject", "caller.key_id", "kind", "model.requested")
	if r[3].String() == "" {
		r[3] = r[8]
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	caller := r[5].String()
	if caller == "" {
		caller = r[6].String()
	}
	status := "-"
	if r[4].Exists() {
		status = r[4].String()
	}
	if k := r[7].String(); k != "" && k != "inference" {
		status += " " + k
	}
	fmt.Fprintf(w, "%s  %s  %s  %s  %s  %s\n", dash(r[0].String()), dash(r[1].String()), dash(r[2].String()), dash(r[3].String()), status, dash(caller))
}

func runProve(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("prove", "prove ID --store URL [flags] > FILE", stderr)
	rf := addReadFlags(fs, "trust `file`: check the manifests and checkpoint the proof is built from against these keys (default: not checked)", false)
	id, r, code, ok := rf.parseRecordID(fs, args, "auditgate prove ID --store URL > proof.txt", stdout, stderr)
	if !ok {
		return code
	}
	proof, err := worm.Prove(context.Background(), r, id)
	if err != nil {
		fmt.Fprintf(stderr, "auditgate prove: %v\n", err)
		return exitFailure
	}
	stdout.Write(proof)
	return exitOK
}

func runVerifyProof(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify-proof", "verify-proof FILE --trust FILE [flags]", stderr)
	trustPath := fs.String("trust", "", "trust `file` pinning the verifier keys (required)")
	format := fs.String("format", "text", "output `format`: text or json")
	pos, code, ok := parseInterspersed(fs, args, stdout)
	if !ok {
		return code
	}
	usage := func(msg string, a ...any) int {
		fmt.Fprintf(stderr, "auditgate verify-proof: "+msg+"\n", a...)
		return exitUsage
	}
	switch {
	case len(pos) != 1:
		return usage("give one proof file: auditgate verify-proof proof.txt --trust trust.pub")
	case *trustPath == "":
		return usage("--trust FILE is required: verification trusts nothing but the keys you pin")
	case *format != "text" && *format != "json":
		return usage("--format must be text or json")
	}
	trust, err := worm.LoadTrust(*trustPath)
	if err != nil {
		return usage("%v", err)
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return usage("read proof: %v", err)
	}
	line, cp, index, err := worm.VerifyRecordProof(data, trust)
	id := gjson.GetBytes(line, "id").String()
	if *format == "json" {
		out := struct {
			OK       bool   `json:"ok"`
			ID       string `json:"id,omitempty"`
			Stream   string `json:"stream,omitempty"`
			Index    uint64 `json:"index"`
			Size     uint64 `json:"checkpoint_size,omitempty"`
			SealedAt string `json:"sealed_at,omitempty"`
			Key      string `json:"key,omitempty"`
			Error    string `json:"error,omitempty"`
		}{OK: err == nil}
		if err != nil {
			out.Error = err.Error()
		} else {
			out.ID, out.Stream, out.Index, out.Size = id, cp.Stream, index, cp.Size
			out.SealedAt, out.Key = cp.Time.Format(worm.TimeLayout), cp.KeyName
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else if err != nil {
		fmt.Fprintf(stdout, "FAILED: %s: %v\n", pos[0], err)
	} else {
		fmt.Fprintf(stdout, "ok: record %s is in stream %s at index %d of the checkpoint of size %d sealed at %s, signed by %s\n",
			id, cp.Stream, index, cp.Size, cp.Time.Format(worm.TimeLayout), cp.KeyName)
	}
	if err != nil {
		return exitFailure
	}
	return exitOK
}
