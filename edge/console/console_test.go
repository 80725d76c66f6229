package console

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/store"
)

const (
	guardToken    = "guard-token-0123456789"
	adminToken    = "admin-token-0123456789"
	platformToken = "platform-token-0123456789"
)

type fixture struct {
	t     *testing.T
	dir   string
	st    *store.Store
	c     *Console
	srv   *httptest.Server
	audit *audit.Log
	reg   *prometheus.Registry

	mu  sync.Mutex
	now time.Time
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	return newFixtureAt(t, t.TempDir(), time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC), mod)
}

// newFixtureAt opens the store in dir, as a gateway (re)starting there would.
func newFixtureAt(t *testing.T, dir string, now time.Time, mod func(*Options)) *fixture {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	al, err := audit.New(st.DB(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	hash := wangHash()
	tokens := []config.Token{
		{Name: "desk", Token: guardToken, Role: "guard"},
		{Name: "boss", Token: adminToken, Role: "admin"},
		{Name: "platform", Token: platformToken, Role: "platform"},
	}
	f := &fixture{t: t, dir: dir, st: st, audit: al, reg: prometheus.NewRegistry(), now: now}
	o := Options{
		DB:         st.DB(),
		Users:      []config.APIUser{{Username: "wang", PasswordHash: string(hash), Role: "guard"}},
		Tokens:     tokens,
		SessionTTL: time.Hour,
		Audit:      al,
		Logger:     quiet(),
		Registerer: f.reg,
	}
	if mod != nil {
		mod(&o)
	}
	c, err := newAt(o, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	s := api.New(api.Options{Events: st, Media: st, Tokens: tokens, SessionAuth: c.SessionAuth, Logger: quiet()})
	s.Mount(api.Handlers{Console: c.HTTP()})
	s.Handle("POST /api/v1/test/act", api.RoleGuard, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := api.PrincipalFrom(r.Context())
		api.WriteJSON(w, http.StatusOK, p)
	}))
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// wangHash is the guard's password hash, the same for every fixture, as
// one config file across restarts.
var wangHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("night-shift"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return h
})

// stop ends the "gateway": server and store closed.
func (f *fixture) stop() {
	f.srv.Close()
	if err := f.st.Close(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// do sends a request; cookie and csrf may be empty.
func (f *fixture) do(method, path, body string, hdr map[string]string) *http.Response {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type login struct {
	cookie string
	info   SessionInfo
	resp   *http.Response
}

func (f *fixture) login(body string) login {
	f.t.Helper()
	resp := f.do("POST", "/api/v1/session", body, nil)
	l := login{resp: resp}
	if resp.StatusCode != http.StatusOK {
		return l
	}
	if err := json.NewDecoder(resp.Body).Decode(&l.info); err != nil {
		f.t.Fatal(err)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == CookieName {
			l.cookie = ck.Name + "=" + ck.Value
		}
	}
	return l
}

func TestLoginWithTokenAndUser(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, body string
		code       int
		who        string
		role       api.Role
	}{
		{"guard token", `{"token":"` + guardToken + `"}`, 200, "desk", api.RoleGuard},
		{"admin token", `{"token":"` + adminToken + `"}`, 200, "boss", api.RoleAdmin},
		{"user", `{"username":"wang","password":"night-shift"}`, 200, "wang", api.RoleGuard},
		{"wrong token", `{"token":"nope"}`, 401, "", ""},
		{"wrong password", `{"username":"wang","password":"day-shift"}`, 401, "", ""},
		{"unknown user", `{"username":"li","password":"night-shift"}`, 401, "", ""},
		{"platform token may not log in", `{"token":"` + platformToken + `"}`, 403, "", ""},
		{"both", `{"token":"x","username":"wang"}`, 400, "", ""},
		{"unknown field", `{"user":"wang"}`, 400, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := f.login(tc.body)
			if l.resp.StatusCode != tc.code {
				b, _ := io.ReadAll(l.resp.Body)
				t.Fatalf("status %d, want %d: %s", l.resp.StatusCode, tc.code, b)
			}
			if tc.code != 200 {
				if l.cookie != "" || len(l.resp.Cookies()) > 0 {
					t.Fatalf("a refused login set a cookie")
				}
				return
			}
			if l.info.Name != tc.who || l.info.Role != tc.role || l.info.CSRF == "" || l.cookie == "" {
				t.Fatalf("login = %+v cookie %q", l.info, l.cookie)
			}
			resp := f.do("GET", "/api/v1/session", "", map[string]string{"Cookie": l.cookie})
			var who SessionInfo
			json.NewDecoder(resp.Body).Decode(&who)
			if resp.StatusCode != 200 || who.Name != tc.who || who.Via != "session" || who.CSRF != l.info.CSRF {
				t.Fatalf("whoami %d %+v", resp.StatusCode, who)
			}
		})
	}
	if got := testutil.ToFloat64(f.c.met.logins.WithLabelValues("bad_credentials")); got != 3 {
		t.Errorf("bad_credentials = %v, want 3", got)
	}
	entries, err := f.audit.List(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Action != "console.login" || entries[0].Actor != "desk" {
		t.Errorf("audit = %+v, want three console.login entries", entries)
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		f := newFixture(t, func(o *Options) { o.Secure = secure })
		l := f.login(`{"token":"` + guardToken + `"}`)
		var ck *http.Cookie
		for _, c := range l.resp.Cookies() {
			if c.Name == CookieName {
				ck = c
			}
		}
		if ck == nil {
			t.Fatal("no session cookie")
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure != secure || ck.Path != "/" || ck.MaxAge != 3600 {
			t.Errorf("secure=%v: cookie %+v", secure, ck)
		}
		if len(ck.Value) < 40 {
			t.Errorf("cookie value %q is too short to be unguessable", ck.Value)
		}
	}
}

func TestCSRFOnStateChangingRequests(t *testing.T) {
	f := newFixture(t, nil)
	l := f.login(`{"token":"` + guardToken + `"}`)
	ck := map[string]string{"Cookie": l.cookie}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"Cookie": l.cookie}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	host := strings.TrimPrefix(f.srv.URL, "http://")
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"no csrf header", ck, 401},
		{"wrong csrf header", with(CSRFHeader, "forged"), 401},
		{"cross-site with the right token", with(CSRFHeader, l.info.CSRF, "Origin", "http://evil.example"), 401},
		{"sec-fetch-site cross-site", with(CSRFHeader, l.info.CSRF, "Sec-Fetch-Site", "cross-site"), 401},
		{"null origin", with(CSRFHeader, l.info.CSRF, "Origin", "null"), 401},
		{"same origin with token", with(CSRFHeader, l.info.CSRF, "Origin", "http://"+host, "Sec-Fetch-Site", "same-origin"), 200},
		{"token without origin (old browser, curl)", with(CSRFHeader, l.info.CSRF), 200},
		{"bearer token needs no csrf", map[string]string{"Authorization": "Bearer " + guardToken}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.do("POST", "/api/v1/test/act", `{}`, tc.hdr)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
		})
	}
	// Reading needs no CSRF token.
	if resp := f.do("GET", "/api/v1/session", "", ck); resp.StatusCode != 200 {
		t.Fatalf("GET with cookie: %d", resp.StatusCode)
	}
	if got := testutil.ToFloat64(f.c.met.sessionRefused.WithLabelValues("csrf_missing")); got != 1 {
		t.Errorf("csrf_missing = %v", got)
	}
	// A cross-site login is refused too (login CSRF).
	resp := f.do("POST", "/api/v1/session", `{"token":"`+guardToken+`"}`, map[string]string{"Origin": "http://evil.example"})
	if resp.StatusCode != 403 {
		t.Fatalf("cross-site login: %d", resp.StatusCode)
	}
}

