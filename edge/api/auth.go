package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/smartcommunity/warden/edge/config"
)

// Role is what a caller may do. Roles are ordered platform < guard < admin:
// platform reads (events, stream, media, devices, cameras); guard reads and
// acts (alarm ack/resolve, gate and valve actions); admin does everything
// (dead letters, gallery). A route names the least role it needs; RolePublic
// routes need no credentials.
type Role string

const (
	RolePublic   Role = "public"
	RolePlatform Role = "platform"
	RoleGuard    Role = "guard"
	RoleAdmin    Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RolePlatform:
		return 1
	case RoleGuard:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Allows reports whether a principal with role r may use a route that needs need.
func (r Role) Allows(need Role) bool {
	if need == RolePublic {
		return true
	}
	return r.rank() > 0 && r.rank() >= need.rank()
}

// Principal is an authenticated caller. Name is the token or user name, safe
// to log; the secret itself is never kept.
type Principal struct {
	Name string
	Role Role
	Via  string // "token" or "session"
}

// SessionAuth is the hook a console login plugs in: it reports the principal
// of a request that carries a valid session (cookie), or false. It is only
// asked when the request has no Authorization header.
type SessionAuth func(r *http.Request) (Principal, bool)

type ctxKey struct{}

// PrincipalFrom returns the caller of an authenticated request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Token is a configured API token, kept as its sha256 digest so plain and
// hashed ("sha256:<hex>") tokens compare the same way, in constant time.
type Token struct {
	Name   string
	Role   Role
	Digest [sha256.Size]byte
}

// Tokens are the configured tokens. The API and the console's token login
// share them: one parser, one comparison.
type Tokens []Token

// ParseToken reads one config token.
func ParseToken(t config.Token) (Token, error) {
	out := Token{Name: t.Name, Role: Role(t.Role)}
	if out.Role.rank() == 0 {
		return out, fmt.Errorf("token %q: role %q is not guard, platform or admin", t.Name, t.Role)
	}
	if h, ok := strings.CutPrefix(t.Token, "sha256:"); ok {
		b, err := hex.DecodeString(strings.ToLower(h))
		if err != nil || len(b) != sha256.Size {
			return out, fmt.Errorf("token %q: sha256: must be followed by 64 hex digits", t.Name)
		}
		copy(out.Digest[:], b)
		return out, nil
	}
	if t.Token == "" {
		return out, fmt.Errorf("token %q: empty", t.Name)
	}
	out.Digest = sha256.Sum256([]byte(t.Token))
	return out, nil
}

// ParseTokens reads config tokens; each bad one is skipped and reported
// through bad (config validation refuses them before the daemon starts).
func ParseTokens(ts []config.Token, bad func(error)) Tokens {
	var out Tokens
	for _, t := range ts {
		pt, err := ParseToken(t)
		if err != nil {
			bad(err)
			continue
		}
		out = append(out, pt)
	}
	return out
}

// Lookup compares against every token without stopping early, so timing
// says nothing about which token (or how much of it) matched.
func (ts Tokens) Lookup(presented string) (Token, bool) {
	d := sha256.Sum256([]byte(presented))
	var found Token
	match := 0
	for _, t := range ts {
		if subtle.ConstantTimeCompare(d[:], t.Digest[:]) == 1 && match == 0 {
			found, match = t, 1
		}
	}
	return found, match == 1
}

// CheckTokens reports the first token New would ignore as invalid.
func CheckTokens(ts []config.Token) error {
	for _, t := range ts {
		if _, err := ParseToken(t); err != nil {
			return err
		}
	}
	return nil
}

// authenticate returns the principal of r: ok=false with nil error means no
// credentials at all; an error means credentials that are wrong.
func (s *Server) authenticate(r *http.Request) (Principal, bool, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if s.opts.SessionAuth != nil {
			if p, ok := s.opts.SessionAuth(r); ok {
				if p.Via == "" {
					p.Via = "session"
				}
				return p, true, nil
			}
		}
		return Principal{}, false, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
		return Principal{}, false, fmt.Errorf("authorization is not a bearer token")
	}
	t, ok := s.tokens.Lookup(strings.TrimSpace(cred))
	if !ok {
		return Principal{}, false, fmt.Errorf("unknown token")
	}
	return Principal{Name: t.Name, Role: t.Role, Via: "token"}, true, nil
}

// guard wraps h with the role check of a route.
func (s *Server) guard(route string, need Role, h http.Handler) http.Handler {
	if need == RolePublic {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok, err := s.authenticate(r)
		if err != nil || !ok {
			reason := "missing"
			msg := "credentials required"
			if err != nil {
				reason, msg = "invalid", "invalid credentials"
			}
			s.met.authFailures.WithLabelValues(reason).Inc()
			s.log.Warn("api: unauthenticated request", "route", route, "reason", reason, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
			WriteError(w, Errorf(http.StatusUnauthorized, CodeUnauthorized, "%s", msg))
			return
		}
		if !p.Role.Allows(need) {
			s.met.authFailures.WithLabelValues("forbidden").Inc()
			s.log.Warn("api: role not allowed", "route", route, "principal", p.Name, "role", p.Role, "needs", need)
			WriteError(w, Errorf(http.StatusForbidden, CodeForbidden, "role %s may not use %s", p.Role, route))
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}
