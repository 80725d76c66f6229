// Package console is the guards' web page, served by the gateway at "/":
// embedded static assets (no CDN, no build step), a cookie login for guard
// and admin tokens and configured users, CSRF protection for every
// state-changing request made with the cookie, and rate-limited failed logins.
// Everything else the page does goes through the ordinary API routes, which
// accept the session through api.Options.SessionAuth.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"
	"golang.org/x/time/rate"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
)

//go:embed web
var webFS embed.FS

// Options configure a Console. The zero value (plus Tokens or Users) works.
type Options struct {
	Users  []config.APIUser // username + bcrypt password_hash + role
	Tokens []config.Token   // guard and admin tokens may log in; platform tokens may not
	// SessionTTL is how long a login lasts, counted from the login (12h).
	SessionTTL time.Duration
	// Secure marks cookies Secure (api.tls is on). A request that arrived
	// over TLS gets Secure cookies anyway.
	Secure bool
	// Failed logins allowed per client IP and per username: a burst of
	// LoginBurst (5), refilled at LoginRate (one every 10 s).
	LoginRate  rate.Limit
	LoginBurst int
	// MaxSessions bounds the sessions (10000); the oldest is dropped when
	// a new login would exceed it.
	MaxSessions int
	// DB keeps sessions across restarts (bucket console.sessions, keyed by
	// the cookie's SHA-256); nil keeps them in memory only.
	DB         *bbolt.DB
	Audit      *audit.Log // logins and logouts; nil = not audited
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Console serves the page and the session routes. Create it with New.
type Console struct {
	o        Options
	log      *slog.Logger
	met      *metrics
	users    map[string]config.APIUser
	tokens   api.Tokens
	dummy    []byte // bcrypt hash compared for unknown users, so timing says nothing
	sessions *sessions
	limits   *limiter
	assets   map[string]asset
	now      func() time.Time
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// New checks the users and tokens, loads the embedded assets and restores
// the stored sessions.
func New(o Options) (*Console, error) { return newAt(o, time.Now) }

func newAt(o Options, now func() time.Time) (*Console, error) {
	if o.SessionTTL <= 0 {
		o.SessionTTL = config.DefaultSessionTTL
	}
	if o.LoginRate <= 0 {
		o.LoginRate = rate.Every(10 * time.Second)
	}
	if o.LoginBurst <= 0 {
		o.LoginBurst = 5
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	c := &Console{
		o: o, log: o.Logger.With("component", "console"), met: met,
		users: map[string]config.APIUser{},
		now:   now,
	}
	c.sessions = newSessions(o.MaxSessions, met, o.DB, c.log)
	c.limits = newLimiter(o.LoginRate, o.LoginBurst, 4096)
	for _, u := range o.Users {
		if u.Username == "" {
			return nil, fmt.Errorf("console: user with an empty username")
		}
		if !loginRole(api.Role(u.Role)) {
			return nil, fmt.Errorf("console: user %q: role %q may not log in (guard or admin)", u.Username, u.Role)
		}
		if _, dup := c.users[u.Username]; dup {
			return nil, fmt.Errorf("console: user %q listed twice", u.Username)
		}
		if err := checkHash(u.PasswordHash); err != nil {
			return nil, fmt.Errorf("console: user %q: %w", u.Username, err)
		}
		c.users[u.Username] = u
		if c.dummy == nil {
			c.dummy = dummyHash(u.PasswordHash)
		}
	}
	c.tokens = api.ParseTokens(o.Tokens, func(err error) { c.log.Warn("console: ignoring token", "err", err) })
	if c.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	kept, dropped, err := c.sessions.load(c.now(), c.stillValid)
	if err != nil {
		return nil, err
	}
	if kept+dropped > 0 {
		c.log.Info("console: sessions restored", "kept", kept, "dropped", dropped)
	}
	return c, nil
}

func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "web/")] = asset{body: b, ctype: contentType(p), etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: embedded assets: %w", err)
	}
	if _, ok := out["index.html"]; !ok {
		return nil, fmt.Errorf("console: embedded assets: no index.html")
	}
	return out, nil
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// HTTP is the page and the session handlers (edge/api/routes.go serves
// them):
//
//	Index   the page (public)
//	Asset   its script, style sheet and catalogue (public)
//	Login   {"username","password"} or {"token"} (public, rate limited)
//	WhoAmI  who is logged in, and the session's CSRF token
//	Logout  (CSRF header required)
func (c *Console) HTTP() api.ConsoleHandlers {
	return api.ConsoleHandlers{Index: http.HandlerFunc(c.serveIndex), Asset: http.HandlerFunc(c.serveAsset),
		Login: http.HandlerFunc(c.login), WhoAmI: http.HandlerFunc(c.whoami), Logout: http.HandlerFunc(c.logout)}
}

// csp keeps the page to its own origin: no inline script, no CDN.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (c *Console) serveIndex(w http.ResponseWriter, r *http.Request) {
	c.serveFile(w, r, "index.html")
}

func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" {
		http.Redirect(w, r, "/", http.StatusMovedPermanently)
		return
	}
	c.serveFile(w, r, name)
}

func (c *Console) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := c.assets[name]
	if !ok {
		api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no console file %q", name))
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache") // revalidate: a gateway upgrade must not leave an old script behind
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", csp)
	http.ServeContent(w, r, name, time.Time{}, strings.NewReader(string(a.body)))
}
