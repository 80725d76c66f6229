package smshttp_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/notify"
	"github.com/smartcommunity/warden/edge/notify/notifytest"
	"github.com/smartcommunity/warden/edge/notify/smshttp"
)

// One request per number, in order, with the body from the template; a
// template that does not parse fails New.
func TestOneRequestPerNumber(t *testing.T) {
	f := notifytest.NewSMS(t)
	s, err := smshttp.New(config.NotifyTarget{Name: "duty", Kind: "sms_http", URL: f.URL("/sms"), To: []string{"13800000001", "13800000002"},
		Body: `{"phone":{{json .To}},"text":{{json .Text}}}`}, notify.Env{Poster: notify.Poster{Client: http.DefaultClient}})
	if err != nil {
		t.Fatal(err)
	}
	m := &notify.Message{Title: "燃气泄漏", Text: "【生命安全】燃气泄漏 5 号楼"}
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	f.Check(t)
	var phones []string
	for _, r := range f.Messages() {
		phones = append(phones, r.Body["phone"].(string))
		if r.Body["text"] != m.Text {
			t.Errorf("text %q", r.Body["text"])
		}
	}
	if !slices.Equal(phones, []string{"13800000001", "13800000002"}) {
		t.Fatalf("sent to %v", phones)
	}
	if _, err := smshttp.New(config.NotifyTarget{Name: "bad", Kind: "sms_http", Body: "{{.To"}, notify.Env{}); err == nil {
		t.Fatal("a broken body template was accepted")
	}
}
