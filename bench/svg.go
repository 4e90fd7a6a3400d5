package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Plot geometry, in SVG user units.
const (
	panelW, panelH = 360, 270
	plotL, plotR   = 58, 26 // margins of the plot area inside a panel
	plotT, plotB   = 28, 46
	headH          = 58 // title and legend above the panels
	panelsPerRow   = 3
)

// palette holds line colours, told apart also in grey print.
var palette = []string{"#1f5fa8", "#d1495b", "#2e933c", "#edae49", "#6f4a8e", "#00798c", "#8c564b", "#444444"}

// WriteSVG writes a self-contained SVG plot of latency by percentile: one
// panel per rate, one line per target, the percentile on a log(1/(1-q))
// axis from the 50th to the 99.99th (further if the counts resolve it) and
// latency in milliseconds on a log axis shared by the panels.
func (r *Report) WriteSVG(w io.Writer) error {
	var b bytes.Buffer
	targets := r.plotTargets()
	cols := max(1, min(len(r.Steps), panelsPerRow))
	rows := max(1, (len(r.Steps)+cols-1)/cols)
	width, height := cols*panelW, headH+rows*panelH
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	title := "Latency by percentile, open loop, from scheduled send to end of answer"
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(title))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", plotL, esc(title))
	x := float64(plotL)
	for i, name := range targets {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="38" x2="%.1f" y2="38" stroke="%s" stroke-width="2.5"/>`, x, x+18, palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%.1f" y="42">%s</text>`+"\n", x+22, esc(name))
		x += 22 + 7*float64(len(name)) + 18
	}

	xmax := r.xMax()
	ylo, yhi, ok := r.yRange()
	for i, s := range r.Steps {
		ox, oy := (i%cols)*panelW, headH+(i/cols)*panelH
		writePanel(&b, s, targets, ox, oy, xmax, ylo, yhi, ok)
	}
	if len(r.Steps) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no steps measured</text>`+"\n", plotL, headH+panelH/2)
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// plotTargets lists the targets in the order of the options, then any other
// target a step names, so that each keeps its colour across panels.
func (r *Report) plotTargets() []string {
	var names []string
	seen := make(map[string]bool)
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, t := range r.Options.Targets {
		add(t.Name)
	}
	for _, s := range r.Steps {
		for _, res := range s.Results {
			add(res.Target)
		}
	}
	return names
}

// xMax is the right end of the percentile axis, in decades of 1/(1-q): at
// least 4 (the 99.99th), at most 5.
func (r *Report) xMax() float64 {
	top := 4.0
	for _, s := range r.Steps {
		for _, res := range s.Results {
			if n := len(res.Curve); n > 0 {
				top = max(top, math.Ceil(-math.Log10(1-res.Curve[n-1].Q)-1e-6))
			}
		}
	}
	return min(top, 5)
}

// yRange is the latency range in ms of every curve, widened to 1-2-5 ticks.
func (r *Report) yRange() (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), 0
	for _, s := range r.Steps {
		for _, res := range s.Results {
			for _, p := range res.Curve {
				v := toMS(p.Latency)
				if v > 0 {
					lo, hi = min(lo, v), max(hi, v)
				}
			}
		}
	}
	if hi == 0 {
		return 0, 0, false
	}
	lo, hi = tickBelow(lo), tickAbove(hi)
	if hi <= lo {
		hi = tickAbove(lo * 1.01)
	}
	return lo, hi, true
}

func toMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ticks are the 1-2-5 values of each decade.
var tickMantissas = []float64{1, 2, 5}

func tickBelow(v float64) float64 {
	e := math.Floor(math.Log10(v))
	for i := len(tickMantissas) - 1; i >= 0; i-- {
		if t := tickMantissas[i] * math.Pow(10, e); t <= v*(1+1e-9) {
			return t
		}
	}
	return math.Pow(10, e)
}

func tickAbove(v float64) float64 {
	e := math.Floor(math.Log10(v))
	for _, m := range tickMantissas {
		if t := m * math.Pow(10, e); t >= v*(1-1e-9) {
			return t
		}
	}
	return math.Pow(10, e+1)
}

// yTicks lists the 1-2-5 values from lo to hi; with many decades, only the
// powers of ten.
func yTicks(lo, hi float64) []float64 {
	var out []float64
	decades := math.Log10(hi / lo)
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range tickMantissas {
			if decades > 3 && m != 1 {
				continue
			}
			t := m * math.Pow(10, e)
			if t >= lo*(1-1e-9) && t <= hi*(1+1e-9) {
				out = append(out, t)
			}
		}
	}
	return out
}

var percentileTicks = []struct {
	x     float64
	label string
}{{math.Log10(2), "50"}, {1, "90"}, {2, "99"}, {3, "99.9"}, {4, "99.99"}, {5, "99.999"}}

func writePanel(b *bytes.Buffer, s Step, targets []string, ox, oy int, xmax, ylo, yhi float64, ok bool) {
	left, top := float64(ox+plotL), float64(oy+plotT)
	w, h := float64(panelW-plotL-plotR), float64(panelH-plotT-plotB)
	xmin := math.Log10(2)
	px := func(x float64) float64 { return left + (x-xmin)/(xmax-xmin)*w }
	py := func(v float64) float64 {
		return top + h - (math.Log10(v)-math.Log10(ylo))/(math.Log10(yhi)-math.Log10(ylo))*h
	}

	fmt.Fprintf(b, `<g><text x="%.1f" y="%.1f" font-weight="bold">%d requests/s</text>`+"\n", left, top-10, s.Rate)
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999999"/>`+"\n", left, top, w, h)
	for _, t := range percentileTicks {
		if t.x > xmax+1e-9 {
			continue
		}
		x := px(t.x)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e3e3"/>`, x, top, x, top+h)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+h+14, t.label)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">percentile</text>`+"\n", left+w/2, top+h+32)
	if !ok {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">no answers</text></g>`+"\n", left+w/2, top+h/2)
		return
	}
	for _, v := range yTicks(ylo, yhi) {
		y := py(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e3e3"/>`, left, y, left+w, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-4, y+4, strconv.FormatFloat(v, 'g', -1, 64))
	}
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">latency, ms</text>`+"\n", left-42, top+h/2)

	for _, res := range s.Results {
		ci := 0
		for i, n := range targets {
			if n == res.Target {
				ci = i
			}
		}
		var pts strings.Builder
		for _, p := range res.Curve {
			x := -math.Log10(1 - p.Q)
			if x > xmax+1e-9 {
				break
			}
			v := min(max(toMS(p.Latency), ylo), yhi)
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(x), py(v))
		}
		if pts.Len() == 0 {
			continue
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.8" stroke-linejoin="round" points="%s"><title>%s</title></polyline>`+"\n",
			palette[ci%len(palette)], strings.TrimSpace(pts.String()), esc(res.Target))
	}
	b.WriteString("</g>\n")
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
