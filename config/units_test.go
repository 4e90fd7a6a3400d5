package config

import (
	"testing"

	"github.com/auditgate/auditgate/gateway"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"512B", 512, true},
		{"2KB", 2000, true},
		{"3 MB", 3_000_000, true},
		{"1GB", 1_000_000_000, true},
		{"2KiB", 2048, true},
		{"64MiB", 64 << 20, true},
		{"1GiB", 1 << 30, true},
		{"8589934591GiB", 8589934591 << 30, true},
		{"8589934592GiB", 0, false},
		{"99999999999999999999", 0, false},
		{"1.5MiB", 0, false},
		{"MiB", 0, false},
		{"64mib", 0, false},
		{"64  MiB", 0, false},
		{"-1", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseSize(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"listen", "listen", 0},
		{"listn", "listen", 1},
		{"upstrem", "upstream", 1},
		{"dail", "dial", 2},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			t.Parallel()
			if got := editDistance(tt.a, tt.b); got != tt.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		aHost, aPrefix, bHost, bPrefix string
		want                           bool
	}{
		{"", "", "x.com", "/v1/", true},
		{"", "/v1", "", "/v1", true},
		{"", "/v1", "", "/v1/chat", true},
		{"", "/v1", "", "/v1beta", false},
		{"", "/v1/", "", "/v1", false},
		{"", "/v1/", "", "/v1/x", true},
		{"", "/v1/", "", "", false},
		{"X.com", "", "x.com", "/a", true},
		{"*.x.com", "", "a.x.com", "", true},
		{"*.x.com", "", "*.a.x.com", "", true},
		{"*.x.com", "", "x.com", "", false},
		{"*.x.com", "", ".x.com", "", false},
		{"a.com", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.aHost+tt.aPrefix+"|"+tt.bHost+tt.bPrefix, func(t *testing.T) {
			t.Parallel()
			a := gateway.Route{Host: tt.aHost, PathPrefix: tt.aPrefix}
			b := gateway.Route{Host: tt.bHost, PathPrefix: tt.bPrefix}
			if got := covers(&a, &b); got != tt.want {
				t.Errorf("covers(%+v, %+v) = %v, want %v", a, b, got, tt.want)
			}
		})
	}
}
