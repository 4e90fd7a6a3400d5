package capture

import "sort"

// outcomeMessage is the record's error message for an outcome.
func outcomeMessage(o Outcome) string {
	switch o {
	case OutcomeNoRoute:
		return "no route matched the request"
	case OutcomeRequestTooLarge:
		return "the request body exceeded the route's limit"
	case OutcomeUpstreamUnavailable:
		return "the upstream could not be reached, reset the connection, or did not answer HTTP"
	case OutcomeUpstreamTimeout:
		return "the upstream did not answer in time"
	case OutcomeUpstreamBusy:
		return "the route's upstream connection limit was reached"
	case OutcomeUpstreamBroken:
		return "the upstream's response broke off"
	case OutcomeClientGone:
		return "the client went away before the whole response reached it"
	case OutcomeTrailUnavailable:
		return "the trail could not take records and the policy fails closed"
	case OutcomeStrictTooLarge:
		return "strict durability: the request body exceeded the capture limit it is buffered to"
	case OutcomeBadRequest:
		return "the request was malformed, or its path was not in normal form; it was not forwarded"
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
