package wecom_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"net/http"
	"slices"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/notify"
	"github.com/smartcommunity/warden/edge/notify/notifytest"
	"github.com/smartcommunity/warden/edge/notify/wecom"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
)

// One message is the markdown, a text naming the mobiles (markdown cannot
// @ them) and the snapshot as an image, each in the robot's documented
// shape; a retry after a failure resumes at the request that failed.
func TestMarkdownMentionsAndPicture(t *testing.T) {
	f := notifytest.NewWeCom(t)
	st := storetest.Open(t, store.Options{})
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 64, 48)), nil); err != nil {
		t.Fatal(err)
	}
	pic, err := st.PutMedia("snapshot", "image/jpeg", jpg.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	s, err := wecom.New(config.NotifyTarget{Name: "guard-room", Kind: "wecom", URL: f.URL("/cgi-bin/webhook/send?key=" + notifytest.WeComKey),
		Mentions: []string{"13800000000"}}, notify.Env{Poster: notify.Poster{Client: http.DefaultClient}, Media: st})
	if err != nil {
		t.Fatal(err)
	}
	m := &notify.Message{Title: "燃气泄漏", Markdown: "### 【生命安全】燃气泄漏", Snapshot: pic.ID}
	f.SetFail(0, 45009) // the first request is refused for the robot's rate
	if err := s.Send(t.Context(), m); err == nil {
		t.Fatal("a rate-limited robot answer was taken as sent")
	}
	f.SetFail(0, 0)
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range f.Messages() {
		kinds = append(kinds, r.Kind)
	}
	if want := []string{"markdown", "markdown", "text", "image"}; !slices.Equal(kinds, want) {
		t.Fatalf("requests %v, want %v (the refused markdown, then each step once)", kinds, want)
	}
	f.Check(t)
	if err := s.Send(t.Context(), m); err != nil || len(f.Messages()) != 4 {
		t.Fatalf("a message already sent was sent again: %v, %d requests", err, len(f.Messages()))
	}
}
