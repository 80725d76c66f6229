package gate

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/event"
)

var passBucket = []byte("gate.passes")

// MaxPassDuration bounds a visitor pass; longer stays belong in the allow list.
const MaxPassDuration = 90 * 24 * time.Hour

// PruneAfter is how long an ended pass is kept (for the record) before Run drops it.
const PruneAfter = 7 * 24 * time.Hour

// Pass is a visitor's plate allowed between From and Until, at Gates (all
// when empty).
type Pass struct {
	ID        string    `json:"id"`
	Plate     string    `json:"plate"`
	From      time.Time `json:"from"`
	Until     time.Time `json:"until"`
	Note      string    `json:"note,omitempty"`
	Gates     []string  `json:"gates,omitempty"`
	CreatedBy string    `json:"created_by"`
	Created   time.Time `json:"created"`
	Active    bool      `json:"active"` // computed when listed

	plate string // normalised
}

func (c *Controller) loadPasses() error {
	if c.o.DB == nil {
		return nil
	}
	return c.o.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(passBucket)
		if err != nil {
			return fmt.Errorf("gate: create bucket: %w", err)
		}
		return b.ForEach(func(k, v []byte) error {
			var p Pass
			if err := json.Unmarshal(v, &p); err != nil {
				c.log.Warn("ignoring damaged visitor pass", "id", string(k), "err", err)
				return nil
			}
			p.plate = Normalize(p.Plate)
			c.passes[p.ID] = p
			return nil
		})
	})
}

func (c *Controller) prunePasses() {
	if c.o.DB == nil {
		return
	}
	cut := c.o.Now().Add(-PruneAfter)
	var old []string
	c.mu.RLock()
	for id, p := range c.passes {
		if p.Until.Before(cut) {
			old = append(old, id)
		}
	}
	c.mu.RUnlock()
	if len(old) == 0 {
		return
	}
	err := c.o.DB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(passBucket)
		for _, id := range old {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.log.Error("prune visitor passes", "err", err)
		return
	}
	c.mu.Lock()
	for _, id := range old {
		delete(c.passes, id)
	}
	c.mu.Unlock()
	c.log.Info("pruned ended visitor passes", "count", len(old))
}

// Passes lists every stored pass, by start time.
func (c *Controller) Passes() []Pass {
	now := c.o.Now()
	c.mu.RLock()
	out := make([]Pass, 0, len(c.passes))
	for _, p := range c.passes {
		p.Active = !now.Before(p.From) && now.Before(p.Until)
		out = append(out, p)
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Pass) int {
		if d := a.From.Compare(b.From); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// PassRequest is the body of POST /api/v1/gate/passes. From defaults to now.
type PassRequest struct {
	Plate string    `json:"plate"`
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	Note  string    `json:"note"`
	Gates []string  `json:"gates"`
}

// AddPass validates and stores a pass; errors are *api.Error (400).
func (c *Controller) AddPass(req PassRequest, actor string) (Pass, error) {
	now := c.o.Now()
	bad := func(f string, a ...any) (Pass, error) {
		return Pass{}, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, f, a...)
	}
	n := Normalize(req.Plate)
	if n == "" || len(n) > 32 {
		return bad("plate %q is not a plate", req.Plate)
	}
	if req.From.IsZero() {
		req.From = now
	}
	switch {
	case req.Until.IsZero():
		return bad("until is required (RFC 3339)")
	case !req.Until.After(req.From):
		return bad("until must be after from")
	case !req.Until.After(now):
		return bad("until is in the past")
	case req.Until.Sub(req.From) > MaxPassDuration:
		return bad("a pass may last at most %s; use the allow list for longer", MaxPassDuration)
	case len(req.Note) > 500:
		return bad("note is over 500 bytes")
	}
	for _, g := range req.Gates {
		if !c.gates[g] {
			return bad("gate %q is not a barrier_gate device", g)
		}
	}
	if c.o.DB == nil {
		return Pass{}, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "visitor passes need the store")
	}
	p := Pass{ID: event.NewID(now), Plate: req.Plate, From: req.From.UTC(), Until: req.Until.UTC(), Note: req.Note,
		Gates: req.Gates, CreatedBy: actor, Created: now.UTC(), plate: n}
	v, err := json.Marshal(p)
	if err != nil {
		return Pass{}, err
	}
	err = c.o.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(passBucket).Put([]byte(p.ID), v) })
	c.audit(audit.Entry{Actor: actor, Action: "gate.pass.create", Target: p.ID,
		Detail: map[string]any{"plate": p.Plate, "from": p.From, "until": p.Until, "gates": p.Gates, "note": p.Note}}, err)
	if err != nil {
		return Pass{}, fmt.Errorf("gate: store pass: %w", err)
	}
	c.mu.Lock()
	c.passes[p.ID] = p
	c.mu.Unlock()
	p.Active = !now.Before(p.From) && now.Before(p.Until)
	return p, nil
}

// DeletePass removes a pass; false when there is none with that id.
func (c *Controller) DeletePass(id, actor string) (Pass, bool, error) {
	c.mu.RLock()
	p, ok := c.passes[id]
	c.mu.RUnlock()
	if !ok || c.o.DB == nil {
		return Pass{}, false, nil
	}
	err := c.o.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(passBucket).Delete([]byte(id)) })
	c.audit(audit.Entry{Actor: actor, Action: "gate.pass.delete", Target: id, Detail: map[string]any{"plate": p.Plate}}, err)
	if err != nil {
		return Pass{}, true, fmt.Errorf("gate: delete pass: %w", err)
	}
	c.mu.Lock()
	delete(c.passes, id)
	c.mu.Unlock()
	return p, true, nil
}

func (c *Controller) audit(e audit.Entry, err error) {
	if c.o.Audit == nil {
		return
	}
	if err != nil {
		e.Error = err.Error()
	}
	if _, aerr := c.o.Audit.Record(e); aerr != nil {
		c.log.Error("audit record failed", "action", e.Action, "err", aerr)
	}
}

// HTTP is the visitor pass handlers (edge/api/routes.go serves them):
// create, list and delete a pass.
func (c *Controller) HTTP() api.GateHandlers {
	return api.GateHandlers{CreatePass: http.HandlerFunc(c.postPass), ListPasses: http.HandlerFunc(c.listPasses),
		DeletePass: http.HandlerFunc(c.deletePass)}
}

func actorOf(r *http.Request) string {
	if p, ok := api.PrincipalFrom(r.Context()); ok {
		return p.Name
	}
	return "unknown"
}

func (c *Controller) postPass(w http.ResponseWriter, r *http.Request) {
	var req PassRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	p, err := c.AddPass(req, actorOf(r))
	if err != nil {
		c.log.Warn("visitor pass rejected", "actor", actorOf(r), "err", err)
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, p)
}

func (c *Controller) listPasses(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusOK, map[string]any{"passes": c.Passes()})
}

func (c *Controller) deletePass(w http.ResponseWriter, r *http.Request) {
	p, ok, err := c.DeletePass(r.PathValue("id"), actorOf(r))
	switch {
	case err != nil:
		api.WriteError(w, err)
	case !ok:
		api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no visitor pass %q", r.PathValue("id")))
	default:
		api.WriteJSON(w, http.StatusOK, map[string]any{"deleted": p})
	}
}
