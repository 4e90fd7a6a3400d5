package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder walks the YAML node tree itself, rather than unmarshalling into
// structs, because every problem must name the line of its key and the
// library reports only the first error, without keys.
type decoder struct {
	file   string
	lookup func(string) (string, bool)
	src    *source
	probs  Problems
	// pairs counts mapping entries visited; aliases and merge keys can make
	// a small file expand into a huge walk, so the walk stops at maxPairs.
	pairs int
}

const maxPairs = 100_000

// field is one known key of a mapping and how to decode its value.
type field struct {
	name   string
	decode func(n *yaml.Node, key string)
}

// problem records a problem at line.
func (d *decoder) problem(line int, key, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// invalid records a problem with key's value and keeps its meaning from
// being checked again.
func (d *decoder) invalid(line int, key, format string, args ...any) {
	d.problem(line, key, format, args...)
	d.src.bad[key] = true
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data and decodes its one document into c.
func (d *decoder) document(data []byte, c *Config) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return // an empty file is the defaults
		}
		d.syntax(err)
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.problem(extra.Line, "", "a second YAML document: keep the whole configuration in one document")
	} else if !errors.Is(err, io.EOF) {
		d.syntax(err)
	}
	if len(root.Content) == 0 {
		return
	}
	d.top(root.Content[0], c)
}

func (d *decoder) syntax(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.problem(line, "", "invalid YAML: %s", m[2])
		return
	}
	d.problem(0, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// isNull reports whether n is an empty or null value, which leaves the
// setting at its default.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what n is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "something else"
}

// entry is one key and value of a mapping, merges resolved.
type entry struct{ k, v *yaml.Node }

// mapping decodes the mapping n with the known fields, reporting unknown
// and duplicate keys.
func (d *decoder) mapping(n *yaml.Node, key string, fields []field) {
	d.dict(n, key, "a mapping of keys to values", func(name string, v *yaml.Node, child string, line int) {
		f, ok := findField(fields, name)
		if !ok {
			if key == "" && name == "upstream" {
				// The flag is --upstream; in the file, upstreams belong to routes.
				d.problem(line, child, "unknown key %q: an upstream belongs to a route, as in routes: [{name: default, upstream: URL}]", name)
				return
			}
			d.problem(line, child, "%s", unknownKey(name, fields))
			return
		}
		f.decode(v, child)
	})
}

// dict walks the mapping n, whose keys may be names chosen in the file
// (policy names, attribute names), calling item for each entry; want says
// what n should be, for the problem when it is not a mapping.
func (d *decoder) dict(n *yaml.Node, key, want string, item func(name string, v *yaml.Node, child string, line int)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.invalid(n.Line, key, "expected %s, got %s", want, describe(n))
		return
	}
	seen := map[string]int{}
	for _, e := range d.entries(n, key) {
		if d.pairs++; d.pairs > maxPairs {
			if d.pairs == maxPairs+1 {
				d.problem(e.k.Line, key, "too many keys after expanding aliases and merges: simplify the file")
			}
			return
		}
		if e.k.Kind != yaml.ScalarNode {
			d.problem(e.k.Line, key, "keys must be plain names, got %s", describe(e.k))
			continue
		}
		name := e.k.Value
		child := join(key, name)
		if first, dup := seen[name]; dup {
			d.problem(e.k.Line, child, "duplicate key (first at line %d): remove one", first)
			continue
		}
		seen[name] = e.k.Line
		d.src.set(child, pos{line: e.k.Line})
		item(name, e.v, child, e.k.Line)
	}
}

