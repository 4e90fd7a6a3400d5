package capture

import "net/netip"

// detHexThenColon says s[i:] starts with one to four hex digits and a colon,
// the only way an IPv6 address starting at a word can begin.
func detHexThenColon(s []byte, i int) bool {
	j := i
	for j < len(s) && j-i < 5 && detIs(s[j], ccHex) {
		j++
	}
	return j > i && j-i <= 4 && j < len(s) && s[j] == ':'
}

// detIPv4 matches a dotted quad of decimal octets (0-255, no leading zeros).
func detIPv4(s []byte, i int) int {
	j := i
	for part := 0; part < 4; part++ {
		if part > 0 {
			if detByteAt(s, j) != '.' {
				return 0
			}
			j++
		}
		e := detRun(s, j, ccDigit)
		if e == j || e-j > 3 || e-j > 1 && s[j] == '0' {
			return 0
		}
		v := 0
		for _, c := range s[j:e] {
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return 0
		}
		j = e
	}
	if !detRightOK(s, j) {
		return 0
	}
	return j
}

// detIPv6 matches an IPv6 address starting at i, validated by net/netip.
// The cheap shape checks come first so that times (10:30:00) and MAC
// addresses never reach the parser.
func detIPv6(s []byte, i int) int {
	const maxLen = 45 // the longest textual IPv6 address
	e := i
	for e < len(s) && (detIs(s[e], ccHex) || s[e] == ':' || s[e] == '.') {
		e++
		if e-i > maxLen {
			return 0
		}
	}
	if c := detByteAt(s, e); detIs(c, ccAlnum) || c == '_' {
		return 0
	}
	for e > i && s[e-1] == '.' {
		e--
	}
	if e-i >= 2 && s[e-1] == ':' && s[e-2] != ':' {
		e-- // a colon ending a sentence or a label
	}
	c := s[i:e]
	colons, groups, glen := 0, 0, 0
	digit, dotted, double := false, false, false
	for k, ch := range c {
		switch ch {
		case ':':
			colons++
			double = double || k > 0 && c[k-1] == ':'
			if glen > 0 {
				groups++
			}
			glen = 0
		case '.':
			dotted = true
			glen++
		default:
			digit = digit || detDigit(ch)
			glen++
		}
	}
	if glen > 0 {
		groups++
	}
	if colons < 2 || groups < 2 || !digit {
		return 0
	}
	if !double && colons != 7 && !(dotted && colons == 6) {
		return 0
	}
	a, err := netip.ParseAddr(string(c))
	if err != nil || !a.Is6() {
		return 0
	}
	return e
}
