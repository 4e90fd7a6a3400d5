package capture

import "bytes"

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
	// Most words differ from the prefix in their second byte.
	if len(s)-i < len(prefix) || s[i+1] != prefix[1] || string(s[i:i+len(prefix)]) != prefix {
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
	// Every prefix is upper case, so the key is a word of exactly 20 upper
	// case letters and digits; most words fail on their second byte.
	if i+20 > len(s) || !detIs(s[i+1], ccUpper) {
		return 0
	}
	e := detRunMax(s, i, ccUpper|ccDigit, 20)
	if e-i != 20 || detIs(detByteAt(s, e), ccAlnum) {
		return 0
	}
	for _, k := range detAWSPrefixes {
		if string(s[i:i+4]) == k {
			return e
		}
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
