package capture

import "slices"

// Detector names (also the Redaction.Type values).
const (
	DetectEmail  = "email"
	DetectPhone  = "phone"
	DetectCard   = "card"   // payment card numbers, Luhn-checked
	DetectSSN    = "ssn"    // US social security numbers
	DetectIBAN   = "iban"   // mod-97 checked
	DetectIP     = "ip"     // IPv4 and IPv6 addresses
	DetectSecret = "secret" // cloud access keys, private keys, API tokens
)

// AllDetectors lists every detector, the default set.
var AllDetectors = []string{DetectEmail, DetectPhone, DetectCard, DetectSSN, DetectIBAN, DetectIP, DetectSecret}

// The matching rules, where a choice had to be made:
//
//   - email: ASCII local@domain with local-part characters [A-Za-z0-9._%+-]
//     (at most 64, no leading, trailing or doubled dot) and a domain of at
//     least two dot-separated labels whose last label is letters only (or
//     punycode xn--). "user@localhost" and "pkg@1.2.3" are not emails.
//   - phone: "+" and 8 to 15 digits (first digit 1-9) with at most two
//     separators from " -.()" between digits; or the North-American forms
//     ddd-ddd-dddd and ddd.ddd.dddd (optionally after "1-" or "1."),
//     (ddd) ddd-dddd and (ddd)ddd-dddd. Space-only groups without "+" are
//     not phones.
//   - card: a digit run of 13-19 digits, or groups separated by one space
//     or one dash (the same one throughout), with the length its brand
//     allows (Visa 13/16/19, Mastercard 16, Amex 15, Discover and JCB 16-19,
//     Diners 14-19) and a valid Luhn digit. When a space-grouped run ends
//     in one extra group of 1-3 digits (an expiry, a CVC), its leading
//     4-4-4-4(-3) or 4-6-5 groups are tried.
//   - iban: upper-case only, a country of the IBAN registry with its exact
//     length, compact or in groups of four separated by single spaces.
//   - ip: IPv6 needs at least two non-empty groups and a decimal digit, so
//     "::1", "a::b" and C++ scopes are left alone.
//   - secret: a PEM private key block without its END line is redacted to
//     the end of the string. Keys of the sk-, Bearer and similar shapes must
//     mix at least two of lower case, upper case and digits, so hyphenated
//     words are not tokens. Stripe test keys count as secrets too.
//
// Every numeric detector rejects a candidate glued to a longer number
// (a letter or digit next to it, or "1.", ".5", "-5" around it), which keeps
// versions, dates, UUIDs and hashes out.

// Detector indexes, also the bit numbers of a detSet.
const (
	detEmail uint8 = iota
	detPhone
	detCard
	detSSN
	detIBAN
	detIP
	detSecret
	detCount
)

var detNames = [detCount]string{DetectEmail, DetectPhone, DetectCard, DetectSSN, DetectIBAN, DetectIP, DetectSecret}

// detSet is a set of detectors, one bit per detector index.
type detSet uint8

func (m detSet) has(d uint8) bool { return m&(1<<d) != 0 }

// detMatch is one value found in a string: s[start:end].
type detMatch struct {
	start, end int
	kind       uint8
}

// Character classes.
const (
	ccDigit  = 1 << iota
	ccUpper  // A-Z
	ccLower  // a-z
	ccHex    // 0-9 a-f A-F
	ccLocal  // an email local part
	ccDomain // an email domain
	ccURL64  // base64url: A-Z a-z 0-9 _ -
	ccStd64  // base64: A-Z a-z 0-9 + /
	ccToken  // a bearer token: base64url and . ~ + / =

	ccAlnum = ccDigit | ccUpper | ccLower
)

var detClass = func() (t [256]uint16) {
	for c := 0; c < 256; c++ {
		var v uint16
		switch {
		case '0' <= c && c <= '9':
			v = ccDigit | ccHex
		case 'A' <= c && c <= 'Z':
			v = ccUpper
		case 'a' <= c && c <= 'z':
			v = ccLower
		}
		if v&(ccUpper|ccLower) != 0 && (c|0x20) <= 'f' {
			v |= ccHex
		}
		if v != 0 {
			v |= ccLocal | ccDomain | ccURL64 | ccStd64 | ccToken
		}
		switch c {
		case '.', '%', '+', '_', '-':
			v |= ccLocal
		}
		switch c {
		case '.', '-':
			v |= ccDomain
		}
		switch c {
		case '_', '-':
			v |= ccURL64 | ccToken
		case '+', '/':
			v |= ccStd64 | ccToken
		case '.', '~', '=':
			v |= ccToken
		}
		t[c] = v
	}
	return t
}()

