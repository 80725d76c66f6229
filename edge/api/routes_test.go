package api_test

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/api"
)

// Every domain handler of api.Handlers is served at its row of the route
// table, behind the role the row names.
func TestRouteTable(t *testing.T) {
	e := newEnv(t, nil)
	served := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	var h api.Handlers
	fill(reflect.ValueOf(&h).Elem(), served)
	e.srv.Mount(h)
	e.srv.Mount(h) // again: nothing mounted twice (ServeMux would panic)

	below := map[api.Role]string{api.RoleGuard: platformTok, api.RoleAdmin: guardTok}
	n := 0
	for _, r := range e.srv.Routes() {
		if r.Own {
			continue
		}
		n++
		method, path, _ := strings.Cut(r.Pattern, " ")
		path = strings.NewReplacer("{$}", "", "{id}", "x", "{name}", "x", "{file}", "app.js", "{session}", "s").Replace(path)
		if code := do(t, e, method, path, adminTok); code != http.StatusTeapot {
			t.Errorf("%s: %d, want the domain handler's 418", r.Pattern, code)
		}
		if tok, ok := below[r.Role]; ok {
			if code := do(t, e, method, path, tok); code != http.StatusForbidden {
				t.Errorf("%s (%s): %d with a lower role's token, want 403", r.Pattern, r.Role, code)
			}
		}
	}
	if want := countHandlers(reflect.TypeOf(h)); n != want {
		t.Errorf("%d domain routes in the table, %d handlers in api.Handlers", n, want)
	}
}

func fill(v reflect.Value, h http.Handler) {
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			fill(f, h)
		} else {
			f.Set(reflect.ValueOf(h))
		}
	}
}

func countHandlers(t reflect.Type) int {
	n := 0
	for i := range t.NumField() {
		if f := t.Field(i).Type; f.Kind() == reflect.Struct {
			n += countHandlers(f)
		} else {
			n++
		}
	}
	return n
}

func do(t *testing.T, e *env, method, path, tok string) int {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, req)
	return w.Code
}
