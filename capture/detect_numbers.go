package capture

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