func detIs(c byte, class uint16) bool { return detClass[c]&class != 0 }

func detDigit(c byte) bool { return '0' <= c && c <= '9' }

// detRun returns the end of the run of class bytes starting at i.
func detRun(s []byte, i int, class uint16) int {
	for i < len(s) && detClass[s[i]]&class != 0 {
		i++
	}
	return i
}

// detRunMax is detRun looking at no more than max+1 bytes, enough to tell
// a run longer than max. Token detectors use it so that a string of many
// token prefixes ("sk-sk-sk-...") costs linear time.
func detRunMax(s []byte, i int, class uint16, max int) int {
	end := min(len(s), i+max+1)
	for i < end && detClass[s[i]]&class != 0 {
		i++
	}
	return i
}

// detect appends to ms the matches of the detectors in set in s, sorted and
// not overlapping. keyHint says s is the value of an object member whose
// key names an AWS secret access key.
func detect(set detSet, s []byte, keyHint bool, ms []detMatch) []detMatch {
	if set == 0 || len(s) < 4 {
		return ms
	}
	if keyHint && set.has(detSecret) {
		if a, b := detTrimSpace(s); b-a == 40 && detRun(s, a, ccStd64) == b {
			return append(ms, detMatch{a, b, detSecret})
		}
	}
	n0 := len(ms)
	ms = detWords(set, s, ms)
	n1 := len(ms)
	if set.has(detEmail) {
		ms = detEmails(s, ms)
	}
	if set.has(detSecret) {
		ms = detPEM(s, ms)
	}
	if len(ms) > n1 && len(ms)-n0 > 1 {
		ms = append(ms[:n0], detResolve(ms[n0:])...)
	}
	return ms
}

