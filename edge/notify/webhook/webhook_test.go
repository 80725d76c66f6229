package webhook_test

import (
	"net/http"
	"testing"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/notify"
	"github.com/smartcommunity/warden/edge/notify/notifytest"
	"github.com/smartcommunity/warden/edge/notify/webhook"
)

// The body is the documented payload, signed with the secret; the
// delivery id is the message's, the same on a retry.
func TestSignedPayload(t *testing.T) {
	f := notifytest.NewWebhook(t)
	s, err := webhook.New(config.NotifyTarget{Name: "family", Kind: "webhook", URL: f.URL("/hook"), Secret: notifytest.HookSecret},
		notify.Env{Poster: notify.Poster{Client: http.DefaultClient}})
	if err != nil {
		t.Fatal(err)
	}
	m := &notify.Message{ID: 42, Action: "opened", Priority: 1, Title: "SOS", Markdown: "### SOS", Alarm: alarm.Alarm{ID: "a1", Type: "wristband.sos"}}
	f.SetFail(1, 0)
	if err := s.Send(t.Context(), m); err == nil {
		t.Fatal("a 503 was taken as delivered")
	}
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	f.Check(t)
	got := f.Messages()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	if got[0].Hdr.Get("X-Warden-Delivery") != "42" || got[0].Body["action"] != "opened" || got[0].Body["priority"] != float64(1) ||
		got[0].Body["alarm"].(map[string]any)["id"] != "a1" {
		t.Fatalf("delivery %v %v", got[0].Hdr, got[0].Body)
	}
}
