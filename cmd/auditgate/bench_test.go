package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchCommand runs a short `auditgate bench`: the mock, the gateway
// as a child process and a strict one, measured at one rate; the JSON
// report holds every target, and the SVG plot is written.
func TestBenchCommand(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "latency.svg")
	out, errs, code := runCmd(t, "bench", "--duration", "400ms", "--rates", "100", "--saturation", "300ms", "--format", "json", "--svg", svg)
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s\n%s", code, out, errs)
	}
	var rep struct {
		Steps []struct {
			Rate    int `json:"rate"`
			Results []struct {
				Target string `json:"target"`
				OK     int    `json:"ok"`
				Errors int    `json:"errors"`
			} `json:"results"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench --format json: %v\n%.500s", err, out)
	}
	var targets []string
	for _, s := range rep.Steps {
		for _, r := range s.Results {
			targets = append(targets, r.Target)
			if r.OK == 0 || r.Errors > 0 {
				t.Errorf("%s at %d/s: %d ok, %d errors", r.Target, s.Rate, r.OK, r.Errors)
			}
		}
	}
	if strings.Join(targets, ",") != "direct,auditgate,auditgate-strict" {
		t.Errorf("targets %v", targets)
	}
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<svg") {
		t.Errorf("latency plot: %v", err)
	}
}
