package zones

import (
	"errors"
	"net/http"
	"time"

	"github.com/smartcommunity/warden/edge/api"
)

// HTTP is the zone list and the arm, disarm and auto overrides
// (edge/api/routes.go serves them).
func (z *Zones) HTTP() api.ZoneHandlers {
	return api.ZoneHandlers{
		List: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			api.WriteJSON(w, http.StatusOK, map[string]any{"zones": z.States()})
		}),
		Arm: z.override("arm"), Disarm: z.override("disarm"), Auto: z.override("auto"),
	}
}

// overrideBody is the optional body: until is RFC 3339 or a duration from
// now ("2h"); empty = until the schedule next changes the zone's state.
type overrideBody struct {
	Until string `json:"until"`
	Note  string `json:"note"`
}

func (z *Zones) override(verb string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b overrideBody
		if r.ContentLength != 0 {
			if err := api.DecodeJSON(r, &b); err != nil && !isEmpty(err) {
				api.WriteError(w, err)
				return
			}
		}
		if len(b.Note) > 1000 {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "note is over 1000 bytes"))
			return
		}
		actor := "unknown"
		if p, ok := api.PrincipalFrom(r.Context()); ok {
			actor = p.Name
		}
		name := r.PathValue("name")
		var st State
		var err error
		if verb == "auto" {
			if b.Until != "" {
				api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "auto takes no until"))
				return
			}
			st, err = z.Clear(name, actor, b.Note)
		} else {
			until, perr := z.parseUntil(b.Until)
			if perr != nil {
				api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "until: %v", perr))
				return
			}
			st, err = z.Set(name, verb == "arm", until, actor, b.Note)
		}
		switch {
		case errors.Is(err, ErrUnknownZone):
			api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "%v", err))
		case errors.Is(err, ErrPast):
			api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err))
		case err != nil:
			api.WriteError(w, err)
		default:
			api.WriteJSON(w, http.StatusOK, st)
		}
	})
}

func isEmpty(err error) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Message == "request body is empty"
}

func (z *Zones) parseUntil(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, errors.New("a duration must be positive")
		}
		return z.opts.Now().Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2026-11-25T06:00:00+08:00) or a duration (2h)")
	}
	return t, nil
}
