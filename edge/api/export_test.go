package api

// Route is one row of the route table, for tests.
type Route struct {
	Pattern string
	Role    Role
	Own     bool // served by the Server itself
}

// Routes lists the route table.
func (s *Server) Routes() []Route {
	own := map[string]bool{}
	for _, r := range s.routes(Handlers{}) {
		own[r.pattern] = r.h != nil
	}
	var out []Route
	for _, r := range s.routes(Handlers{}) {
		out = append(out, Route{Pattern: r.pattern, Role: r.role, Own: own[r.pattern]})
	}
	return out
}
