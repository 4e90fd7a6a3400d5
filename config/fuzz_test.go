package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that it returns either
// a Config or *Problems, never both or neither, and that the policies of a
// Config it returns compile.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../auditgate.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		"",
		"listen: ${X:-127.0.0.1:8080}\nroutes:\n  - {name: a, upstream: 'http://x', max_capture: 1KiB}\n",
		"routes:\n  - &a {name: a, upstream: 'http://x'}\n  - {<<: [*a, *a], name: b}\n",
		"a: &a {b: 1}\nc: {<<: *a}\n",
		"routes: [[], {}, x, {match: [1]}]\n",
		"listen: [a,\n",
		"---\n---\n",
		"? [a]\n: b\n",
		"policies:\n  p: [{level: full, match: {paths: ['/**'], models: ['*']}}, {level: x}]\n  q: *p\n",
		"policies: &p {a: [&r {level: none}], b: [*r, {<<: *r, name: n}]}\nidentity: {trusted_proxies: ['::1', 1.2.3.4/33]}\n",
		"routes:\n  - {name: r, upstream: 'http://x', profile: generic, extract: {output: 'a.#(b==\"c\")', attributes: {x: y}}}\n",
	} {
		f.Add([]byte(seed))
	}
	lookup := env(map[string]string{"X": "127.0.0.1:1"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse("fuzz.yaml", data, lookup)
		if (c == nil) == (err == nil) {
			t.Fatalf("parse returned config %v and error %v", c, err)
		}
		var ps *Problems
		if err != nil && (!errors.As(err, &ps) || len(*ps) == 0) {
			t.Fatalf("parse error %T %v, want non-empty *Problems", err, err)
		}
		if c != nil {
			if _, err := c.Policy(); err != nil {
				t.Fatalf("a parsed config's policies do not compile: %v", err)
			}
		}
	})
}
