package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// unlimited is what the gateway's options take as "no limit" (any negative
// value); one fixed value keeps decoded configs comparable.
const unlimited = -1

// positiveDuration decodes a duration that must be above zero: in the
// gateway's options zero means the default, so a written 0 would be
// silently ignored.
func (d *decoder) positiveDuration(n *yaml.Node, key string, dst *time.Duration) {
	v, ok := d.scalar(n, key, "a duration")
	if !ok {
		return
	}
	line := resolve(n).Line
	t, err := time.ParseDuration(v)
	switch {
	case err != nil:
		d.invalid(line, key, "invalid duration %q: use a Go duration such as 10s or 2m", v)
		return
	case t < 0:
		d.invalid(line, key, "negative duration %q: use a positive duration such as 10s", v)
		return
	case t == 0:
		d.invalid(line, key, "zero duration %q: use a positive duration such as 10s, or remove the key for the default", v)
		return
	}
	*dst = t
	d.set(n, key, t)
}

// limitDuration decodes a duration that may also be "unlimited"; 0 means
// unlimited too, as a zero timeout does in most servers' configuration.
func (d *decoder) limitDuration(n *yaml.Node, key string, dst *time.Duration) {
	v, ok := d.scalar(n, key, "a duration")
	if !ok {
		return
	}
	line := resolve(n).Line
	t, err := time.ParseDuration(v)
	switch {
	case v == "unlimited":
		t = unlimited
	case err != nil:
		d.invalid(line, key, "invalid duration %q: use a Go duration such as 10s or 2m, or unlimited", v)
		return
	case t < 0:
		d.invalid(line, key, "negative duration %q: use a positive duration such as 10s, or unlimited", v)
		return
	case t == 0:
		t = unlimited
	}
	*dst = t
	d.set(n, key, t)
}

// sizeUnits are the accepted size suffixes; both decimal and binary units
// exist because model APIs document limits in both.
var sizeUnits = map[string]int64{
	"B":   1,
	"KB":  1000,
	"MB":  1000 * 1000,
	"GB":  1000 * 1000 * 1000,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
}

var errSizeRange = errors.New("size out of range")

// parseSize parses a byte count such as "1048576", "64MiB" or "10 MB".
func parseSize(s string) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, errSizeRange
	}
	unit := strings.TrimPrefix(s[i:], " ")
	if unit == "" {
		return n, nil
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, strconv.ErrSyntax
	}
	if n > math.MaxInt64/mult {
		return 0, errSizeRange
	}
	return n * mult, nil
}

// size decodes a positive byte count, or the word none (if not "") as
// unlimited. maxVal bounds the result for fields narrower than int64.
func (d *decoder) size(n *yaml.Node, key, word, zeroHint string, maxVal int64, dst func(int64)) {
	v, ok := d.scalar(n, key, "a size")
	if !ok {
		return
	}
	line := resolve(n).Line
	if word != "" && v == word {
		dst(unlimited)
		d.set(n, key, unlimited)
		return
	}
	b, err := parseSize(v)
	switch {
	case errors.Is(err, errSizeRange) || b > maxVal:
		d.invalid(line, key, "size %q is too large: use at most %d bytes", v, maxVal)
		return
	case err != nil:
		hint := ""
		if word != "" {
			hint = ", or " + word
		}
		d.invalid(line, key, "invalid size %q: use bytes or a whole number with B, KB, MB, GB, KiB, MiB or GiB, such as 64MiB%s", v, hint)
		return
	case b == 0:
		d.invalid(line, key, "zero size: %s", zeroHint)
		return
	}
	dst(b)
	d.set(n, key, b)
}