func TestSessionExpiresAndLogout(t *testing.T) {
	f := newFixture(t, nil)
	l := f.login(`{"username":"wang","password":"night-shift"}`)
	ck := map[string]string{"Cookie": l.cookie}
	f.advance(59 * time.Minute)
	if resp := f.do("GET", "/api/v1/session", "", ck); resp.StatusCode != 200 {
		t.Fatalf("before expiry: %d", resp.StatusCode)
	}
	f.advance(time.Minute)
	if resp := f.do("GET", "/api/v1/session", "", ck); resp.StatusCode != 401 {
		t.Fatalf("expired session: %d, want 401", resp.StatusCode)
	}
	if resp := f.do("POST", "/api/v1/test/act", `{}`, map[string]string{"Cookie": l.cookie, CSRFHeader: l.info.CSRF}); resp.StatusCode != 401 {
		t.Fatalf("expired session POST: %d, want 401", resp.StatusCode)
	}

	l = f.login(`{"username":"wang","password":"night-shift"}`)
	if resp := f.do("DELETE", "/api/v1/session", "", map[string]string{"Cookie": l.cookie}); resp.StatusCode != 401 {
		t.Fatalf("logout without csrf: %d, want 401", resp.StatusCode)
	}
	resp := f.do("DELETE", "/api/v1/session", "", map[string]string{"Cookie": l.cookie, CSRFHeader: l.info.CSRF})
	if resp.StatusCode != 204 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if cks := resp.Cookies(); len(cks) != 1 || cks[0].MaxAge >= 0 {
		t.Errorf("logout should clear the cookie: %+v", cks)
	}
	if resp := f.do("GET", "/api/v1/session", "", map[string]string{"Cookie": l.cookie}); resp.StatusCode != 401 {
		t.Fatalf("after logout: %d, want 401", resp.StatusCode)
	}
	if got := testutil.ToFloat64(f.c.met.sessions); got != 0 {
		t.Errorf("sessions gauge = %v, want 0", got)
	}
}

