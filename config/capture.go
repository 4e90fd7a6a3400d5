package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/auditgate/auditgate/capture"
)

// captureFields are the keys of a route that fill its capture options.
func (d *decoder) captureFields(o *capture.RouteOptions) []field {
	return []field{
		{"profile", func(n *yaml.Node, k string) {
			// Unknown names are kept for the check, which covers
			// configurations built in code too.
			if v, ok := d.scalar(n, k, "a profile name"); ok {
				if v == "auto" {
					v = string(capture.ProfileAuto)
				}
				o.Profile = capture.Profile(v)
				d.set(n, k, o.Profile)
			}
		}},
		{"provider", func(n *yaml.Node, k string) { d.str(n, k, &o.Provider) }},
		{"model", func(n *yaml.Node, k string) {
			d.mapping(n, k, []field{
				{"name", func(n *yaml.Node, k string) { d.str(n, k, &o.Labels.Model) }},
				{"version_headers", func(n *yaml.Node, k string) { d.strs(n, k, &o.VersionHeaders) }},
				{"version", func(n *yaml.Node, k string) { d.str(n, k, &o.Labels.Version) }},
				{"digest", func(n *yaml.Node, k string) { d.str(n, k, &o.Labels.Digest) }},
			})
		}},
		{"extract", func(n *yaml.Node, k string) { d.extract(n, k, &o.Extract) }},
	}
}

func (d *decoder) extract(n *yaml.Node, key string, x *capture.Extract) {
	d.mapping(n, key, []field{
		{"model", func(n *yaml.Node, k string) { d.gjsonPath(n, k, &x.Model) }},
		{"version", func(n *yaml.Node, k string) { d.gjsonPath(n, k, &x.Version) }},
		{"input", func(n *yaml.Node, k string) { d.gjsonPath(n, k, &x.Input) }},
		{"output", func(n *yaml.Node, k string) { d.gjsonPath(n, k, &x.Output) }},
		{"decision", func(n *yaml.Node, k string) { d.gjsonPath(n, k, &x.Decision) }},
		{"rationale", func(n *yaml.Node, k string) { d.gjsonPath(n, k, &x.Rationale) }},
		{"attributes", func(n *yaml.Node, k string) {
			d.dict(n, k, "a mapping of attribute names to gjson paths", func(name string, v *yaml.Node, k string, _ int) {
				var p string
				d.gjsonPath(v, k, &p)
				if x.Attributes == nil {
					x.Attributes = map[string]string{}
				}
				x.Attributes[name] = p
			})
		}},
	})
}

// gjsonPath decodes a path; an empty one is refused here because in the
// options "" means "not extracted".
func (d *decoder) gjsonPath(n *yaml.Node, key string, dst *string) {
	v, ok := d.scalar(n, key, "a gjson path")
	if !ok {
		return
	}
	if strings.TrimSpace(v) == "" {
		d.invalid(resolve(n).Line, key, "empty path: give a gjson path such as response.predictions, or remove the key")
		return
	}
	*dst = v
	d.set(n, key, v)
}

// routeCapture checks the capture options of the route at key.
func (k *checker) routeCapture(key string, o *capture.RouteOptions) {
	at := func(name string) string { return key + "." + name }
	if o.Profile != capture.ProfileAuto && !slices.Contains(capture.Profiles, o.Profile) {
		names := []string{"auto"}
		for _, p := range capture.Profiles {
			names = append(names, string(p))
		}
		k.report(at("profile"), o.Profile, "unknown profile %q: use %s", o.Profile, orList(names))
	}
	k.headerNames(at("model.version_headers"), o.VersionHeaders)
	x := &o.Extract
	for _, f := range []struct {
		name, path string
	}{
		{"model", x.Model}, {"version", x.Version}, {"input", x.Input}, {"output", x.Output},
		{"decision", x.Decision}, {"rationale", x.Rationale},
	} {
		k.gjsonPath(at("extract."+f.name), f.path)
	}
	for _, name := range slices.Sorted(maps.Keys(x.Attributes)) {
		akey := at("extract.attributes." + name)
		if !validAttribute(name) {
			k.report(akey, nil, "invalid attribute name %q: use letters, digits, - and _", name)
		}
		if x.Attributes[name] == "" {
			k.report(akey, "", "empty path: give a gjson path such as request.instances.0.group")
			continue
		}
		k.gjsonPath(akey, x.Attributes[name])
	}
	if o.Profile == capture.ProfileGeneric && x.Output == "" && x.Input == "" {
		k.reportAt(at("extract.output"), at("profile"), o.Profile,
			"missing: the generic profile reads bodies only through extract paths: give extract.output (or extract.input), such as response.predictions")
	}
}

// gjsonPath checks a gjson path lightly: gjson accepts almost any string,
// so only the slips that can never select anything are refused.
func (k *checker) gjsonPath(key, p string) {
	if p == "" {
		return
	}
	if why := gjsonProblem(p); why != "" {
		k.report(key, p, "invalid gjson path %q: %s; write paths such as response.predictions.0.label", p, why)
	}
}

// gjsonProblem returns what is wrong with p, or "". Dots, brackets and
// quotes inside a query such as #(name=="a.b") or an escaped \. are part
// of a key, not structure.
func gjsonProblem(p string) string {
	if strings.TrimSpace(p) != p {
		return "leading or trailing space"
	}
	if p[0] == '.' {
		return "it starts with a dot"
	}
	var open []byte
	quoted := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			i++
		case quoted:
			quoted = c != '"'
		case c == '"':
			quoted = true
		case c == '(' || c == '[' || c == '{':
			open = append(open, c)
		case c == ')' || c == ']' || c == '}':
			if len(open) == 0 || open[len(open)-1] != opener(c) {
				return fmt.Sprintf("unbalanced %q", c)
			}
			open = open[:len(open)-1]
		case c == '.' && len(open) == 0:
			switch {
			case i == len(p)-1:
				return "it ends with a dot"
			case p[i+1] == '.':
				return "an empty key between dots"
			}
		}
	}
	switch {
	case quoted:
		return "an unterminated quote"
	case len(open) > 0:
		return fmt.Sprintf("unbalanced %q", open[len(open)-1])
	}
	return ""
}

func opener(c byte) byte {
	switch c {
	case ')':
		return '('
	case ']':
		return '['
	}
	return '{'
}

// validAttribute reports whether s can name an attribute: it becomes a
// key of the record's attributes object and a field in rules.
func validAttribute(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// orList writes "a, b or c".
func orList(list []string) string {
	if len(list) < 2 {
		return strings.Join(list, "")
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}
