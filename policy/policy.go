// Package policy decides, per exchange, what is captured and how strictly:
// the level of detail, the redaction, the size cap, the durability and the
// behaviour when the trail fails. Like a Kubernetes audit policy, a policy
// is an ordered list of rules and the first rule that matches decides.
package policy

import "strings"

// DefaultPolicy is the policy of routes that name none.
const DefaultPolicy = "default"

// DefaultMaxBody is the bytes of each body kept in a record when a rule
// sets no MaxBody.
const DefaultMaxBody = 1 << 20

// Match selects exchanges. Every dimension given must hold; an empty one
// holds for every exchange, and within one dimension any entry may match.
type Match struct {
	// Routes are route names.
	Routes []string
	// Paths are globs on the request path (without its query). "*" matches
	// within one segment and "**", a whole segment, any number of segments:
	// "/v1/models*" matches /v1/models and /v1/models-list, "/v1/**"
	// matches /v1 and everything below it, "/**/embeddings" matches
	// /embeddings and /v1/embeddings.
	Paths []string
	// Methods are HTTP methods, compared without regard to case.
	Methods []string
	// Callers are globs on the caller's key id or verified JWT subject,
	// such as "k_3f9a*" or "svc-*"; "*" matches any identified caller,
	// never an anonymous one.
	Callers []string
	// Models are globs on the requested model, such as "gpt-4o*"; they
	// never match an exchange that names no model.
	Models []string
}

// Redact says what is masked in a record's input and output.
type Redact struct {
	// Paths are JSON paths within the input and the output whose values are
	// replaced whole, in capture's syntax: messages[*].content,
	// metadata.user_id, instances[0].ssn.
	Paths []string
	// Detectors are the detectors run over every string value. If nil, all
	// of them (see Detectors); an empty, non-nil list runs none.
	Detectors []string
}

// Rule decides for the exchanges it matches.
type Rule struct {
	// Name identifies the rule in decisions and problems. Optional, and
	// unique within its policy when given.
	Name  string
	Match Match
	// Level is how much is recorded. The zero value records nothing.
	Level Level
	// MaxBody is the bytes of each body kept in the record. If zero,
	// DefaultMaxBody.
	MaxBody int
	Redact  Redact
	// Durability is async or strict. If empty, async.
	Durability Durability
	// OnTrailFailure is closed or open. If empty, closed.
	OnTrailFailure FailureMode
}

// Decision is what a policy decided for one exchange. Decisions are shared
// between exchanges and must not be modified.
type Decision struct {
	// Policy is the policy's name; "" for the built-in default.
	Policy string
	// Rule is the matching rule's name, or "#N" for an unnamed rule at
	// index N; "" when no rule matched.
	Rule           string
	Level          Level
	MaxBody        int
	RedactPaths    []string
	Detectors      []string // the detectors to run; empty runs none
	Durability     Durability
	OnTrailFailure FailureMode
}

// defaultDecision is shared by a nil Set and unknown policies; Default
// hands out copies, so callers cannot change it.
var defaultDecision = Decision{
	Level:          LevelFull,
	MaxBody:        DefaultMaxBody,
	Detectors:      detectors,
	Durability:     DurabilityAsync,
	OnTrailFailure: FailClosed,
}

// Default returns the built-in default decision: everything recorded, up
// to DefaultMaxBody of each body, every detector, async, failing closed.
func Default() *Decision {
	d := defaultDecision
	d.Detectors = Detectors()
	return &d
}

// Query describes the exchange a decision is asked for.
type Query struct {
	Route  string
	Path   string // the request path; a query string is ignored
	Method string
	KeyID  string // the caller's key id, "" if none
	// Subject is the caller's JWT subject, "" if none. Callers pass it
	// only for a token whose signature they verified.
	Subject string
	Model   string // the requested model, "" if unknown
}

// Set is a compiled set of named policies. It is immutable and safe for
// concurrent use. A nil Set decides the built-in default for everything.
type Set struct {
	policies map[string]*compiled
}

type compiled struct {
	rules       []rule
	fallback    Decision
	needsCaller bool
	needsModel  bool
	hasStrict   bool
}

// rule is a Rule with its globs compiled and its decision resolved.
type rule struct {
	routes  []string
	paths   []glob
	methods []string
	callers []glob
	models  []glob
	d       Decision
}

// Decide returns the decision of the first rule of the named policy that
// matches q; "" names DefaultPolicy. If no rule matches, or there is no
// such policy, it returns the built-in default (with Policy set when the
// policy exists). It does not allocate.
func (s *Set) Decide(policy string, q Query) *Decision {
	p := s.lookup(policy)
	if p == nil {
		return &defaultDecision
	}
	for i := range p.rules {
		if r := &p.rules[i]; r.matches(&q) {
			return &r.d
		}
	}
	return &p.fallback
}

// NeedsCaller reports whether a rule of the policy matches on callers, so
// that identifying the caller can wait until after the decision otherwise.
func (s *Set) NeedsCaller(policy string) bool {
	p := s.lookup(policy)
	return p != nil && p.needsCaller
}

// NeedsModel reports whether a rule of the policy matches on models, so
// that the request body need not be read for the model otherwise.
func (s *Set) NeedsModel(policy string) bool {
	p := s.lookup(policy)
	return p != nil && p.needsModel
}

// HasStrict reports whether a rule of the policy chooses strict
// durability, so that a decision that depends on an unknown model may have
// to wait for the request body.
func (s *Set) HasStrict(policy string) bool {
	p := s.lookup(policy)
	return p != nil && p.hasStrict
}

// Has reports whether the set defines the named policy; "" names
// DefaultPolicy.
func (s *Set) Has(policy string) bool { return s.lookup(policy) != nil }

func (s *Set) lookup(policy string) *compiled {
	if s == nil {
		return nil
	}
	if policy == "" {
		policy = DefaultPolicy
	}
	return s.policies[policy]
}

func (r *rule) matches(q *Query) bool {
	if len(r.routes) > 0 && !anyEqual(r.routes, q.Route, false) {
		return false
	}
	if len(r.methods) > 0 && !anyEqual(r.methods, q.Method, true) {
		return false
	}
	if len(r.paths) > 0 {
		path := q.Path
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if !anyGlob(r.paths, path) {
			return false
		}
	}
	if len(r.callers) > 0 && !(q.KeyID != "" && anyGlob(r.callers, q.KeyID) || q.Subject != "" && anyGlob(r.callers, q.Subject)) {
		return false
	}
	if len(r.models) > 0 && (q.Model == "" || !anyGlob(r.models, q.Model)) {
		return false
	}
	return true
}

func anyEqual(list []string, s string, fold bool) bool {
	for _, v := range list {
		if v == s || fold && strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func anyGlob(gs []glob, s string) bool {
	for i := range gs {
		if gs[i].match(s) {
			return true
		}
	}
	return false
}
