package config

import (
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/auditgate/auditgate/worm"
)

// Trail says where and how the trail is written. It is read at start only:
// a reload that changes it is logged and applies at the next start, since a
// running stream cannot move.
type Trail struct {
	// Store is the store's URL: file:///abs/path, a directory, or
	// s3://bucket/prefix?…. If empty, DataDir/trail.
	Store string
	// Prefix is prepended to every object key in the store.
	Prefix string
	// Spool is the directory of the stream's spool. If empty,
	// DataDir/spool.
	Spool string
	// Key is the signing key file. If empty, DataDir/signing.key, which
	// the first start generates with DataDir/trust.pub beside it.
	Key string
	// Appender holds the sealing, heartbeat, group-commit and queue
	// settings; zero fields take the appender's defaults.
	Appender worm.AppenderOptions
}

func (d *decoder) trail(n *yaml.Node, key string, t *Trail) {
	a := &t.Appender
	d.mapping(n, key, []field{
		{"store", func(n *yaml.Node, k string) { d.str(n, k, &t.Store) }},
		{"prefix", func(n *yaml.Node, k string) { d.str(n, k, &t.Prefix) }},
		{"spool", func(n *yaml.Node, k string) { d.str(n, k, &t.Spool) }},
		{"key", func(n *yaml.Node, k string) { d.str(n, k, &t.Key) }},
		{"seal", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"max_records", func(n *yaml.Node, k string) { d.count(n, k, &a.MaxRecords) }},
				{"max_bytes", func(n *yaml.Node, k string) {
					d.size(n, k, "", "use a positive size such as 32MiB", 1<<30, func(v int64) { a.MaxBytes = v })
				}},
				{"max_age", func(n *yaml.Node, k string) { d.positiveDuration(n, k, &a.MaxAge) }},
			})
		}},
		{"heartbeat", func(n *yaml.Node, k string) { d.positiveDuration(n, k, &a.Heartbeat) }},
		{"commit_interval", func(n *yaml.Node, k string) { d.positiveDuration(n, k, &a.CommitInterval) }},
		{"queue", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"records", func(n *yaml.Node, k string) { d.count(n, k, &a.QueueRecords) }},
				{"bytes", func(n *yaml.Node, k string) {
					d.size(n, k, "", "use a positive size such as 64MiB", 1<<40, func(v int64) { a.QueueBytes = v })
				}},
			})
		}},
		{"max_spool", func(n *yaml.Node, k string) {
			d.size(n, k, "", "use a positive size such as 10GiB", 1<<50, func(v int64) { a.MaxSpool = v })
		}},
		{"max_record", func(n *yaml.Node, k string) {
			d.size(n, k, "", "use a positive size such as 16MiB", worm.MaxLineBytes, func(v int64) { a.MaxRecord = int(v) })
		}},
	})
}

// TrailStore is the store URL in effect: Trail.Store, or DataDir/trail.
func (c *Config) TrailStore() string {
	if c.Trail.Store != "" {
		return c.Trail.Store
	}
	return filepath.Join(c.DataDir, "trail")
}

// TrailSpool is the spool directory in effect: Trail.Spool, or
// DataDir/spool.
func (c *Config) TrailSpool() string {
	if c.Trail.Spool != "" {
		return c.Trail.Spool
	}
	return filepath.Join(c.DataDir, "spool")
}

// TrailKey is the signing key file in effect and whether it is the
// default one in DataDir, which is generated when missing.
func (c *Config) TrailKey() (path string, generated bool) {
	if c.Trail.Key != "" {
		return c.Trail.Key, false
	}
	return filepath.Join(c.DataDir, worm.SigningKeyFile), true
}
