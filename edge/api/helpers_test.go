package api_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/event/eventtest"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
)

const (
	guardTok    = "guard-token-0123456789"
	platformTok = "platform-token-0123456789"
	adminTok    = "admin-token-0123456789"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

// testTokens has the admin token stored hashed.
func testTokens() []config.Token {
	return []config.Token{
		{Name: "guard-desk", Token: guardTok, Role: "guard"},
		{Name: "platform", Token: platformTok, Role: "platform"},
		{Name: "root", Token: sha(adminTok), Role: "admin"},
	}
}

func mkEvent(typ string) *event.Event { return eventtest.New(typ) }

func appendN(t *testing.T, st *store.Store, n int, types ...string) {
	t.Helper()
	if len(types) == 0 {
		types = []string{event.GasLeak}
	}
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = mkEvent(types[i%len(types)])
	}
	if err := st.Append(context.Background(), evs...); err != nil {
		t.Fatalf("append: %v", err)
	}
}

type env struct {
	st  *store.Store
	srv *api.Server
	ts  *httptest.Server
	reg *prometheus.Registry
}

func newEnv(t *testing.T, mod func(*api.Options)) *env {
	t.Helper()
	st := storetest.Open(t, store.Options{})
	reg := prometheus.NewRegistry()
	o := api.Options{
		Events: st, DeadLetters: st, Tokens: testTokens(),
		Gatherer: reg, Registerer: reg,
		Devices: func() []api.DeviceStatus {
			return []api.DeviceStatus{{ID: "gas-3-2-201", Kind: "gas_detector", Online: true, LastSeen: time.Unix(1700000000, 0)}}
		},
		Cameras: func() []api.CameraStatus { return []api.CameraStatus{{ID: "entrance", Online: false}} },
	}
	if mod != nil {
		mod(&o)
	}
	srv := api.New(o)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{st: st, srv: srv, ts: ts, reg: reg}
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (e *env) do(t *testing.T, method, path, tok string, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{code: res.StatusCode, hdr: res.Header, body: b}
}

// sseMsg is one Server-Sent Events message or comment.
type sseMsg struct {
	id, event, data, comment string
}

// sseClient reads a stream into a channel until the body is closed.
type sseClient struct {
	msgs chan sseMsg
	res  *http.Response
}

func openStream(t *testing.T, url, tok string, hdr ...string) *sseClient {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("stream: %d %s", res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}
	c := &sseClient{msgs: make(chan sseMsg, 4096), res: res}
	go func() {
		defer close(c.msgs)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var m sseMsg
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" || len(data) > 0 {
					m.data = strings.Join(data, "\n")
					c.msgs <- m
				}
				m, data = sseMsg{}, nil
			case strings.HasPrefix(line, ":"):
				c.msgs <- sseMsg{comment: strings.TrimSpace(line[1:])}
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "id":
					m.id = v
				case "event":
					m.event = v
				case "data":
					data = append(data, v)
				}
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() { c.res.Body.Close() }

// next returns the next message that is not a comment, failing after 30 s.
func (c *sseClient) next(t *testing.T) sseMsg {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				t.Fatal("stream ended")
			}
			if m.comment != "" {
				continue
			}
			return m
		case <-deadline:
			t.Fatal("no stream message within 30s")
		}
	}
}

func jsonDecode(b []byte, v any) error { return json.Unmarshal(b, v) }
