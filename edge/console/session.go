package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/api"
)

// CookieName is the session cookie; CSRFHeader carries the session's CSRF
// token on every state-changing request made with the cookie.
const (
	CookieName = "warden_session"
	CSRFHeader = "X-CSRF-Token"
)

// session is one login. Sessions are kept in the gateway's bbolt file (when
// Options.DB is set) so that a restart logs nobody out; the map is the
// working copy.
type session struct {
	name    string
	role    api.Role
	via     string // "user" or "token"
	bind    string // digest of the credential logged in with; a changed password or token ends the session
	csrf    string
	created time.Time
	expires time.Time
}

// storedSession is a session's record in the sessionBucket. The key is
// sha256(cookie value): the file never holds a usable cookie.
type storedSession struct {
	Name    string    `json:"name"`
	Role    api.Role  `json:"role"`
	Via     string    `json:"via"`
	Bind    string    `json:"bind"`
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

var sessionBucket = []byte("console.sessions")

type sessionKey = [sha256.Size]byte

// sessions maps sha256(cookie value) to a session, so a memory dump, the
// database file or a timing difference in the map lookup never reveals a
// usable cookie.
type sessions struct {
	mu  sync.Mutex
	m   map[sessionKey]*session
	max int
	met *metrics
	db  *bbolt.DB // nil: memory only
	log *slog.Logger
}

func newSessions(max int, met *metrics, db *bbolt.DB, log *slog.Logger) *sessions {
	return &sessions{m: map[sessionKey]*session{}, max: max, met: met, db: db, log: log}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux; it panics rather than return short
	return base64.RawURLEncoding.EncodeToString(b)
}

// load reads the stored sessions. An expired one, or one whose user or token
// is gone, has another role or another credential now (valid says), is
// deleted.
func (ss *sessions) load(now time.Time, valid func(*session) bool) (kept, dropped int, err error) {
	if ss.db == nil {
		return 0, 0, nil
	}
	var stale [][]byte
	err = ss.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(sessionBucket)
		if err != nil {
			return err
		}
		err = b.ForEach(func(k, v []byte) error {
			var r storedSession
			if len(k) != sha256.Size || json.Unmarshal(v, &r) != nil {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			s := &session{name: r.Name, role: r.Role, via: r.Via, bind: r.Bind, csrf: r.CSRF, created: r.Created, expires: r.Expires}
			if !now.Before(s.expires) || !valid(s) {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			ss.m[sessionKey(k)] = s
			return nil
		})
		if err != nil {
			return err
		}
		// ForEach must not change its bucket: delete afterwards.
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		clear(ss.m)
		return 0, 0, fmt.Errorf("console: load sessions: %w", err)
	}
	ss.met.sessions.Set(float64(len(ss.m)))
	return len(ss.m), len(stale), nil
}

// add stores s under a new cookie value and returns the value. A session the
// disk cannot keep still works until the next restart.
func (ss *sessions) add(s *session, now time.Time) string {
	v := randomToken()
	k := sha256.Sum256([]byte(v))
	ss.mu.Lock()
	var evicted []sessionKey
	if len(ss.m) >= ss.max {
		evicted = ss.purgeLocked(now)
	}
	for len(ss.m) >= ss.max {
		var oldest sessionKey
		var t time.Time
		for k, x := range ss.m {
			if t.IsZero() || x.created.Before(t) {
				oldest, t = k, x.created
			}
		}
		delete(ss.m, oldest)
		evicted = append(evicted, oldest)
	}
	ss.m[k] = s
	ss.met.sessions.Set(float64(len(ss.m)))
	ss.mu.Unlock()
	ss.persist(k, s, evicted)
	return v
}

// persist writes s under k (s nil: nothing) and deletes gone, in one
// transaction.
func (ss *sessions) persist(k sessionKey, s *session, gone []sessionKey) {
	if ss.db == nil || (s == nil && len(gone) == 0) {
		return
	}
	err := ss.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(sessionBucket)
		if err != nil {
			return err
		}
		for _, g := range gone {
			if err := b.Delete(g[:]); err != nil {
				return err
			}
		}
		if s == nil {
			return nil
		}
		v, err := json.Marshal(storedSession{Name: s.name, Role: s.role, Via: s.via, Bind: s.bind, CSRF: s.csrf,
			Created: s.created.UTC(), Expires: s.expires.UTC()})
		if err != nil {
			return err
		}
		return b.Put(k[:], v)
	})
	if err != nil {
		ss.met.storeErrors.Inc()
		ss.log.Warn("console: session not stored; it lasts until the next restart", "err", err)
	}
}

// get returns the live session of a cookie value; an expired one is removed.
func (ss *sessions) get(v string, now time.Time) (*session, bool) {
	k := sha256.Sum256([]byte(v))
	ss.mu.Lock()
	s, ok := ss.m[k]
	if !ok {
		ss.mu.Unlock()
		return nil, false
	}
	if !now.Before(s.expires) {
		delete(ss.m, k)
		ss.met.sessions.Set(float64(len(ss.m)))
		ss.mu.Unlock()
		ss.persist(k, nil, []sessionKey{k})
		return nil, false
	}
	ss.mu.Unlock()
	return s, true
}

func (ss *sessions) remove(v string) {
	k := sha256.Sum256([]byte(v))
	ss.mu.Lock()
	delete(ss.m, k)
	ss.met.sessions.Set(float64(len(ss.m)))
	ss.mu.Unlock()
	ss.persist(k, nil, []sessionKey{k})
}

func (ss *sessions) purge(now time.Time) {
	ss.mu.Lock()
	gone := ss.purgeLocked(now)
	ss.mu.Unlock()
	ss.persist(sessionKey{}, nil, gone)
}

func (ss *sessions) purgeLocked(now time.Time) []sessionKey {
	var gone []sessionKey
	for k, s := range ss.m {
		if !now.Before(s.expires) {
			delete(ss.m, k)
			gone = append(gone, k)
		}
	}
	ss.met.sessions.Set(float64(len(ss.m)))
	return gone
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
