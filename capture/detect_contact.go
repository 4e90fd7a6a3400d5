package capture

import "bytes"

// detEmails appends every email address in s.
func detEmails(s []byte, ms []detMatch) []detMatch {
	for from := 0; from < len(s); {
		k := bytes.IndexByte(s[from:], '@')
		if k < 0 {
			break
		}
		at := from + k
		from = at + 1
		a := at
		for a > 0 && detIs(s[a-1], ccLocal) {
			a--
		}
		for a < at && s[a] == '.' {
			a++
		}
		local := s[a:at]
		if len(local) == 0 || len(local) > 64 || local[len(local)-1] == '.' || bytes.Contains(local, []byte("..")) {
			continue
		}
		e := detEmailDomain(s, at+1)
		if e == 0 {
			continue
		}
		ms = append(ms, detMatch{a, e, detEmail})
		from = e
	}
	return ms
}

// detEmailDomain returns the end of the domain starting at i, or 0.
func detEmailDomain(s []byte, i int) int {
	e := detRun(s, i, ccDomain)
	for e > i && (s[e-1] == '.' || s[e-1] == '-') {
		e--
	}
	if e-i > 253 {
		return 0
	}
	labels, start := 0, i // start: of the current label, finally the last one
	for j := i; j <= e; j++ {
		if j < e && s[j] != '.' {
			continue
		}
		l := s[start:j]
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return 0
		}
		labels++
		if j < e {
			start = j + 1
		}
	}
	if labels < 2 {
		return 0
	}
	tld := s[start:e]
	if bytes.HasPrefix(tld, []byte("xn--")) {
		return e
	}
	if len(tld) < 2 || detRun(tld, 0, ccUpper|ccLower) != len(tld) {
		return 0
	}
	return e
}

// detNAPhone matches ddd-ddd-dddd or ddd.ddd.dddd, optionally after "1-" or
// "1." with the same separator.
func detNAPhone(s []byte, i int) int {
	if i+12 > len(s) {
		return 0
	}
	sep := s[i+3]
	if s[i+1] == '-' || s[i+1] == '.' {
		if s[i] != '1' || i+14 > len(s) {
			return 0
		}
		sep = s[i+1]
		i += 2
		if s[i+3] != sep {
			return 0
		}
	}
	t := s[i : i+12]
	if t[7] != sep || !detAllDigits(t[0:3]) || !detAllDigits(t[4:7]) || !detAllDigits(t[8:12]) {
		return 0
	}
	if !detRightOK(s, i+12) {
		return 0
	}
	return i + 12
}

// detParenPhone matches (ddd) ddd-dddd; i is the first digit after "(".
func detParenPhone(s []byte, i int) int {
	j := i + 3
	if detByteAt(s, j) != ')' {
		return 0
	}
	j++
	if detByteAt(s, j) == ' ' {
		j++
	}
	if j+8 > len(s) {
		return 0
	}
	t := s[j : j+8]
	if !detAllDigits(t[0:3]) || (t[3] != '-' && t[3] != '.' && t[3] != ' ') || !detAllDigits(t[4:8]) {
		return 0
	}
	if !detRightOK(s, j+8) {
		return 0
	}
	return j + 8
}

// detE164 matches the digits of an international number; i is the first
// digit after "+".
func detE164(s []byte, i int) int {
	digits, j, end := 0, i, i
	for j < len(s) {
		if detDigit(s[j]) {
			digits++
			j++
			end = j
			continue
		}
		k := j
		for k < len(s) && k-j < 2 && detPhoneSep(s[k]) {
			k++
		}
		if k == j || !detDigit(detByteAt(s, k)) {
			break
		}
		j = k
	}
	if digits < 8 || digits > 15 || !detRightOK(s, end) {
		return 0
	}
	return end
}

func detPhoneSep(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')'
}
