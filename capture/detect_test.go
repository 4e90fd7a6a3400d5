package capture

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

var detTestSecret = []byte("detector test secret")

// detTestTag is the tag a value must be replaced with, computed
// independently of the redactor.
func detTestTag(secret []byte, typ, value string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(value))
	return "[REDACTED:" + typ + ":" + hex.EncodeToString(m.Sum(nil))[:8] + "]"
}

func detTestRedactor(t testing.TB, detectors []string) *Redactor {
	t.Helper()
	r, err := NewRedactor(RedactorOptions{Secret: detTestSecret, Detectors: detectors})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// detCase is a text and the values in it that must be replaced, in order.
type detCase struct {
	text   string
	values []string
}

// detCheckPositives checks every case with only the detector typ and with
// all detectors: the values (and nothing else) are replaced with their
// tags and reported as typ.
func detCheckPositives(t *testing.T, typ string, cases []detCase) {
	t.Helper()
	for _, set := range [][]string{{typ}, nil} {
		r := detTestRedactor(t, set)
		for _, c := range cases {
			want := c.text
			for _, v := range c.values {
				if !strings.Contains(want, v) {
					t.Fatalf("bad case %q: no %q", c.text, v)
				}
				want = strings.Replace(want, v, detTestTag(detTestSecret, typ, v), 1)
			}
			out, reds := r.RedactString(nil, []byte(c.text), "w", nil)
			if string(out) != want {
				t.Errorf("detectors %v: %q\n got %q\nwant %q", set, c.text, out, want)
			}
			if len(reds) != len(c.values) {
				t.Errorf("detectors %v: %q: %d redactions %v, want %d", set, c.text, len(reds), reds, len(c.values))
				continue
			}
			for _, rd := range reds {
				if rd.Type != typ || rd.Where != "w" {
					t.Errorf("detectors %v: %q: redaction %+v, want type %s at w", set, c.text, rd, typ)
				}
			}
		}
	}
}

// detCheckNegatives checks that no detector replaces anything in texts.
func detCheckNegatives(t *testing.T, texts []string) {
	t.Helper()
	r := detTestRedactor(t, nil)
	for _, s := range texts {
		out, reds := r.RedactString(nil, []byte(s), "w", nil)
		if string(out) != s || len(reds) != 0 {
			t.Errorf("%q: redacted to %q (%v)", s, out, reds)
		}
	}
}

func TestDetectEmail(t *testing.T) {
	detCheckPositives(t, DetectEmail, []detCase{
		{"alice@example.com", []string{"alice@example.com"}},
		{"write to first.last+tag@sub.example.co.uk today", []string{"first.last+tag@sub.example.co.uk"}},
		{"<x_y-z%1@mail-server.io>", []string{"x_y-z%1@mail-server.io"}},
		{"mailto:carol@example.org.", []string{"carol@example.org"}},
		{"a@b.co, C@D.ORG; e9@xn--bcher-kva.example", []string{"a@b.co", "C@D.ORG", "e9@xn--bcher-kva.example"}},
		{"(bob@corp.example)", []string{"bob@corp.example"}},
		{"git@github.com:org/repo.git", []string{"git@github.com"}},
		{".lead.dot@example.com", []string{"lead.dot@example.com"}},
	})
}

func TestDetectEmailNegatives(t *testing.T) {
	detCheckNegatives(t, []string{
		"user@localhost",
		"install left-pad@1.2.3 and @types/node@20.1.0",
		"ping @channel and @here",
		"a@b",
		"x@y.z",
		"dots..x@example.com",
		"trail.@example.com",
		"x@-bad.com",
		"x@bad-.com",
		"x@example.c0m",
		"@example.com",
		"user@192.168.1.1x",
	})
}

func TestDetectPhone(t *testing.T) {
	detCheckPositives(t, DetectPhone, []detCase{
		{"call +1 (555) 123-4567 now", []string{"+1 (555) 123-4567"}},
		{"+44 20 7946 0958", []string{"+44 20 7946 0958"}},
		{"tel:+4915112345678.", []string{"+4915112345678"}},
		{"+33.1.23.45.67.89", []string{"+33.1.23.45.67.89"}},
		{"office (555) 123-4567, mobile (555)987-6543", []string{"(555) 123-4567", "(555)987-6543"}},
		{"555-123-4567", []string{"555-123-4567"}},
		{"at 555.123.4567.", []string{"555.123.4567"}},
		{"toll free 1-800-555-0199", []string{"1-800-555-0199"}},
		{"two: 555-123-4567 and +1-555-765-4321", []string{"555-123-4567", "+1-555-765-4321"}},
		{"+1 555 123 4567 8901 234 and +49 30 1234567", []string{"+49 30 1234567"}}, // the first has 18 digits
	})
}

func TestDetectPhoneNegatives(t *testing.T) {
	detCheckNegatives(t, []string{
		"used 412 input tokens and 131 output tokens",
		"id 5551234567 and 15551234567",
		"555-1234",
		"+1 555",
		"growth of +1234567",
		"1+12345678",
		"x+12345678",
		"+0123456789",
		"+1234567890123456", // 16 digits
		"555-123-45678",
		"555-123.4567",
		"555.123-4567",
		"5555-123-4567",
		"12-555-123-4567",
		"555 123 4567",
		"ISBN 978-3-16-148410-0",
		"2024-11-27 and 2024.11.27",
		"(55) 123-4567",
		"v555.123.4567",
	})
}

func TestDetectCard(t *testing.T) {
	detCheckPositives(t, DetectCard, []detCase{
		{"4111111111111111", []string{"4111111111111111"}},
		{"card 4111 1111 1111 1111 exp", []string{"4111 1111 1111 1111"}},
		{"4111-1111-1111-1111", []string{"4111-1111-1111-1111"}},
		{"mc 5555555555554444 and 2223003122003222", []string{"5555555555554444", "2223003122003222"}},
		{"amex 378282246310005 / 3782 822463 10005", []string{"378282246310005", "3782 822463 10005"}},
		{"discover 6011111111111117", []string{"6011111111111117"}},
		{"jcb 3530111333300000", []string{"3530111333300000"}},
		{"diners 30569309025904", []string{"30569309025904"}},
		{"visa13 4222222222222.", []string{"4222222222222"}},
		{"4111 1111 1111 1111 12/26", []string{"4111 1111 1111 1111"}},
		{"id=4111111111111111&x=1", []string{"4111111111111111"}},
	})
}

func TestDetectCardNegatives(t *testing.T) {
	detCheckNegatives(t, []string{
		"4111111111111112",              // Luhn
		"4111 1111 1111 1112",           // Luhn
		"1234567890123",                 // no brand
		"1732730000000",                 // a Unix time in ms
		"x4111111111111111",             // glued to a word
		"41111111111111111",             // 17 digits: not a Visa length
		"0.4111111111111111",            // a decimal
		"94111111111111111",             // part of a longer run
		"4111 1111 1111 1111 1111 1111", // one long number
		"4111 1111 1111 1111 4111",      // likewise
		"4111-1111 1111-1111",           // mixed separators
		"371449635398432",               // Amex with a bad Luhn digit
		"3400000000000000",              // Luhn-valid, but 16 digits is no Amex
		"37000000000007",                // nor is 14
		"40000000000002",                // nor a Visa
		"400000000000006",               // likewise 15
		"510000000000003",               // a Mastercard has 16
		"5105 1051 0510 5101",           // Luhn
		"1,234,567,890,123",
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
	})
}

func TestDetectSSN(t *testing.T) {
	detCheckPositives(t, DetectSSN, []detCase{
		{"ssn 123-45-6789", []string{"123-45-6789"}},
		{"SSN: 123 45 6789.", []string{"123 45 6789"}},
		{"078-05-1120, 665-01-0001", []string{"078-05-1120", "665-01-0001"}},
	})
}

func TestDetectSSNNegatives(t *testing.T) {
	detCheckNegatives(t, []string{
		"123456789",
		"000-12-3456",
		"666-12-3456",
		"900-12-3456",
		"123-00-6789",
		"123-45-0000",
		"123-45 6789",
		"1123-45-6789",
		"123-45-67890",
		"9-123-45-6789",
		"123.45.6789",
	})
}

func TestDetectIBAN(t *testing.T) {
	detCheckPositives(t, DetectIBAN, []detCase{
		{"DE89370400440532013000", []string{"DE89370400440532013000"}},
		{"IBAN DE89 3704 0044 0532 0130 00.", []string{"DE89 3704 0044 0532 0130 00"}},
		{"GB82WEST12345698765432 or GB82 WEST 1234 5698 7654 32", []string{"GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32"}},
		{"FR1420041010050500013M02606", []string{"FR1420041010050500013M02606"}},
		{"(NL91ABNA0417164300)", []string{"NL91ABNA0417164300"}},
		{"NO9386011117947", []string{"NO9386011117947"}},
	})
}

func TestDetectIBANNegatives(t *testing.T) {
	detCheckNegatives(t, []string{
		"DE89370400440532013001",     // mod 97
		"XX89370400440532013000",     // no such country
		"ZZ22370400440532013000",     // no such country, though mod 97 holds
		"DE5137040044053201300",      // mod 97 holds, but 21 is not DE's length
		"DE8937040044053201300",      // short for DE
		"DE893704004405320130000",    // long for DE
		"de89370400440532013000",     // lower case
		"DE89 3704 0044 0532 013000", // broken grouping
		"AB12",
		"HL-FX25-B",
	})
}

func TestDetectIP(t *testing.T) {
	detCheckPositives(t, DetectIP, []detCase{
		{"from 192.168.1.1 and 10.0.0.1.", []string{"192.168.1.1", "10.0.0.1"}},
		{"dns 8.8.8.8:53", []string{"8.8.8.8"}},
		{"0.0.0.0/0", []string{"0.0.0.0"}},
		{"2001:db8::1", []string{"2001:db8::1"}},
		{"link fe80::1ff:fe23:4567:890a%eth0", []string{"fe80::1ff:fe23:4567:890a"}},
		{"::ffff:192.0.2.128", []string{"::ffff:192.0.2.128"}},
		{"2001:0db8:85a3:0000:0000:8a2e:0370:7334", []string{"2001:0db8:85a3:0000:0000:8a2e:0370:7334"}},
		{"[2001:db8::1]:443", []string{"2001:db8::1"}},
		{"FE80::A:1", []string{"FE80::A:1"}},
		{"peer 2001:db8::2: gone", []string{"2001:db8::2"}},
	})
}

func TestDetectIPNegatives(t *testing.T) {
	detCheckNegatives(t, []string{
		"version 1.2.3.4.5",
		"v1.2.3.4",
		"1.2.3",
		"256.1.1.1",
		"1.2.3.256",
		"01.2.3.4",
		"12.34.56.78.90",
		"Chrome 120.0.6099.109",
		"3.14159",
		"at 18:00:00 UTC",
		"10:30",
		"mac 00:1a:2b:3c:4d:5e",
		"std::vector and a::b and Foo::Bar",
		"::1",
		"2001:db8",
		"cafe:babe",
		"550e8400-e29b-41d4-a716-446655440000",
		"1.2.3.4a",
		"x.1.2.3.4.5",
	})
}

const detTestPEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\naFDrBz9vFqU4yTz7wq0qXEuh4nbVrhQvn2kY+0Y1nXr0QnQ==\n-----END RSA PRIVATE KEY-----"

func TestDetectSecret(t *testing.T) {
	detCheckPositives(t, DetectSecret, []detCase{
		{"key AKIAIOSFODNN7EXAMPLE.", []string{"AKIAIOSFODNN7EXAMPLE"}},
		{"ASIAY34FZKBOKMUTVV7A", []string{"ASIAY34FZKBOKMUTVV7A"}},
		{"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", []string{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		{`{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`, []string{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		{"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", []string{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		{"here:\n" + detTestPEM + "\nthanks", []string{detTestPEM}},
		{"cut -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", []string{"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}},
		{"token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 ok", []string{"ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"}},
		{"gho_16C7e42F292c6912E7710c838347Ae178B4a", []string{"gho_16C7e42F292c6912E7710c838347Ae178B4a"}},
		{"github_pat_11ABCDEFG0123456789abcd_efghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345", []string{"github_pat_11ABCDEFG0123456789abcd_efghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345"}},
		{"OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", []string{"sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"}},
		{"sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6hIj9k", []string{"sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6hIj9k"}},
		{"not sk-learn-and-friends but sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", []string{"sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"}},
		{"eyJ-eyJ-x then eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", []string{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}},
		{"x-api-key: sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_AA", []string{"sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_AA"}},
		{"slack xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp", []string{"xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"}},
		{"google AIzaSyA1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tU1v", []string{"AIzaSyA1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tU1v"}},
		{"stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc and rk_live_51H8abcdefGHIJKLmnop", []string{"sk_live_4eC39HqLyjWDarjtT1zdp7dc", "rk_live_51H8abcdefGHIJKLmnop"}},
		{"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end", []string{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}},
		{"Authorization: Bearer abcDEF123ghiJKL456mnoPQR789", []string{"abcDEF123ghiJKL456mnoPQR789"}},
		{"bearer  Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4MTIz==", []string{"Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4MTIz=="}},
	})
}

func TestDetectSecretNegatives(t *testing.T) {
	detCheckNegatives(t, []string{
		"AKIAIOSFODNN7EXAMPL",   // 19
		"AKIAIOSFODNN7EXAMPLEX", // 21
		"AKIAIOSFODNN7EXAMPLEx",
		"xAKIAIOSFODNN7EXAMPLE",
		"the secret access key is rotated monthly",
		"aws_secret_access_key = short",
		"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
		"-----BEGIN CERTIFICATE-----",
		"ghp_short",
		"ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678", // 35
		"use sk-learn-and-numpy-for-the-baseline-model",
		"sk-short1",
		"risk-assessment-2024-q3-summary-v2-final",
		"xoxb-notatoken",
		"AIzaShort",
		"sk_live_short",
		"eyJhbGciOi and eyJhbGciOiJIUzI1NiJ9.notpayload.sig",
		"Bearer authentication-is-required-here",
		"bearer token",
		"Bearer short123",
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"0193a5e2-7c1d-7c3e-9a4b-1f2e3d4c5b6a",
		"dGhpcyBpcyBqdXN0IHNvbWUgYmFzZTY0IHRleHQ=",
	})
}

// TestDetectOrdinaryText runs every detector over the kind of text a
// model exchange is full of: none of it is personal data.
func TestDetectOrdinaryText(t *testing.T) {
	detCheckNegatives(t, []string{
		"Usage: 412 prompt tokens, 131 completion tokens, 543 total; latency 48211 us, ttfb 910 us.",
		"Released 2026-11-27T18:00:00.123456789Z as v2.14.3 (build 1.2.3.4.5, commit 9f86d08).",
		"Request 0193a5e2-7c1d-7c3e-9a4b-1f2e3d4c5b6a took 1.25s; retry in 30s; see RFC 6962 and CVE-2024-12345.",
		"The total is $1,234,567.89, up 12.5% from 1,097,393.12; ratio 0.4111111111111111.",
		"Call the function with x=3.14159, y=-2.71828e10, z=1e-9, n=1000000000000.",
		"Python 3.12.1, numpy 1.26.4, torch 2.5.1+cu121, CUDA 12.4, driver 550.54.15.",
		"Order #55213 shipped in 3-5 days; tracking 1Z999AA10123456784; SKU HL-FX25-B.",
		"Matrix [[1, 0], [0, 1]] has determinant 1; a 10x10 grid has 100 cells.",
		"Use std::vector<int>::iterator or Foo::Bar::baz(); time 12:34:56.789.",
		"Hash e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 and md5 d41d8cd98f00b204e9800998ecf8427e.",
		"Coordinates 48.8566, 2.3522 and altitude 35 m; phone book page 555.",
	})
}

func TestDetectOverlaps(t *testing.T) {
	r := detTestRedactor(t, nil)
	cases := []struct {
		text string
		want []string // types, in order
	}{
		// The earliest, then the longest, match wins.
		{"john.4111111111111111@example.com", []string{DetectEmail}},
		{"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", []string{DetectSecret}},
		{"a@b.co 10.0.0.1 555-123-4567 123-45-6789 4111111111111111 DE89370400440532013000 AKIAIOSFODNN7EXAMPLE",
			[]string{DetectEmail, DetectIP, DetectPhone, DetectSSN, DetectCard, DetectIBAN, DetectSecret}},
		{detTestPEM + " user@example.com", []string{DetectSecret, DetectEmail}},
		{"user@example.com " + detTestPEM, []string{DetectEmail, DetectSecret}},
	}
	for _, c := range cases {
		_, reds := r.RedactString(nil, []byte(c.text), "w", nil)
		var got []string
		for _, rd := range reds {
			got = append(got, rd.Type)
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%q: types %v, want %v", c.text, got, c.want)
		}
	}
}

func TestDetectLuhnAndMod97(t *testing.T) {
	for _, c := range []struct {
		digits string
		ok     bool
	}{
		{"4111111111111111", true}, {"4111111111111112", false}, {"79927398713", false}, // too short
		{"5555555555554444", true}, {"5555555555554443", false}, {"6011000990139424", true},
	} {
		if got := detCardValid([]byte(c.digits)); got != c.ok {
			t.Errorf("detCardValid(%s) = %v", c.digits, got)
		}
	}
	for _, c := range []struct {
		iban string
		ok   bool
	}{
		{"BE68539007547034", true}, {"BE68539007547035", false}, {"CH9300762011623852957", true},
		{"IT60X0542811101000000123456", true}, {"IT60X0542811101000000123457", false},
	} {
		if got := detIBANAt([]byte(c.iban), 0) == len(c.iban); got != c.ok {
			t.Errorf("detIBANAt(%s) = %v", c.iban, got)
		}
	}
}
