package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/smartcommunity/warden/edge/api"
)

// CookieName is the session cookie; CSRFHeader carries the session's CSRF
// token on every state-changing request made with the cookie.
const (
	CookieName = "warden_session"
	CSRFHeader = "X-CSRF-Token"
)

// session is one login. Sessions live in memory only: a gateway restart logs
// every guard out (docs/console.md).
type session struct {
	name    string
	role    api.Role
	via     string // "user" or "token"
	csrf    string
	created time.Time
	expires time.Time
}

// sessions maps sha256(cookie value) to a session, so a memory dump or a
// timing difference in the map lookup never reveals a usable cookie.
type sessions struct {
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*session
	max int
	met *metrics
}

func newSessions(max int, met *metrics) *sessions {
	return &sessions{m: map[[sha256.Size]byte]*session{}, max: max, met: met}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux; it panics rather than return short
	return base64.RawURLEncoding.EncodeToString(b)
}

// add stores s under a new cookie value and returns the value.
func (ss *sessions) add(s *session, now time.Time) string {
	v := randomToken()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.max {
		ss.purgeLocked(now)
	}
	for len(ss.m) >= ss.max {
		var oldest [sha256.Size]byte
		var t time.Time
		for k, x := range ss.m {
			if t.IsZero() || x.created.Before(t) {
				oldest, t = k, x.created
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(v))] = s
	ss.met.sessions.Set(float64(len(ss.m)))
	return v
}

// get returns the live session of a cookie value; an expired one is removed.
func (ss *sessions) get(v string, now time.Time) (*session, bool) {
	k := sha256.Sum256([]byte(v))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[k]
	if !ok {
		return nil, false
	}
	if !now.Before(s.expires) {
		delete(ss.m, k)
		ss.met.sessions.Set(float64(len(ss.m)))
		return nil, false
	}
	return s, true
}

func (ss *sessions) remove(v string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(v)))
	ss.met.sessions.Set(float64(len(ss.m)))
}

func (ss *sessions) purge(now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.purgeLocked(now)
}

func (ss *sessions) purgeLocked(now time.Time) {
	for k, s := range ss.m {
		if !now.Before(s.expires) {
			delete(ss.m, k)
		}
	}
	ss.met.sessions.Set(float64(len(ss.m)))
}

// safeMethod reports methods that change nothing and so need no CSRF token.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// SessionAuth is the api.Options.SessionAuth hook: it accepts the session
// cookie, and for state-changing methods only together with the session's
// CSRF token in the X-CSRF-Token header and no cross-site origin. A request
// it refuses gets the API's 401.
func (c *Console) SessionAuth(r *http.Request) (api.Principal, bool) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return api.Principal{}, false
	}
	s, ok := c.sessions.get(ck.Value, c.now())
	if !ok {
		c.met.sessionRefused.WithLabelValues("unknown_or_expired").Inc()
		return api.Principal{}, false
	}
	if !safeMethod(r.Method) {
		if reason := c.csrfProblem(r, s); reason != "" {
			c.met.sessionRefused.WithLabelValues(reason).Inc()
			c.log.Warn("console: state-changing request refused", "reason", reason, "user", s.name,
				"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			return api.Principal{}, false
		}
	}
	return api.Principal{Name: s.name, Role: s.role, Via: "session"}, true
}

// csrfProblem returns why a cookie-authenticated state-changing request is
// refused, or "".
func (c *Console) csrfProblem(r *http.Request, s *session) string {
	if crossSite(r) {
		return "cross_site"
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		return "csrf_missing"
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
		return "csrf_mismatch"
	}
	return ""
}

// crossSite reports a request that a browser says came from another site:
// Sec-Fetch-Site, or an Origin whose host is not the one addressed.
func crossSite(r *http.Request) bool {
	if sf := r.Header.Get("Sec-Fetch-Site"); sf == "cross-site" || sf == "same-site" {
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	if o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err != nil || u.Host != r.Host
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.o.Secure || r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}