// detResolve sorts matches by start (longest first on a tie) and drops
// those overlapping an earlier one.
func detResolve(ms []detMatch) []detMatch {
	slices.SortFunc(ms, func(a, b detMatch) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	out := ms[:0]
	for _, m := range ms {
		if len(out) > 0 && m.start < out[len(out)-1].end {
			continue
		}
		out = append(out, m)
	}
	return out
}

func detTrimSpace(s []byte) (int, int) {
	a, b := 0, len(s)
	for a < b && (s[a] == ' ' || s[a] == '\t') {
		a++
	}
	for b > a && (s[b-1] == ' ' || s[b-1] == '\t') {
		b--
	}
	return a, b
}

// detWords visits the start of every alphanumeric word and tries the
// detectors that can begin there, chosen by its first byte. Most words fail
// on their first one or two bytes, so the cost is one table lookup a byte.
func detWords(set detSet, s []byte, ms []detMatch) []detMatch {
	n := len(s)
	var no detSkips
	for i := 0; i < n; {
		c := s[i]
		cl := detClass[c]
		if cl&ccAlnum == 0 {
			if c == ':' && i+1 < n && s[i+1] == ':' && set.has(detIP) && (i == 0 || !detIs(s[i-1], ccAlnum) && s[i-1] != ':' && s[i-1] != '.') {
				if e := detIPv6(s, i); e > 0 {
					ms = append(ms, detMatch{i, e, detIP})
					i = e
					continue
				}
			}
			i++
			continue
		}
		var m detMatch
		switch {
		case cl&ccDigit != 0:
			m = detNumeric(set, s, i)
		case cl&ccUpper != 0:
			m = detUpper(set, s, i)
		default:
			m = detLower(set, s, i, &no)
		}
		if m.end > 0 {
			ms = append(ms, m)
			i = m.end
			continue
		}
		i = detRun(s, i+1, ccAlnum)
	}
	return ms
}

// detLeftOK says a number starting at i is not the tail of a longer one
// ("1.5", "12-34").
func detLeftOK(s []byte, i int) bool {
	if i == 0 {
		return true
	}
	p := s[i-1]
	if detIs(p, ccAlnum) {
		return false
	}
	return !((p == '.' || p == '-') && i >= 2 && detDigit(s[i-2]))
}

// detRightOK says a value ending at j is not followed by more of a word or
// number.
func detRightOK(s []byte, j int) bool {
	if j >= len(s) {
		return true
	}
	c := s[j]
	if detIs(c, ccAlnum) {
		return false
	}
	return !((c == '.' || c == '-') && j+1 < len(s) && detDigit(s[j+1]))
}

func detNumeric(set detSet, s []byte, i int) detMatch {
	if !detLeftOK(s, i) {
		return detMatch{}
	}
	n := len(s)
	j := detRun(s, i, ccDigit)
	run := j - i
	var next, prev byte
	if j < n {
		next = s[j]
	}
	if i > 0 {
		prev = s[i-1]
	}
	phone := set.has(detPhone)
	if phone && prev == '+' && s[i] != '0' && (i < 2 || !detIs(s[i-2], ccAlnum)) {
		if e := detE164(s, i); e > 0 {
			return detMatch{i - 1, e, detPhone}
		}
	}
	if phone && prev == '(' && run == 3 && (i < 2 || !detIs(s[i-2], ccAlnum)) {
		if e := detParenPhone(s, i); e > 0 {
			return detMatch{i - 1, e, detPhone}
		}
	}
	switch next {
	case '-', ' ', '.':
		if run == 3 && next != '.' && set.has(detSSN) {
			if e := detSSNAt(s, i); e > 0 {
				return detMatch{i, e, detSSN}
			}
		}
		if phone && next != ' ' && (run == 3 || run == 1 && s[i] == '1') {
			if e := detNAPhone(s, i); e > 0 {
				return detMatch{i, e, detPhone}
			}
		}
		if next == '.' && run <= 3 && set.has(detIP) {
			if e := detIPv4(s, i); e > 0 {
				return detMatch{i, e, detIP}
			}
		}
		if next != '.' && run == 4 && set.has(detCard) {
			if e := detCardAt(s, i); e > 0 {
				return detMatch{i, e, detCard}
			}
		}
	}
	if run >= 13 && run <= 19 && set.has(detCard) && detRightOK(s, j) && detCardValid(s[i:j]) {
		return detMatch{i, j, detCard}
	}
	if set.has(detIP) && detHexThenColon(s, i) {
		if e := detIPv6(s, i); e > 0 {
			return detMatch{i, e, detIP}
		}
	}
	return detMatch{}
}

func detUpper(set detSet, s []byte, i int) detMatch {
	if set.has(detSecret) {
		switch s[i] {
		case 'A':
			if e := detAWSKeyID(s, i); e > 0 {
				return detMatch{i, e, detSecret}
			}
			if e := detPrefixed(s, i, "AIza", ccURL64, 35, 35, false); e > 0 {
				return detMatch{i, e, detSecret}
			}
		case 'B':
			if a, e := detBearer(s, i); e > 0 {
				return detMatch{a, e, detSecret}
			}
		case 'S':
			if a, e := detAWSSecretCtx(s, i); e > 0 {
				return detMatch{a, e, detSecret}
			}
		}
	}
	if set.has(detIBAN) {
		if e := detIBANAt(s, i); e > 0 {
			return detMatch{i, e, detIBAN}
		}
	}
	if set.has(detIP) && detHexThenColon(s, i) {
		if e := detIPv6(s, i); e > 0 {
			return detMatch{i, e, detIP}
		}
	}
	return detMatch{}
}

func detLower(set detSet, s []byte, i int, no *detSkips) detMatch {
	if set.has(detSecret) {
		if a, e := detLowerSecret(s, i, no); e > 0 {
			return detMatch{a, e, detSecret}
		}
	}
	if set.has(detIP) && detHexThenColon(s, i) {
		if e := detIPv6(s, i); e > 0 {
			return detMatch{i, e, detIP}
		}
	}
	return detMatch{}
}

func detByteAt(s []byte, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

func detAllDigits(s []byte) bool {
	for _, c := range s {
		if !detDigit(c) {
			return false
		}
	}
	return true
}
