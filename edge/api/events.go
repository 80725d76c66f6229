package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// eventsResponse is the body of GET /api/v1/events.
type eventsResponse struct {
	Events []event.Event `json:"events"`
	Next   uint64        `json:"next"`
}

// query reads query parameters strictly: an unknown or repeated parameter is
// a 400 naming it, so a typo never silently widens a result.
type query struct {
	v       url.Values
	allowed map[string]bool
}

func newQuery(r *http.Request, allowed ...string) (*query, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "query string: %v", err)
	}
	q := &query{v: v, allowed: map[string]bool{}}
	for _, a := range allowed {
		q.allowed[a] = true
	}
	for k, vs := range v {
		if !q.allowed[k] {
			return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "unknown parameter %q", k)
		}
		if len(vs) > 1 {
			return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter %q given more than once", k)
		}
	}
	return q, nil
}

func (q *query) str(name string) string { return q.v.Get(name) }

func (q *query) uint(name string, def uint64) (uint64, error) {
	s := q.v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter %q: %q is not a non-negative integer", name, s)
	}
	return n, nil
}

// limit reads "limit": default 100, 1..1000; larger values are clamped to 1000.
func (q *query) limit() (int, error) {
	s := q.v.Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter \"limit\": %q is not an integer from 1 to %d", s, maxLimit)
	}
	return min(n, maxLimit), nil
}

// Page reads a list route's paging parameters, "after" (default 0) and
// "limit" (default 100, clamped to 1000), refusing any other parameter with
// a 400 that names it. For routes mounted from other packages.
func Page(r *http.Request) (after uint64, limit int, err error) {
	q, err := newQuery(r, "after", "limit")
	if err != nil {
		return 0, 0, err
	}
	return q.page()
}

// page reads the cursor paging pair shared by every list route: "after"
// (default 0) and "limit".
func (q *query) page() (after uint64, limit int, err error) {
	if after, err = q.uint("after", 0); err != nil {
		return 0, 0, err
	}
	limit, err = q.limit()
	return after, limit, err
}

func (q *query) time(name string) (time.Time, error) {
	s := q.v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter %q: %q is not an RFC 3339 time", name, s)
	}
	return t, nil
}

// filterParams are the event filter parameters shared by the list and the stream.
var filterParams = []string{"type", "since", "until", "building", "unit", "room", "zone", "severity", "source"}

func (q *query) filter() (store.Filter, error) {
	var f store.Filter
	var err error
	f.TypePrefix = q.str("type")
	if len(f.TypePrefix) > 64 {
		return f, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter \"type\": longer than 64 characters")
	}
	if f.Since, err = q.time("since"); err != nil {
		return f, err
	}
	if f.Until, err = q.time("until"); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter \"until\": before \"since\"")
	}
	f.Building, f.Unit, f.Room, f.Zone = q.str("building"), q.str("unit"), q.str("room"), q.str("zone")
	f.SourceID = q.str("source")
	if s := q.str("severity"); s != "" {
		sev := event.Severity(s)
		if !sev.Valid() {
			return f, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter \"severity\": %q is not info, warning or critical", s)
		}
		f.MinSeverity = sev
	}
	return f, nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	if s.opts.Events == nil {
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "event store not configured"))
		return
	}
	q, err := newQuery(r, append([]string{"after", "before", "order", "limit"}, filterParams...)...)
	if err != nil {
		WriteError(w, err)
		return
	}
	after, limit, err := q.page()
	if err != nil {
		WriteError(w, err)
		return
	}
	f, err := q.filter()
	if err != nil {
		WriteError(w, err)
		return
	}
	// order=desc pages from the newest backwards (before=<seq>, the last
	// answer's next); the default stays seq order with after=.
	switch q.str("order") {
	case "", "asc":
		if q.str("before") != "" {
			WriteError(w, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter \"before\": only with order=desc"))
			return
		}
	case "desc":
		if q.str("after") != "" {
			WriteError(w, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter \"after\": not with order=desc (use before)"))
			return
		}
		before, err := q.uint("before", 0)
		if err != nil {
			WriteError(w, err)
			return
		}
		s.writeEvents(w, before, limit, f, true)
		return
	default:
		WriteError(w, Errorf(http.StatusBadRequest, CodeBadRequest, "parameter \"order\": asc or desc"))
		return
	}
	s.writeEvents(w, after, limit, f, false)
}

func (s *Server) writeEvents(w http.ResponseWriter, from uint64, limit int, f store.Filter, back bool) {
	read := s.opts.Events.Read
	if back {
		read = s.opts.Events.ReadBack
	}
	evs, next, err := read(from, limit, f)
	if err != nil {
		s.log.Error("api: read events", "from", from, "backwards", back, "err", err)
		WriteError(w, Errorf(http.StatusInternalServerError, CodeInternal, "read events failed"))
		return
	}
	if evs == nil {
		evs = []event.Event{}
	}
	if !back && next < from {
		next = from
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, eventsResponse{Events: evs, Next: next})
}
