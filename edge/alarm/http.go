package alarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/i18n"
)

// CodeConflict is the error code of a 409: the alarm's state does not allow
// the action (acknowledging twice, resolving a resolved alarm).
const CodeConflict = "conflict"

// HTTP is the alarm handlers; edge/api/routes.go serves them, reading for
// the platform role (guards and admins read too), acting for guards:
//
//	List     ?state=open|acknowledged|resolved&limit=&before=
//	Get      one alarm
//	Stats    ?day=YYYY-MM-DD (default today, local time)
//	Duty     the duty roster
//	Ack      {"note":"..."} (optional)
//	Resolve  {"note":"...","outcome":"real|false_alarm|test|duplicate"} (note required, outcome optional)
//	Assign   {"to":"<guard>","note":"..."}
//	Accept   (the assigned guard)
//	OnScene  {"note":"..."}
func (m *Manager) HTTP() api.AlarmHandlers {
	return api.AlarmHandlers{
		List:  http.HandlerFunc(m.httpList),
		Stats: http.HandlerFunc(m.httpStats),
		Duty: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.WriteJSON(w, http.StatusOK, map[string]any{"duty": append([]string{}, m.o.Duty...), "accept_within_seconds": m.o.AcceptWithin.Seconds()})
		}),
		Get: http.HandlerFunc(m.httpGet),
		Ack: m.action(func(ctx context.Context, id, actor string, b actBody) (*Alarm, error) {
			return m.Ack(ctx, id, actor, b.Note)
		}),
		Resolve: m.action(func(ctx context.Context, id, actor string, b actBody) (*Alarm, error) {
			return m.ResolveAs(ctx, id, actor, b.Note, b.Outcome)
		}, "outcome"),
		Assign: m.action(func(ctx context.Context, id, actor string, b actBody) (*Alarm, error) {
			return m.Assign(ctx, id, actor, b.To, b.Note)
		}, "to"),
		Accept: m.action(func(ctx context.Context, id, actor string, b actBody) (*Alarm, error) {
			return m.Accept(ctx, id, actor)
		}),
		OnScene: m.action(func(ctx context.Context, id, actor string, b actBody) (*Alarm, error) {
			return m.OnScene(ctx, id, actor, b.Note)
		}),
	}
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
	for i := range as {
		m.localise(r, &as[i])
	}
	api.WriteJSON(w, http.StatusOK, listResponse{Alarms: as, Next: next})
}

func (m *Manager) httpGet(w http.ResponseWriter, r *http.Request) {
	a, err := m.Get(r.PathValue("id"))
	if err != nil {
		m.writeErr(w, r, err)
		return
	}
	m.localise(r, a)
	api.WriteJSON(w, http.StatusOK, a)
}

// localise writes a's title in the language the request asks for
// (Accept-Language); stored titles are zh-CN.
func (m *Manager) localise(r *http.Request, a *Alarm) {
	if lang := i18n.Pick(r.Header.Get("Accept-Language")); lang != i18n.ZH {
		a.Title = TitleIn(lang, a, m.o.Places)
	}
}

// actBody is the body of every action: note, plus the fields the action
// takes (outcome for resolve, to for assign).
type actBody struct {
	Note    string `json:"note"`
	Outcome string `json:"outcome"`
	To      string `json:"to"`
}

// action wraps do as a handler; fields names the body keys besides note
// that it accepts.
func (m *Manager) action(do func(ctx context.Context, id, actor string, b actBody) (*Alarm, error), fields ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err != nil {
			api.WriteError(w, err)
			return
		}
		for k, v := range map[string]string{"outcome": body.Outcome, "to": body.To} {
			if v != "" && !slices.Contains(fields, k) {
				api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "request body: %q is not taken here", k))
				return
			}
		}
		p, _ := api.PrincipalFrom(r.Context())
		a, err := do(r.Context(), r.PathValue("id"), p.Name, body)
		if err != nil {
			m.writeErr(w, r, err)
			return
		}
		m.localise(r, a)
		api.WriteJSON(w, http.StatusOK, a)
	})
}

// readBody decodes the action body strictly; an empty body is all empty.
func readBody(r *http.Request) (actBody, error) {
	var b actBody
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
	case errors.Is(err, ErrNotAssignee):
		api.WriteError(w, api.Errorf(http.StatusForbidden, api.CodeForbidden, "%v", err))
	case errors.Is(err, ErrNoteRequired), errors.Is(err, ErrBadNote), errors.Is(err, ErrBadRequest):
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err))
	default:
		m.log.Error("alarm: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		api.WriteError(w, fmt.Errorf("alarm: %w", err))
	}
}
