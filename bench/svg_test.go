package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// svgElements parses an SVG document and returns its elements by name.
func svgElements(t *testing.T, doc []byte) map[string][]xml.StartElement {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	els := make(map[string][]xml.StartElement)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse as XML: %v\n%s", err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok {
			els[se.Name.Local] = append(els[se.Name.Local], se)
		}
	}
	return els
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func TestWriteSVG(t *testing.T) {
	r := syntheticReport()
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	els := svgElements(t, b.Bytes())
	if root := els["svg"]; len(root) != 1 || root[0].Name.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root %v, want one svg element in the SVG namespace", root)
	}
	if n := len(els["script"]); n != 0 {
		t.Errorf("%d scripts, want none", n)
	}
	// One line per target in each of the two panels.
	lines := els["polyline"]
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6", len(lines))
	}
	width, _ := strconv.ParseFloat(attr(els["svg"][0], "width"), 64)
	height, _ := strconv.ParseFloat(attr(els["svg"][0], "height"), 64)
	colours := make(map[string]bool)
	for _, l := range lines {
		colours[attr(l, "stroke")] = true
		pts := strings.Fields(attr(l, "points"))
		if len(pts) < 10 {
			t.Errorf("line of %d points", len(pts))
		}
		prevY := height
		for _, p := range pts {
			xs, ys, _ := strings.Cut(p, ",")
			x, errX := strconv.ParseFloat(xs, 64)
			y, errY := strconv.ParseFloat(ys, 64)
			if errX != nil || errY != nil || x < 0 || x > width || y < 0 || y > height {
				t.Fatalf("point %q outside the %vx%v picture", p, width, height)
			}
			// Latency grows with the percentile, so the line rises.
			if y > prevY+0.01 {
				t.Errorf("line falls at %q", p)
			}
			prevY = y
		}
	}
	if len(colours) != 3 {
		t.Errorf("%d line colours, want one per target", len(colours))
	}
	text := b.String()
	for _, want := range []string{">500 requests/s<", ">2000 requests/s<", ">99.99<", ">auditgate &lt;&amp;&gt;<", ">latency, ms<"} {
		if !strings.Contains(text, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestWriteSVGEmpty(t *testing.T) {
	for _, r := range []*Report{
		{},
		{Steps: []Step{{Rate: 100, Results: []Result{{Target: "direct"}}}}},
	} {
		var b bytes.Buffer
		if err := r.WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
		els := svgElements(t, b.Bytes())
		if len(els["polyline"]) != 0 {
			t.Errorf("lines drawn without data")
		}
	}
}
