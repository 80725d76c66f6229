package console

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/audit"
)

func loginRole(r api.Role) bool { return r == api.RoleGuard || r == api.RoleAdmin }

func checkHash(h string) error {
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("password_hash is not a bcrypt hash: %w", err)
	}
	return nil
}

// dummyHash is a hash of a random password at the cost of like, compared
// when the username is unknown so that the answer takes as long.
func dummyHash(like string) []byte {
	cost, err := bcrypt.Cost([]byte(like))
	if err != nil {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(randomToken()), cost)
	if err != nil {
		return nil
	}
	return h
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Token    string `json:"token"`
}

// SessionInfo is the answer of a login and of GET /api/v1/session.
type SessionInfo struct {
	Name      string    `json:"name"`
	Role      api.Role  `json:"role"`
	Via       string    `json:"via"`                  // session or token
	CSRF      string    `json:"csrf,omitempty"`       // send it as X-CSRF-Token on POST/DELETE
	ExpiresAt time.Time `json:"expires_at,omitzero"`  // the session ends then
	TTL       float64   `json:"ttl_seconds,omitzero"` // SessionTTL, for the page
}

var errBadCredentials = errors.New("wrong username, password or token")

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if crossSite(r) {
		c.met.logins.WithLabelValues("cross_site").Inc()
		api.WriteError(w, api.Errorf(http.StatusForbidden, api.CodeForbidden, "cross-site login refused"))
		return
	}
	var req loginRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		c.met.logins.WithLabelValues("bad_request").Inc()
		api.WriteError(w, err)
		return
	}
	if (req.Token == "") == (req.Username == "") {
		c.met.logins.WithLabelValues("bad_request").Inc()
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, `give either "username" and "password", or "token"`))
		return
	}
	ip := clientIP(r)
	keys := []string{"ip:" + ip}
	if req.Username != "" {
		keys = append(keys, "user:"+req.Username)
	}
	if wait := c.limits.blocked(keys...); wait > 0 {
		c.met.logins.WithLabelValues("rate_limited").Inc()
		c.log.Warn("console: login rate limited", "user", req.Username, "remote", ip)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		api.WriteError(w, api.Errorf(http.StatusTooManyRequests, "rate_limited", "too many failed logins; try again in %d s", int(math.Ceil(wait.Seconds()))))
		return
	}
	s, err := c.verify(req)
	if err != nil {
		c.limits.fail(keys...)
		c.met.logins.WithLabelValues("bad_credentials").Inc()
		c.log.Warn("console: login failed", "user", req.Username, "token", req.Token != "", "remote", ip)
		api.WriteError(w, api.Errorf(http.StatusUnauthorized, api.CodeUnauthorized, "%v", err))
		return
	}
	if !loginRole(s.role) {
		c.met.logins.WithLabelValues("forbidden").Inc()
		api.WriteError(w, api.Errorf(http.StatusForbidden, api.CodeForbidden, "role %s may not use the console (guard or admin)", s.role))
		return
	}
	now := c.now()
	c.sessions.purge(now)
	s.created, s.expires, s.csrf = now, now.Add(c.o.SessionTTL), randomToken()
	v := c.sessions.add(s, now)
	c.setCookie(w, r, v, int(c.o.SessionTTL/time.Second))
	c.met.logins.WithLabelValues("ok").Inc()
	c.audit(s.name, "console.login", map[string]any{"via": s.via, "role": string(s.role), "remote": ip})
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusOK, c.info(s))
}

func (c *Console) info(s *session) SessionInfo {
	return SessionInfo{Name: s.name, Role: s.role, Via: "session", CSRF: s.csrf, ExpiresAt: s.expires.UTC(), TTL: c.o.SessionTTL.Seconds()}
}

