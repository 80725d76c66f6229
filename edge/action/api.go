package action

import (
	"net/http"
	"strings"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/audit"
)

// CommandRequest is the body of POST /api/v1/devices/{id}/command.
type CommandRequest struct {
	Action string `json:"action"`
	Note   string `json:"note"`
}

// commandRole is the least role for an action on a kind; "" = not allowed.
// Reopening gas is admin-only: a valve closed by the interlock may still
// have a leak behind it.
func commandRole(kind, action string) api.Role {
	switch kind + "/" + action {
	case "barrier_gate/open", "barrier_gate/close", "siren/on", "siren/off", "gas_valve/close":
		return api.RoleGuard
	case "gas_valve/open":
		return api.RoleAdmin
	}
	return ""
}

// HTTP is the command handler (a valve open needs admin and a note) and
// the audit list (?after=&limit=); edge/api/routes.go serves them. Every
// command, refused ones included, is audited with the caller's name.
func (a *Actuators) HTTP() api.ActionHandlers {
	return api.ActionHandlers{Command: http.HandlerFunc(a.command), Audit: http.HandlerFunc(a.listAudit)}
}

func (a *Actuators) command(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p, _ := api.PrincipalFrom(r.Context())
	cfg, ok := a.Device(id)
	if !ok {
		api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no commandable device %q", id))
		return
	}
	var req CommandRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	need := commandRole(cfg.Kind, req.Action)
	if need == "" {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "action %q is not valid for a %s", req.Action, cfg.Kind))
		return
	}
	if len(req.Note) > 1000 {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "note is over 1000 bytes"))
		return
	}
	if !p.Role.Allows(need) {
		a.refused(id, req, p.Name, "forbidden: needs role "+string(need))
		api.WriteError(w, api.Errorf(http.StatusForbidden, api.CodeForbidden, "%s %s needs role %s", cfg.Kind, req.Action, need))
		return
	}
	req.Note = strings.TrimSpace(req.Note)
	if need == api.RoleAdmin && req.Note == "" {
		a.refused(id, req, p.Name, "refused: a note is required")
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "reopening a gas valve needs a note (why it is safe)"))
		return
	}
	if err := a.Do(id, req.Action, p.Name, req.Note); err != nil {
		api.WriteError(w, api.Errorf(http.StatusInternalServerError, api.CodeInternal, "%v", err))
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"device": id, "kind": cfg.Kind, "action": req.Action, "status": "sent"})
}

// refused audits an attempt that was not carried out.
func (a *Actuators) refused(id string, req CommandRequest, actor, why string) {
	a.log.Warn("device command refused", "device", id, "action", req.Action, "actor", actor, "why", why)
	if a.audit == nil {
		return
	}
	if _, err := a.audit.Record(audit.Entry{Actor: actor, Action: "device." + req.Action, Target: id,
		Detail: map[string]any{"note": req.Note}, Error: why}); err != nil {
		a.log.Error("audit record failed", "err", err)
	}
}

func (a *Actuators) listAudit(w http.ResponseWriter, r *http.Request) {
	if a.audit == nil {
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "audit log not configured"))
		return
	}
	after, limit, err := api.Page(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	es, err := a.audit.List(after, limit)
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusInternalServerError, api.CodeInternal, "audit: %v", err))
		return
	}
	next := after
	if len(es) > 0 {
		next = es[len(es)-1].ID
	}
	if es == nil {
		es = []audit.Entry{}
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusOK, map[string]any{"entries": es, "next": next})
}
