package config

import (
	"fmt"
	"strings"

	"github.com/auditgate/auditgate/gateway"
)

// unreachable reports routes that can never match because an earlier route
// matches every request they would: routes match in order and the first
// wins, so such a route is dead configuration, usually a wrong order.
func (k *checker) unreachable(rs []gateway.Route) {
	for j := range rs {
		later := fmt.Sprintf("routes[%d]", j)
		if k.src.isBad(later) {
			continue
		}
		for i := range j {
			if k.src.isBad(fmt.Sprintf("routes[%d]", i)) || !covers(&rs[i], &rs[j]) {
				continue
			}
			if rs[i].Host == "" && rs[i].PathPrefix == "" {
				k.report(later, nil, "unreachable: routes[%d] %q matches every request first", i, rs[i].Name)
			} else {
				k.report(later, nil, "unreachable: routes[%d] %q matches all of this route's requests first: put the narrower route first", i, rs[i].Name)
			}
			break
		}
	}
}

// covers reports whether every request b matches is matched by a as well.
// It may miss some covered cases (ports), never claim a false one.
func covers(a, b *gateway.Route) bool {
	return coversHost(a.Host, b.Host) && coversPath(a.PathPrefix, b.PathPrefix)
}

func coversHost(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	switch {
	case a == "" || a == b:
		return true
	case b == "":
		return false
	case strings.HasPrefix(a, "*."):
		suffix := a[1:]
		return strings.HasSuffix(b, suffix) && len(b) > len(suffix)
	}
	return false
}

// coversPath follows gateway.Route.PathPrefix: a prefix ending in "/"
// matches below it, any other also at a "/" boundary.
func coversPath(a, b string) bool {
	switch {
	case a == "" || a == b:
		return true
	case b == "":
		return false
	case strings.HasSuffix(a, "/"):
		return strings.HasPrefix(b, a)
	}
	return strings.HasPrefix(b, a+"/")
}
