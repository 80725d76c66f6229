package alarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/smartcommunity/warden/edge/api"
)

// CodeConflict is the error code of a 409: the alarm's state does not allow
// the action (acknowledging twice, resolving a resolved alarm).
const CodeConflict = "conflict"

// Mount registers the alarm routes on s: reading needs the platform role
// (guards and admins read too), acting needs guard.
//
//	GET  /api/v1/alarms?state=open|acknowledged|resolved&limit=&before=
//	GET  /api/v1/alarms/{id}
//	POST /api/v1/alarms/{id}/ack      {"note":"..."} (optional)
//	POST /api/v1/alarms/{id}/resolve  {"note":"..."} (required)
func (m *Manager) Mount(s *api.Server) {
	s.Handle("GET /api/v1/alarms", api.RolePlatform, http.HandlerFunc(m.httpList))
	s.Handle("GET /api/v1/alarms/{id}", api.RolePlatform, http.HandlerFunc(m.httpGet))
	s.Handle("POST /api/v1/alarms/{id}/ack", api.RoleGuard, http.HandlerFunc(m.httpAck))
	s.Handle("POST /api/v1/alarms/{id}/resolve", api.RoleGuard, http.HandlerFunc(m.httpResolve))
}

type listResponse struct {
	Alarms []Alarm `json:"alarms"`
	// Next is the before= of the following page, empty on the last one.
	Next string `json:"next"`
}

func (m *Manager) httpList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, vs := range q {
		switch {
		case k != "state" && k != "limit" && k != "before":
			api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "unknown parameter %q (state, limit, before)", k))
			return
		case len(vs) > 1:
			api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "parameter %q given more than once", k))
			return
		}
	}
	state := State(q.Get("state"))
	if state != "" && !state.Valid() {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "state %q is not open, acknowledged or resolved", state))
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "limit %q is not a positive number", v))
			return
		}
		limit = min(n, 1000)
	}
	as, err := m.List(state, q.Get("before"), limit)
	if err != nil {
		m.writeErr(w, r, err)
		return
	}
	next := ""
	if len(as) == limit {
		next = as[len(as)-1].ID
	}
	api.WriteJSON(w, http.StatusOK, listResponse{Alarms: as, Next: next})
}

func (m *Manager) httpGet(w http.ResponseWriter, r *http.Request) {
	a, err := m.Get(r.PathValue("id"))
	if err != nil {
		m.writeErr(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, a)
}

func (m *Manager) httpAck(w http.ResponseWriter, r *http.Request) {
	m.act(w, r, m.Ack)
}

func (m *Manager) httpResolve(w http.ResponseWriter, r *http.Request) {
	m.act(w, r, m.Resolve)
}

type noteBody struct {
	Note string `json:"note"`
}

func (m *Manager) act(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, id, actor, note string) (*Alarm, error)) {
	body, err := readNote(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	p, _ := api.PrincipalFrom(r.Context())
	a, err := do(r.Context(), r.PathValue("id"), p.Name, body.Note)
	if err != nil {
		m.writeErr(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, a)
}

// readNote decodes {"note":"..."} strictly; an empty body means no note.
func readNote(r *http.Request) (noteBody, error) {
	var b noteBody
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return b, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "request body is over %d bytes", tooBig.Limit)
		}
		return b, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "request body: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return b, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "request body: %v (want {\"note\":\"...\"})", err)
	}
	if dec.More() {
		return b, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "request body: more than one JSON value")
	}
	return b, nil
}

func (m *Manager) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "%v", err))
	case errors.Is(err, ErrConflict):
		api.WriteError(w, api.Errorf(http.StatusConflict, CodeConflict, "%v", err))
	case errors.Is(err, ErrNoteRequired), errors.Is(err, ErrBadNote):
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err))
	default:
		m.log.Error("alarm: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		api.WriteError(w, fmt.Errorf("alarm: %w", err))
	}
}
