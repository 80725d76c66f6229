// Package apitest serves an api.Server on loopback for other packages'
// tests, with one token per role and a JSON request helper.
package apitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/config"
)

// Tokens of the three roles, as Tokens configures them.
const (
	Guard    = "guard-token-0123456789"
	Platform = "platform-token-0123456789"
	Admin    = "admin-token-0123456789"
)

// Tokens are guard-desk (guard), platform and root (admin).
func Tokens() []config.Token {
	return []config.Token{
		{Name: "guard-desk", Token: Guard, Role: "guard"},
		{Name: "platform", Token: Platform, Role: "platform"},
		{Name: "root", Token: Admin, Role: "admin"},
	}
}

// Serve mounts h on an API built from o (Tokens when o has none) and
// serves it until the test ends.
func Serve(t testing.TB, o api.Options, h api.Handlers) *httptest.Server {
	t.Helper()
	if o.Tokens == nil {
		o.Tokens = Tokens()
	}
	s := api.New(o)
	s.Mount(h)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// Do sends body (a string as is, anything else as JSON; nil for none) with
// token and decodes a JSON object answer (nil when it is not one).
func Do(t testing.TB, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		if b != "" {
			rd = bytes.NewReader([]byte(b))
		}
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
