package gateway

import "strings"

// UndeclaredFollowers lists the event-log readers running now that the
// service table does not declare, and the declared ones not running.
func (g *Gateway) UndeclaredFollowers() (undeclared, missing []string) {
	lag := g.store.FollowerLag()
	var declared []string
	for _, s := range g.services() {
		if s.follows != "" {
			declared = append(declared, s.follows)
		}
	}
	match := func(name, d string) bool {
		return name == d || strings.HasSuffix(d, " ") && strings.HasPrefix(name, d)
	}
	for name := range lag {
		ok := false
		for _, d := range declared {
			ok = ok || match(name, d)
		}
		if !ok {
			undeclared = append(undeclared, name)
		}
	}
	for _, d := range declared {
		ok := false
		for name := range lag {
			ok = ok || match(name, d)
		}
		if !ok {
			missing = append(missing, d)
		}
	}
	return undeclared, missing
}