func TestFailedLoginsAreRateLimited(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.LoginBurst = 3 })
	for i := range 3 {
		if l := f.login(`{"username":"wang","password":"wrong"}`); l.resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, l.resp.StatusCode)
		}
	}
	// Even the right password is refused now, with a Retry-After.
	l := f.login(`{"username":"wang","password":"night-shift"}`)
	if l.resp.StatusCode != http.StatusTooManyRequests || l.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 3 failures: %d Retry-After %q", l.resp.StatusCode, l.resp.Header.Get("Retry-After"))
	}
	// The client IP is limited too: a token login from it is refused.
	if l := f.login(`{"token":"` + guardToken + `"}`); l.resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("same IP, token: %d", l.resp.StatusCode)
	}
	if got := testutil.ToFloat64(f.c.met.logins.WithLabelValues("rate_limited")); got != 2 {
		t.Errorf("rate_limited = %v", got)
	}

	// Per user: failures against one user from many IPs lock that user only.
	lim := newLimiter(1e-9, 2, 100)
	lim.fail("ip:a", "user:wang")
	lim.fail("ip:b", "user:wang")
	if lim.blocked("ip:c", "user:wang") == 0 {
		t.Error("user not limited after two failures from two IPs")
	}
	if lim.blocked("ip:c", "user:li") != 0 {
		t.Error("another user from a fresh IP is limited")
	}
	// Successful logins take nothing.
	f2 := newFixture(t, func(o *Options) { o.LoginBurst = 1 })
	for i := range 5 {
		if l := f2.login(`{"token":"` + guardToken + `"}`); l.resp.StatusCode != 200 {
			t.Fatalf("good login %d: %d", i, l.resp.StatusCode)
		}
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	lim := newLimiter(1, 1, 50)
	for i := range 500 {
		lim.fail("ip:" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	if n := len(lim.m); n > 50 {
		t.Fatalf("%d limiter entries, bound is 50", n)
	}
}

func TestPageAndAssets(t *testing.T) {
	f := newFixture(t, nil)
	resp := f.do("GET", "/", "", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(string(body), "http://") || strings.Contains(string(body), "https://") {
		t.Errorf("index.html refers to another origin")
	}
	for name, ctype := range map[string]string{"app.js": "text/javascript", "i18n.js": "text/javascript", "app.css": "text/css"} {
		resp := f.do("GET", "/console/"+name, "", nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(b) == 0 {
			t.Errorf("%s: %d %s", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, cdn := range []string{"http://", "https://", "//cdn", "unpkg", "jsdelivr"} {
			if strings.Contains(string(b), cdn) {
				t.Errorf("%s mentions %q: nothing may come from another origin", name, cdn)
			}
		}
		etag := resp.Header.Get("ETag")
		if r2 := f.do("GET", "/console/"+name, "", map[string]string{"If-None-Match": etag}); r2.StatusCode != 304 {
			t.Errorf("%s with If-None-Match: %d", name, r2.StatusCode)
		}
	}
	if resp := f.do("GET", "/console/nope.js", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
	if resp := f.do("GET", "/nope", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

func TestNewRejectsBadUsers(t *testing.T) {
	for _, u := range []config.APIUser{
		{Username: "a", PasswordHash: "plain", Role: "guard"},
		{Username: "a", PasswordHash: "$2a$04$abcdefghijklmnopqrstuuJ4Ld8rP6QEY0ntTMCZ3bLA7wZ1a2bcO", Role: "platform"},
		{Username: "", PasswordHash: "$2a$04$abcdefghijklmnopqrstuuJ4Ld8rP6QEY0ntTMCZ3bLA7wZ1a2bcO", Role: "guard"},
	} {
		if _, err := New(Options{Users: []config.APIUser{u}, Logger: quiet()}); err == nil {
			t.Errorf("New accepted %+v", u)
		}
	}
}

// loggedIn starts a console at t0 with three sessions: a password, a guard
// token and an admin token.
func loggedIn(t *testing.T, dir string, t0 time.Time) (f *fixture, user, tok, boss login) {
	t.Helper()
	f = newFixtureAt(t, dir, t0, nil)
	return f, f.login(`{"username":"wang","password":"night-shift"}`), f.login(`{"token":"` + guardToken + `"}`), f.login(`{"token":"` + adminToken + `"}`)
}

// A restart keeps every session that is still valid: the same cookie and
// CSRF token work on the new process, logout and expiry still hold, and a
// changed password, role or token ends the session.
func TestSessionsSurviveRestart(t *testing.T) {
	dir, t0 := t.TempDir(), time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	f, user, tok, boss := loggedIn(t, dir, t0)
	gone := f.login(`{"username":"wang","password":"night-shift"}`)
	if user.cookie == "" || tok.cookie == "" || boss.cookie == "" || gone.cookie == "" {
		t.Fatal("login failed")
	}
	if r := f.do("DELETE", "/api/v1/session", "", map[string]string{"Cookie": gone.cookie, CSRFHeader: gone.info.CSRF}); r.StatusCode != 204 {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	f.stop()

	// The file holds digests, never a usable cookie.
	raw, err := os.ReadFile(filepath.Join(dir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []login{user, tok, boss} {
		v := strings.TrimPrefix(l.cookie, CookieName+"=")
		if bytes.Contains(raw, []byte(v)) {
			t.Fatalf("cookie value %q is in the database file", v)
		}
	}

	f2 := newFixtureAt(t, dir, t0.Add(10*time.Minute), nil)
	for name, l := range map[string]login{"user": user, "token": tok, "admin": boss} {
		r := f2.do("GET", "/api/v1/session", "", map[string]string{"Cookie": l.cookie})
		if r.StatusCode != 200 {
			t.Fatalf("%s session after restart: %d", name, r.StatusCode)
		}
		var info SessionInfo
		if err := json.NewDecoder(r.Body).Decode(&info); err != nil {
			t.Fatal(err)
		}
		if info.Name != l.info.Name || info.Role != l.info.Role || info.CSRF != l.info.CSRF || !info.ExpiresAt.Equal(l.info.ExpiresAt) {
			t.Errorf("%s session after restart: %+v, before %+v", name, info, l.info)
		}
	}
	if r := f2.do("POST", "/api/v1/test/act", `{}`, map[string]string{"Cookie": user.cookie, CSRFHeader: user.info.CSRF}); r.StatusCode != 200 {
		t.Errorf("state-changing request with the restored CSRF token: %d", r.StatusCode)
	}
	if r := f2.do("POST", "/api/v1/test/act", `{}`, map[string]string{"Cookie": user.cookie}); r.StatusCode != 401 {
		t.Errorf("restored session without CSRF token: %d, want 401", r.StatusCode)
	}
	if r := f2.do("GET", "/api/v1/session", "", map[string]string{"Cookie": gone.cookie}); r.StatusCode != 401 {
		t.Errorf("logged-out session came back after restart: %d", r.StatusCode)
	}
	if got := testutil.ToFloat64(f2.c.met.sessions); got != 3 {
		t.Errorf("sessions gauge after restart = %v, want 3", got)
	}
	f2.stop()

	// Expiry counts from the login, across restarts.
	f3 := newFixtureAt(t, dir, t0.Add(time.Hour), nil)
	if r := f3.do("GET", "/api/v1/session", "", map[string]string{"Cookie": user.cookie}); r.StatusCode != 401 {
		t.Errorf("session past its expiry after restart: %d, want 401", r.StatusCode)
	}
	if n := storedSessions(t, f3.st); n != 0 {
		t.Errorf("%d expired sessions still stored", n)
	}
	f3.stop()
}

func TestRestoredSessionEndsWhenCredentialChanges(t *testing.T) {
	dir, t0 := t.TempDir(), time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	f, user, tok, boss := loggedIn(t, dir, t0)
	f.stop()

	newHash, err := bcrypt.GenerateFromPassword([]byte("changed"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f2 := newFixtureAt(t, dir, t0.Add(time.Minute), func(o *Options) {
		o.Users[0].PasswordHash = string(newHash)           // password changed
		o.Tokens[0].Token = "another-guard-token-987654321" // token rotated
		o.Tokens[1].Role = "guard"                          // admin demoted
	})
	for name, l := range map[string]login{"password changed": user, "token rotated": tok, "role changed": boss} {
		if r := f2.do("GET", "/api/v1/session", "", map[string]string{"Cookie": l.cookie}); r.StatusCode != 401 {
			t.Errorf("%s: restored session still works (%d)", name, r.StatusCode)
		}
	}
	if n := storedSessions(t, f2.st); n != 0 {
		t.Errorf("%d stale sessions still stored", n)
	}
}

// A database that refuses the write still lets the guard in; the session
// lasts until the next restart and the failure is counted.
func TestSessionStoreFailureStillLogsIn(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "s.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) { o.DB = db })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	l := f.login(`{"username":"wang","password":"night-shift"}`)
	if l.cookie == "" {
		t.Fatalf("login with a failing session store: %d", l.resp.StatusCode)
	}
	if r := f.do("GET", "/api/v1/session", "", map[string]string{"Cookie": l.cookie}); r.StatusCode != 200 {
		t.Errorf("session with a failing store: %d", r.StatusCode)
	}
	if got := testutil.ToFloat64(f.c.met.storeErrors); got < 1 {
		t.Errorf("store errors = %v, want ≥ 1", got)
	}
}

func storedSessions(t *testing.T, st *store.Store) int {
	t.Helper()
	n := 0
	err := st.DB().View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(sessionBucket); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
