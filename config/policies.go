package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/auditgate/auditgate/policy"
)

// policies decodes the policies section: policy names to lists of rules.
func (d *decoder) policies(n *yaml.Node, key string, c *Config) {
	d.dict(n, key, "a mapping of policy names to lists of rules", func(name string, v *yaml.Node, key string, _ int) {
		rules := []policy.Rule{}
		d.sequence(v, key, func(i int, n *yaml.Node, k string) {
			rules = append(rules, d.rule(n, k))
		})
		if c.Policies == nil {
			c.Policies = map[string][]policy.Rule{}
		}
		c.Policies[name] = rules
	})
}

// rule decodes one rule of a policy. A malformed item still yields a rule
// so that later rules keep their index in problems.
func (d *decoder) rule(n *yaml.Node, key string) policy.Rule {
	var r policy.Rule
	item := resolve(n)
	if !isNull(item) && item.Kind != yaml.MappingNode {
		d.invalid(item.Line, key, "expected a rule mapping with name, match and level, got %s", describe(item))
		return r
	}
	hasLevel := false
	d.mapping(item, key, []field{
		{"name", func(n *yaml.Node, k string) { d.str(n, k, &r.Name) }},
		{"match", func(n *yaml.Node, k string) {
			m := &r.Match
			d.mapping(n, k, []field{
				{"routes", func(n *yaml.Node, k string) { d.strs(n, k, &m.Routes) }},
				{"paths", func(n *yaml.Node, k string) { d.strs(n, k, &m.Paths) }},
				{"methods", func(n *yaml.Node, k string) { d.strs(n, k, &m.Methods) }},
				{"callers", func(n *yaml.Node, k string) { d.strs(n, k, &m.Callers) }},
				{"models", func(n *yaml.Node, k string) { d.strs(n, k, &m.Models) }},
			})
		}},
		{"level", func(n *yaml.Node, k string) {
			v, ok := d.scalar(n, k, "a level")
			if !ok {
				return
			}
			hasLevel = true
			l, err := policy.ParseLevel(v)
			if err != nil {
				d.invalid(resolve(n).Line, k, "%v", err)
				return
			}
			r.Level = l
			d.set(n, k, l)
		}},
		{"max_body", func(n *yaml.Node, k string) {
			d.size(n, k, "", "use a positive size, or remove the key for the default of 1MiB",
				math.MaxInt, func(b int64) { r.MaxBody = int(b) })
		}},
		{"redact", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"paths", func(n *yaml.Node, k string) { d.strs(n, k, &r.Redact.Paths) }},
				{"detectors", func(n *yaml.Node, k string) { d.strs(n, k, &r.Redact.Detectors) }},
			})
		}},
		{"durability", func(n *yaml.Node, k string) { d.str(n, k, (*string)(&r.Durability)) }},
		{"on_trail_failure", func(n *yaml.Node, k string) { d.str(n, k, (*string)(&r.OnTrailFailure)) }},
	})
	d.src.set(key, pos{line: item.Line, val: r.Name})
	// The zero level records nothing, so a forgotten level would silently
	// drop exchanges from the trail.
	if !hasLevel {
		d.problem(item.Line, key+".level", "missing: give the level: none, metadata, request or full")
	}
	return r
}

// policies checks the policies and the references to them.
func (k *checker) policies() {
	ps := k.c.Policies
	valid := make(map[string][]policy.Rule, len(ps))
	for _, name := range slices.Sorted(maps.Keys(ps)) {
		key := "policies." + name
		switch {
		case k.src.isBad(key):
		case !validName(name):
			k.report(key, nil, "invalid policy name %q: use lower-case letters, digits, - and _", name)
		default:
			valid[name] = ps[name]
		}
	}
	if _, err := policy.Compile(valid); err != nil {
		k.compileProblems(err)
	}
	routes := map[string]bool{}
	for _, r := range k.c.Gateway.Routes {
		routes[r.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(valid)) {
		for i, r := range valid[name] {
			for j, route := range r.Match.Routes {
				// Without routes yet, --upstream will add the one named default.
				if route != "" && !routes[route] && len(routes) > 0 {
					k.report(fmt.Sprintf("policies.%s[%d].match.routes[%d]", name, i, j), route,
						"unknown route %q: name one of the routes (%s)", route, strings.Join(slices.Sorted(maps.Keys(routes)), ", "))
				}
			}
		}
	}
}

// compileProblems turns policy.Compile's problems into the file's keys and
// lines: a problem's field is named as in the file.
func (k *checker) compileProblems(err error) {
	var ce *policy.CompileError
	if !errors.As(err, &ce) {
		k.report("policies", nil, "%v", err)
		return
	}
	for _, p := range ce.Problems {
		key := "policies." + p.Policy
		if p.Rule >= 0 {
			key += fmt.Sprintf("[%d]", p.Rule)
		}
		if p.Field != "" {
			key += "." + p.Field
		}
		// A value the file set keeps its line only while unchanged; one the
		// file left out points at its rule.
		if line, _ := k.src.at(key, nil); line > 0 && p.Field != "" {
			k.report(key, p.Value, "%s", p.Msg)
			continue
		}
		k.reportAt(key, k.nearest(key), nil, "%s", p.Msg)
	}
}

// nearest returns key, or the closest of its parents the file sets, so
// that a problem of a value left out still points at its rule.
func (k *checker) nearest(key string) string {
	for {
		if line, _ := k.src.at(key, nil); line > 0 {
			return key
		}
		i := strings.LastIndexAny(key, ".[")
		if i <= 0 {
			return key
		}
		key = key[:i]
	}
}

// routePolicy checks that a route names a defined policy.
func (k *checker) routePolicy(key string, name string) {
	switch {
	case name == "":
	case !validName(name):
		k.report(key, name, "invalid policy name %q: use lower-case letters, digits, - and _", name)
	case name == policy.DefaultPolicy:
		// Always defined: without a policy of that name, the built-in one.
	default:
		if _, ok := k.c.Policies[name]; !ok {
			k.report(key, name, "unknown policy %q: define it under policies, or use default", name)
		}
	}
}

// Policy compiles the configured policies. A configuration that passed
// Parse or Validate always compiles; otherwise the problems are returned
// as *Problems, with lines where the file set the values.
func (c *Config) Policy() (*policy.Set, error) {
	s, err := policy.Compile(c.Policies)
	if err == nil {
		return s, nil
	}
	k := &checker{c: c, src: c.source()}
	k.compileProblems(err)
	return nil, k.probs.err()
}
