package capture

import (
	"bytes"
	"net/netip"
	"slices"
)

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

// detHexThenColon says s[i:] starts with one to four hex digits and a colon,
// the only way an IPv6 address starting at a word can begin.
func detHexThenColon(s []byte, i int) bool {
	j := i
	for j < len(s) && j-i < 5 && detIs(s[j], ccHex) {
		j++
	}
	return j > i && j-i <= 4 && j < len(s) && s[j] == ':'
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

// detSkips are positions before which a token shape cannot start because
// one starting earlier in the same run failed, and a later one would fail
// the same way. They keep strings like "eyJ-eyJ-eyJ-..." linear.
type detSkips struct {
	jwt, tok int
}

// detLowerSecret tries the token shapes that begin with a lower-case letter.
func detLowerSecret(s []byte, i int, no *detSkips) (int, int) {
	switch s[i] {
	case 'b':
		return detBearer(s, i)
	case 'e':
		if i < no.jwt {
			return 0, 0
		}
		e, h := detJWT(s, i)
		no.jwt = h
		return i, e
	case 'g':
		if bytes.HasPrefix(s[i:], []byte("github_pat_")) {
			return i, detPrefixed(s, i, "github_pat_", ccURL64, 22, 255, false)
		}
		if i+4 <= len(s) && s[i+1] == 'h' && s[i+3] == '_' {
			switch s[i+2] {
			case 'p', 'o', 'u', 's', 'r':
				if e := detRunMax(s, i+4, ccAlnum, 255); e-(i+4) >= 36 && e-(i+4) <= 255 && detTokenEnd(s, e) {
					return i, e
				}
			}
		}
	case 'r', 's':
		if e := detStripe(s, i); e > 0 {
			return i, e
		}
		if s[i] == 's' {
			if i >= no.tok && bytes.HasPrefix(s[i:], []byte("sk-")) {
				if e := detPrefixed(s, i, "sk-", ccURL64, 20, 255, true); e > 0 {
					return i, e
				}
				no.tok = detRun(s, i, ccURL64)
			}
			return detAWSSecretCtx(s, i)
		}
	case 'x':
		if i >= no.tok && i+5 <= len(s) && s[i+1] == 'o' && s[i+2] == 'x' && s[i+4] == '-' {
			switch s[i+3] {
			case 'a', 'b', 'p', 'r', 's':
				if e := detRunMax(s, i+5, ccURL64, 255); e-(i+5) >= 10 && e-(i+5) <= 255 && detHasDigit(s[i+5:e]) && detTokenEnd(s, e) {
					return i, e
				}
				no.tok = detRun(s, i, ccURL64)
			}
		}
	}
	return 0, 0
}

func detHasDigit(s []byte) bool {
	for _, c := range s {
		if detDigit(c) {
			return true
		}
	}
	return false
}

// detTokenEnd says a token ending at e is not followed by more token bytes.
func detTokenEnd(s []byte, e int) bool {
	return e >= len(s) || !detIs(s[e], ccURL64)
}

// detMixed says s has at least two of: lower case, upper case, digits.
func detMixed(s []byte) bool {
	var seen uint16
	for _, c := range s {
		seen |= detClass[c] & ccAlnum
	}
	k := 0
	for _, b := range [...]uint16{ccDigit, ccUpper, ccLower} {
		if seen&b != 0 {
			k++
		}
	}
	return k >= 2
}

// detPrefixed matches prefix and then min to max bytes of class, ending at
// a byte outside ccURL64; mixed requires detMixed of the body.
func detPrefixed(s []byte, i int, prefix string, class uint16, min, max int, mixed bool) int {
	if !bytes.HasPrefix(s[i:], []byte(prefix)) {
		return 0
	}
	a := i + len(prefix)
	e := detRunMax(s, a, class, max)
	if e-a < min || e-a > max || !detTokenEnd(s, e) {
		return 0
	}
	if mixed && !detMixed(s[a:e]) {
		return 0
	}
	return e
}

var detAWSPrefixes = [...]string{"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "APKA", "ABIA", "ACCA"}

// detAWSKeyID matches an AWS access key id: a known prefix and 16 upper-case
// letters or digits.
func detAWSKeyID(s []byte, i int) int {
	if i+20 > len(s) {
		return 0
	}
	p := s[i : i+4]
	for _, k := range detAWSPrefixes {
		if string(p) == k {
			e := detRunMax(s, i+4, ccUpper|ccDigit, 16)
			if e-i == 20 && !detIs(detByteAt(s, e), ccAlnum) {
				return e
			}
			return 0
		}
	}
	return 0
}

func detByteAt(s []byte, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// detStripe matches sk_live_, rk_live_, sk_test_ and rk_test_ keys.
func detStripe(s []byte, i int) int {
	if i+8 > len(s) || s[i+1] != 'k' || s[i+2] != '_' {
		return 0
	}
	if t := s[i+3 : i+8]; string(t) != "live_" && string(t) != "test_" {
		return 0
	}
	e := detRunMax(s, i+8, ccAlnum, 255)
	if e-(i+8) < 16 || e-(i+8) > 255 || !detTokenEnd(s, e) {
		return 0
	}
	return e
}

// detJWT matches header.payload.signature where header and payload are
// base64url JSON objects (both begin "eyJ"), and returns its end, or 0 and
// the end of the header's run: a JWT starting inside that run would fail
// the same way.
// The signature may be empty (an unsigned token still leaks its claims).
func detJWT(s []byte, i int) (end, no int) {
	if !bytes.HasPrefix(s[i:], []byte("eyJ")) {
		return 0, 0
	}
	h := detRun(s, i+3, ccURL64)
	if detByteAt(s, h) != '.' || !bytes.HasPrefix(s[h+1:], []byte("eyJ")) {
		return 0, h
	}
	e := detRun(s, h+4, ccURL64)
	if detByteAt(s, e) != '.' {
		return 0, h
	}
	return detRun(s, e+1, ccURL64), 0
}

// detBearer matches "Bearer <token>" (any case) and returns the token's span.
func detBearer(s []byte, i int) (int, int) {
	const w = "bearer"
	if i+len(w)+21 > len(s) {
		return 0, 0
	}
	for k := 0; k < len(w); k++ {
		if s[i+k]|0x20 != w[k] {
			return 0, 0
		}
	}
	a := i + len(w)
	if s[a] != ' ' && s[a] != '\t' {
		return 0, 0
	}
	for a < len(s) && (s[a] == ' ' || s[a] == '\t') {
		a++
	}
	e := detRun(s, a, ccToken)
	if e-a < 20 || !detMixed(s[a:e]) {
		return 0, 0
	}
	return a, e
}

// detAWSSecretCtx matches "secret_access_key" (any case, "_" or "-" between
// the words, or none) followed by quotes, colons, equals signs or spaces and
// a 40-byte base64 value, and returns the value's span.
func detAWSSecretCtx(s []byte, i int) (int, int) {
	const w = "secretaccesskey"
	j, k := i, 0
	for j < len(s) && k < len(w) {
		c := s[j]
		if c|0x20 == w[k] {
			j++
			k++
			continue
		}
		if (c == '_' || c == '-') && (k == 6 || k == 12) {
			j++
			continue
		}
		return 0, 0
	}
	if k < len(w) {
		return 0, 0
	}
	for m := 0; j < len(s) && m < 8; j, m = j+1, m+1 {
		if c := s[j]; c != ' ' && c != '\t' && c != '"' && c != '\'' && c != ':' && c != '=' {
			break
		}
	}
	a := j
	e := detRunMax(s, a, ccStd64, 40)
	if e-a != 40 || detByteAt(s, e) == '=' {
		return 0, 0
	}
	return a, e
}

// detKeyNamesAWSSecret says an object key names an AWS secret access key
// (aws_secret_access_key, SecretAccessKey, secret-access-key, ...).
func detKeyNamesAWSSecret(key []byte) bool {
	const w = "secretaccesskey"
	k := len(w)
	for j := len(key) - 1; j >= 0 && k > 0; j-- {
		c := key[j]
		if c == '_' || c == '-' {
			continue
		}
		if c|0x20 != w[k-1] {
			return false
		}
		k--
	}
	return k == 0
}

// detPEM appends every PEM private key block in s, from its BEGIN line to
// the end of its END line (or of s, if the block is cut short).
func detPEM(s []byte, ms []detMatch) []detMatch {
	begin := []byte("-----BEGIN ")
	for from := 0; from < len(s); {
		k := bytes.Index(s[from:], begin)
		if k < 0 {
			break
		}
		a := from + k
		j := a + len(begin)
		for j < len(s) && (detIs(s[j], ccUpper) || s[j] == ' ') {
			j++
		}
		if !bytes.HasSuffix(s[a+len(begin):j], []byte("PRIVATE KEY")) || !bytes.HasPrefix(s[j:], []byte("-----")) {
			from = j
			continue
		}
		e := len(s)
		if k := bytes.Index(s[j:], []byte("-----END ")); k >= 0 {
			if t := bytes.Index(s[j+k+9:], []byte("-----")); t >= 0 {
				e = j + k + 9 + t + 5
			}
		}
		ms = append(ms, detMatch{a, e, detSecret})
		from = e
	}
	return ms
}

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

// detSSNAt matches ddd-dd-dddd or ddd dd dddd with a valid area, group and
// serial.
func detSSNAt(s []byte, i int) int {
	if i+11 > len(s) {
		return 0
	}
	t := s[i : i+11]
	sep := t[3]
	if t[6] != sep || !detAllDigits(t[0:3]) || !detAllDigits(t[4:6]) || !detAllDigits(t[7:11]) {
		return 0
	}
	area := string(t[0:3])
	if area == "000" || area == "666" || t[0] == '9' || string(t[4:6]) == "00" || string(t[7:11]) == "0000" {
		return 0
	}
	if !detRightOK(s, i+11) {
		return 0
	}
	return i + 11
}

func detAllDigits(s []byte) bool {
	for _, c := range s {
		if !detDigit(c) {
			return false
		}
	}
	return true
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

// Card layouts tried when a space-grouped run is one short group longer
// than a card.
var detCardLayouts = [...][]int{{4, 4, 4, 4, 3}, {4, 4, 4, 4}, {4, 6, 5}}

// detCardAt matches a card number in groups; i starts a 4-digit group
// followed by a space or dash.
func detCardAt(s []byte, i int) int {
	sep := s[i+4]
	var ends [8]int // the end of each group
	ng, nd, j := 0, 0, i
	whole := false // the run ended within ends
	for ng < len(ends) {
		e := detRun(s, j, ccDigit)
		nd += e - j
		ends[ng] = e
		ng++
		if nd > 19 {
			break
		}
		if detByteAt(s, e) != sep || !detDigit(detByteAt(s, e+1)) {
			whole = true
			break
		}
		j = e + 1
	}
	var d [19]byte
	if whole && nd >= 13 && detRightOK(s, ends[ng-1]) {
		if detCardValid(detCardDigits(d[:0], s[i:ends[ng-1]])) {
			return ends[ng-1]
		}
	}
	if sep != ' ' {
		return 0
	}
	for _, layout := range detCardLayouts {
		// Only a short group may follow (an expiry date, a CVC): a longer
		// one makes the whole run a number of its own.
		if ng != len(layout)+1 || !whole || ends[ng-1]-ends[ng-2]-1 >= 4 {
			continue
		}
		ok, start := true, i
		for g, want := range layout {
			if ends[g]-start != want {
				ok = false
				break
			}
			start = ends[g] + 1
		}
		e := ends[len(layout)-1]
		if ok && detCardValid(detCardDigits(d[:0], s[i:e])) {
			return e
		}
	}
	return 0
}

func detCardDigits(d, s []byte) []byte {
	for _, c := range s {
		if detDigit(c) && len(d) < cap(d) {
			d = append(d, c)
		}
	}
	return d
}

// detCardValid checks 13-19 digits for a brand prefix, the brand's length
// and the Luhn digit.
func detCardValid(d []byte) bool {
	n := len(d)
	if n < 13 || n > 19 {
		return false
	}
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	var ok bool
	switch {
	case d[0] == '4':
		ok = n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55 || p4 >= 2221 && p4 <= 2720:
		ok = n == 16
	case p2 == 34 || p2 == 37:
		ok = n == 15
	case p4 == 6011 || p2 == 65 || p2 == 35:
		ok = n >= 16
	case p2 == 36 || p2 == 38 || p2 == 30:
		ok = n >= 14
	}
	if !ok {
		return false
	}
	sum, dbl := 0, false
	for k := n - 1; k >= 0; k-- {
		v := int(d[k] - '0')
		if dbl {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		dbl = !dbl
	}
	return sum%10 == 0
}

// detIBANLen is the IBAN length of each country of the IBAN registry,
// indexed by (first letter - 'A') * 26 + (second letter - 'A').
var detIBANLen = func() (t [26 * 26]uint8) {
	for _, e := range [...]struct {
		cc string
		n  uint8
	}{
		{"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
		{"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
		{"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
		{"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
		{"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HN", 28}, {"HR", 21},
		{"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30},
		{"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
		{"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20},
		{"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23},
		{"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22},
		{"RU", 33}, {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24},
		{"SM", 27}, {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26},
		{"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
	} {
		t[int(e.cc[0]-'A')*26+int(e.cc[1]-'A')] = e.n
	}
	return t
}()

// detIBANAt matches an IBAN starting at i, compact or grouped by four.
func detIBANAt(s []byte, i int) int {
	if i+4 > len(s) || !detIs(s[i+1], ccUpper) || !detDigit(s[i+2]) || !detDigit(s[i+3]) {
		return 0
	}
	want := int(detIBANLen[int(s[i]-'A')*26+int(s[i+1]-'A')])
	if want == 0 {
		return 0
	}
	var buf [34]byte
	b := append(buf[:0], s[i:i+4]...)
	j := i + 4
	grouped := detByteAt(s, j) == ' '
	for len(b) < want {
		if grouped {
			if detByteAt(s, j) != ' ' {
				return 0
			}
			j++
		}
		for g := 0; g < 4 && len(b) < want; g++ {
			c := detByteAt(s, j)
			if !detIs(c, ccUpper|ccDigit) {
				return 0
			}
			b = append(b, c)
			j++
		}
		if !grouped && len(b) < want && !detIs(detByteAt(s, j), ccUpper|ccDigit) {
			return 0
		}
	}
	if detIs(detByteAt(s, j), ccAlnum) {
		return 0
	}
	// ISO 13616: move the first four characters to the end, read letters as
	// 10..35, and the number is 1 mod 97.
	rem := 0
	for k := 0; k < len(b); k++ {
		c := b[(k+4)%len(b)]
		if detDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	if rem != 1 {
		return 0
	}
	return j
}
