package dingtalk_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/notify"
	"github.com/smartcommunity/warden/edge/notify/dingtalk"
	"github.com/smartcommunity/warden/edge/notify/notifytest"
)

// The request is signed with the secret (timestamp and sign in the query,
// checked by the fake as DingTalk does) and names the mobiles in the text
// and in at.atMobiles; a wrong secret is refused for good.
func TestSignedMarkdownWithMentions(t *testing.T) {
	f := notifytest.NewDingTalk(t)
	target := config.NotifyTarget{Name: "grid", Kind: "dingtalk", URL: f.URL("/robot/send?access_token=tok"),
		Secret: notifytest.DingSecret, Mentions: []string{"13900000000"}}
	env := notify.Env{Poster: notify.Poster{Client: http.DefaultClient}}
	s, err := dingtalk.New(target, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), &notify.Message{Title: "老人跌倒", Markdown: "### 老人跌倒"}); err != nil {
		t.Fatal(err)
	}
	f.Check(t)
	got := f.Messages()
	if len(got) != 1 || !strings.Contains(got[0].Body["markdown"].(map[string]any)["text"].(string), "@13900000000") {
		t.Fatalf("messages %+v", got)
	}
	target.Secret = "SECwrong"
	bad, _ := dingtalk.New(target, env)
	if err := bad.Send(t.Context(), &notify.Message{Title: "x", Markdown: "x"}); err == nil {
		t.Fatal("a wrongly signed request was taken")
	}
}
