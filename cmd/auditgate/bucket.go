package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/auditgate/auditgate/worm"
)

// runBucket is `auditgate bucket init URL`: create the trail's bucket with
// Object Lock and versioning, or check an existing one and say what is
// wrong with it.
func runBucket(args []string, stdout, stderr io.Writer) int {
	if _, code, ok := groupCommand("bucket", args, stdout, stderr); !ok {
		return code
	}
	fs := newFlagSet("bucket init", "bucket init URL [flags]", stderr)
	retention := fs.String("retention", "", "the Object Lock retention each trail object will get, as `D` days (190d) or a duration; overrides the URL's retention= (default 6 months and a day). auditgate sets it on every object it writes, never as a bucket default")
	format := fs.String("format", "text", "output `format`: text or json")
	pos, code, ok := parseInterspersed(fs, args[1:], stdout)
	if !ok {
		return code
	}
	if len(pos) != 1 || (*format != "text" && *format != "json") {
		fs.Usage()
		return exitUsage
	}
	o, err := worm.ParseS3URL(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "auditgate bucket init: %v\n", err)
		return exitUsage
	}
	if *retention != "" {
		if o.Retention, err = worm.ParseRetention(*retention); err != nil {
			fmt.Fprintf(stderr, "auditgate bucket init: --retention: %v\n", err)
			return exitUsage
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := worm.InitBucket(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "auditgate bucket init: %v\n", err)
		return exitFailure
	}
	if *format == "json" {
		out := struct {
			Bucket           string   `json:"bucket"`
			OK               bool     `json:"ok"`
			Created          bool     `json:"created"`
			Versioning       string   `json:"versioning"`
			ObjectLock       bool     `json:"object_lock"`
			DefaultRetention string   `json:"default_retention,omitempty"`
			Problems         []string `json:"problems"`
			Notes            []string `json:"notes"`
		}{rep.Bucket, rep.OK(), rep.Created, rep.Versioning, rep.ObjectLock, rep.DefaultRetention, append([]string{}, rep.Problems...), append([]string{}, rep.Notes...)}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		if rep.Created {
			fmt.Fprintf(stdout, "created bucket %s with Object Lock and versioning\n", rep.Bucket)
		}
		fmt.Fprintf(stdout, "bucket %s: versioning %s, Object Lock %s", rep.Bucket, orNone(rep.Versioning), onOff(rep.ObjectLock))
		if rep.DefaultRetention != "" {
			fmt.Fprintf(stdout, ", default retention %s", rep.DefaultRetention)
		}
		fmt.Fprintln(stdout)
		for _, n := range rep.Notes {
			fmt.Fprintf(stdout, "note: %s\n", n)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(stdout, "PROBLEM: %s\n", p)
		}
		if rep.OK() {
			mode, until := worm.S3ModeCompliance, time.Now().AddDate(0, 6, 1)
			if o.Mode != "" {
				mode = o.Mode
			}
			if o.Retention > 0 {
				until = time.Now().Add(o.Retention)
			}
			fmt.Fprintf(stdout, "ok: ready for a trail; each object will be locked in %s mode until about %s\n", mode, until.UTC().Format("2006-01-02"))
		}
	}
	if !rep.OK() {
		return exitFailure
	}
	return exitOK
}

func orNone(s string) string {
	if s == "" {
		return "not enabled"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "not enabled"
}