// verify checks a username and password or a token. Unknown users cost a
// bcrypt comparison too.
func (c *Console) verify(req loginRequest) (*session, error) {
	if req.Token != "" {
		t, ok := c.tokens.Lookup(req.Token)
		if !ok {
			return nil, errBadCredentials
		}
		return &session{name: t.Name, role: t.Role, via: "token", bind: bindDigest(t.Digest[:])}, nil
	}
	u, ok := c.users[req.Username]
	hash := []byte(u.PasswordHash)
	if !ok {
		hash = c.dummy
	}
	if hash == nil || bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) != nil || !ok {
		return nil, errBadCredentials
	}
	return &session{name: u.Username, role: api.Role(u.Role), via: "user", bind: bindDigest([]byte(u.PasswordHash))}, nil
}

// bindDigest names the credential a session was opened with, so a changed
// password hash or token ends the session at the next restart.
func bindDigest(cred []byte) string {
	d := sha256.Sum256(append([]byte("warden-console-session\x00"), cred...))
	return hex.EncodeToString(d[:16])
}

// stillValid reports whether a restored session's user or token is still
// configured with the same role and credential.
func (c *Console) stillValid(s *session) bool {
	switch s.via {
	case "user":
		u, ok := c.users[s.name]
		return ok && api.Role(u.Role) == s.role && bindDigest([]byte(u.PasswordHash)) == s.bind
	case "token":
		for _, t := range c.tokens {
			if t.Name == s.name {
				return t.Role == s.role && bindDigest(t.Digest[:]) == s.bind && loginRole(t.Role)
			}
		}
	}
	return false
}

func (c *Console) whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := api.PrincipalFrom(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	if p.Via == "session" {
		if ck, err := r.Cookie(CookieName); err == nil {
			if s, ok := c.sessions.get(ck.Value, c.now()); ok {
				api.WriteJSON(w, http.StatusOK, c.info(s))
				return
			}
		}
	}
	api.WriteJSON(w, http.StatusOK, SessionInfo{Name: p.Name, Role: p.Role, Via: p.Via})
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	p, _ := api.PrincipalFrom(r.Context())
	if ck, err := r.Cookie(CookieName); err == nil && p.Via == "session" {
		c.sessions.remove(ck.Value)
		c.audit(p.Name, "console.logout", nil)
	}
	c.setCookie(w, r, "", -1)
	w.WriteHeader(http.StatusNoContent)
}

func (c *Console) audit(actor, action string, detail map[string]any) {
	if c.o.Audit == nil {
		return
	}
	if _, err := c.o.Audit.Record(audit.Entry{Actor: actor, Action: action, Target: "console", Detail: detail}); err != nil {
		c.log.Error("console: audit", "err", err)
	}
}

// clientIP is the peer address; forwarded headers are not trusted (the
// gateway is reached directly on the site network).
func clientIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// limiter counts failed logins per key (client IP, username) with token
// buckets. Only failures take tokens, so a guard who types correctly is
// never slowed; a key whose bucket is empty is refused before checking.
type limiter struct {
	mu    sync.Mutex
	every rate.Limit
	burst int
	max   int
	m     map[string]*rate.Limiter
}

func newLimiter(every rate.Limit, burst, max int) *limiter {
	return &limiter{every: every, burst: burst, max: max, m: map[string]*rate.Limiter{}}
}

// blocked returns how long until every key may try again, or 0.
func (l *limiter) blocked(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	var wait time.Duration
	for _, k := range keys {
		lim, ok := l.m[k]
		if !ok {
			continue
		}
		if lim.TokensAt(now) < 1 {
			r := lim.ReserveN(now, 1)
			wait = max(wait, r.DelayFrom(now))
			r.CancelAt(now)
		}
	}
	return wait
}

// fail takes one token from each key's bucket.
func (l *limiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.m)+len(keys) > l.max {
		// Full buckets carry no information: drop them first.
		for k, lim := range l.m {
			if lim.TokensAt(now) >= float64(l.burst) {
				delete(l.m, k)
			}
		}
	}
	for _, k := range keys {
		lim, ok := l.m[k]
		if !ok {
			if len(l.m) >= l.max {
				continue // bounded memory; the other key still counts
			}
			lim = rate.NewLimiter(l.every, l.burst)
			l.m[k] = lim
		}
		lim.AllowN(now, 1)
	}
}