// entries lists n's key/value pairs with YAML merge keys ("<<: *defaults")
// expanded: a key written in n wins over a merged one, and an earlier merged
// mapping wins over a later one.
func (d *decoder) entries(n *yaml.Node, key string) []entry {
	var own, merged []entry
	visited := map[*yaml.Node]bool{n: true}
	var merge func(src *yaml.Node)
	merge = func(src *yaml.Node) {
		src = resolve(src)
		switch {
		case visited[src]:
			return
		case src.Kind == yaml.SequenceNode:
			visited[src] = true
			for _, s := range src.Content {
				merge(s)
			}
			return
		case src.Kind != yaml.MappingNode:
			d.problem(src.Line, join(key, "<<"), "<< merges a mapping or a list of mappings, got %s", describe(src))
			return
		}
		visited[src] = true
		// src's own keys win over those it merges in turn.
		var nested []*yaml.Node
		for _, e := range pairsOf(src) {
			if isMerge(e.k) {
				nested = append(nested, e.v)
				continue
			}
			merged = append(merged, e)
		}
		for _, m := range nested {
			merge(m)
		}
	}
	for _, e := range pairsOf(n) {
		if isMerge(e.k) {
			merge(e.v)
			continue
		}
		own = append(own, e)
	}
	if len(merged) == 0 {
		return own
	}
	have := map[string]bool{}
	for _, e := range own {
		have[e.k.Value] = true
	}
	for _, e := range merged {
		if e.k.Kind == yaml.ScalarNode && !have[e.k.Value] {
			have[e.k.Value] = true
			own = append(own, e)
		}
	}
	return own
}

// isMerge reports whether k is the merge key: a plain <<, not a quoted one.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

func pairsOf(n *yaml.Node) []entry {
	es := make([]entry, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		es = append(es, entry{resolve(n.Content[i]), n.Content[i+1]})
	}
	return es
}

func findField(fields []field, name string) (field, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// unknownKey suggests the closest known key within two edits, since most
// unknown keys are typos; otherwise it lists the known keys.
func unknownKey(name string, fields []field) string {
	best, bestDist := "", 3
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
		if dist := editDistance(name, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key %q; did you mean %q?", name, best)
	}
	return fmt.Sprintf("unknown key %q: use one of %s", name, strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sequence decodes each item of the list n.
func (d *decoder) sequence(n *yaml.Node, key string, item func(i int, n *yaml.Node, key string)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.invalid(n.Line, key, "expected a list, got %s", describe(n))
		return
	}
	for i, it := range n.Content {
		item(i, it, fmt.Sprintf("%s[%d]", key, i))
	}
}

// scalar returns the value of n with environment variables expanded. ok is
// false when n is null (the key keeps its default) or a problem was
// reported.
func (d *decoder) scalar(n *yaml.Node, key, want string) (string, bool) {
	n = resolve(n)
	if isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.invalid(n.Line, key, "expected %s, got %s", want, describe(n))
		return "", false
	}
	v, err := expand(n.Value, d.lookup)
	if err != nil {
		d.invalid(n.Line, key, "%v", err)
		return "", false
	}
	return v, true
}

// set stores the decoded value's origin.
func (d *decoder) set(n *yaml.Node, key string, val any) {
	d.src.set(key, pos{line: resolve(n).Line, val: fmt.Sprint(val)})
}

func (d *decoder) str(n *yaml.Node, key string, dst *string) {
	if v, ok := d.scalar(n, key, "a string"); ok {
		*dst = v
		d.set(n, key, v)
	}
}

// strs decodes a list of strings. An empty list ("[]") decodes as an
// empty, non-nil list, for settings where nil means a default set and an
// empty list means none; a null item stays in the list as "" so later
// items keep their index.
func (d *decoder) strs(n *yaml.Node, key string, dst *[]string) {
	if r := resolve(n); r.Kind == yaml.SequenceNode {
		*dst = make([]string, 0, len(r.Content))
	}
	d.sequence(n, key, func(i int, n *yaml.Node, k string) {
		var v string
		d.str(n, k, &v)
		*dst = append(*dst, v)
	})
}

func (d *decoder) boolean(n *yaml.Node, key string, dst *bool) {
	v, ok := d.scalar(n, key, "true or false")
	if !ok {
		return
	}
	switch strings.ToLower(v) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		d.invalid(resolve(n).Line, key, "invalid boolean %q: use true or false", v)
		return
	}
	d.set(n, key, *dst)
}

// count decodes a positive integer; zero is refused because in the
// gateway's options it would silently mean "the default".
func (d *decoder) count(n *yaml.Node, key string, dst *int) {
	v, ok := d.scalar(n, key, "a whole number")
	if !ok {
		return
	}
	i, err := strconv.Atoi(v)
	switch {
	case err != nil:
		d.invalid(resolve(n).Line, key, "invalid number %q: use a whole number such as 1024", v)
		return
	case i < 1:
		d.invalid(resolve(n).Line, key, "%d is too small: use 1 or more, or remove the key for the default", i)
		return
	}
	*dst = i
	d.set(n, key, i)
}
