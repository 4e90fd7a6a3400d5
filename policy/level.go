package policy

import (
	"fmt"
	"strconv"
)

// Level is how much of an exchange is recorded. Higher levels include
// everything the lower ones record.
type Level int8

const (
	// LevelNone records nothing about the exchange.
	LevelNone Level = iota
	// LevelMetadata records who called which model, when, with what
	// outcome, usage and the bodies' hashes, but neither body.
	LevelMetadata
	// LevelRequest adds the request's input.
	LevelRequest
	// LevelFull adds the response's output: the whole decision.
	LevelFull
)

var levelNames = [...]string{"none", "metadata", "request", "full"}

// ParseLevel parses a level name: none, metadata, request or full.
func ParseLevel(s string) (Level, error) {
	for i, name := range levelNames {
		if s == name {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown level %q: use none, metadata, request or full", s)
}

// String returns the level's name, or Level(N) for a value out of range.
func (l Level) String() string {
	if l.valid() {
		return levelNames[l]
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

func (l Level) valid() bool { return l >= LevelNone && l <= LevelFull }

// Durability says whether a record must be on disk before the request is
// forwarded.
type Durability string

const (
	// DurabilityAsync never delays the client for fsync; a crash can lose
	// the records of the last group-commit window, and a gap record says so.
	DurabilityAsync Durability = "async"
	// DurabilityStrict fsyncs a request record before forwarding.
	DurabilityStrict Durability = "strict"
)

// FailureMode says what happens to traffic when the trail cannot take a
// record.
type FailureMode string

const (
	// FailClosed answers 503 with Retry-After: no unaudited inference.
	FailClosed FailureMode = "closed"
	// FailOpen forwards anyway, counts the loss, and records a gap once the
	// trail recovers.
	FailOpen FailureMode = "open"
)

// Detector names: the kinds of personal data and secrets redaction finds
// in bodies.
const (
	DetectorEmail  = "email"
	DetectorPhone  = "phone"
	DetectorCard   = "card"   // payment card numbers
	DetectorSSN    = "ssn"    // US social security numbers
	DetectorIBAN   = "iban"   // international bank account numbers
	DetectorIP     = "ip"     // IPv4 and IPv6 addresses
	DetectorSecret = "secret" // API keys, tokens and private keys
)

var detectors = []string{DetectorEmail, DetectorPhone, DetectorCard, DetectorSSN, DetectorIBAN, DetectorIP, DetectorSecret}

// Detectors returns every detector name.
func Detectors() []string { return append([]string(nil), detectors...) }

func knownDetector(name string) bool {
	for _, d := range detectors {
		if d == name {
			return true
		}
	}
	return false
}
