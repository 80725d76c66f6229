// Package wecom is the wecom notify target kind (edge/notify): a WeCom
// (企业微信) group robot, sent a markdown message, the @-mentions, then
// the alarm's snapshot.
package wecom

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/notify"
)

func init() { notify.Register(notify.Kind{Name: "wecom", New: New}) }

// New makes the sender of one wecom target.
func New(c config.NotifyTarget, e notify.Env) (notify.Sender, error) {
	return &wecom{h: e.Poster, url: c.URL, mentions: c.Mentions, media: e.Media}, nil
}

// wecom is a WeCom (企业微信) group robot: a markdown message, a text
// message that @-mentions the mobiles (markdown cannot), then the snapshot
// as an image message (base64 + md5).
type wecom struct {
	h        notify.Poster
	url      string
	mentions []string
	media    notify.Media
}

func (w *wecom) Send(ctx context.Context, m *notify.Message) error {
	steps := []func() error{
		func() error {
			return w.h.PostJSON(ctx, w.url, map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": m.Markdown}})
		},
	}
	if len(w.mentions) > 0 {
		steps = append(steps, func() error {
			return w.h.PostJSON(ctx, w.url, map[string]any{"msgtype": "text",
				"text": map[string]any{"content": m.Title, "mentioned_mobile_list": w.mentions}})
		})
	}
	if m.Snapshot != "" && w.media != nil {
		steps = append(steps, func() error {
			img, err := notify.ReadMedia(w.media, m.Snapshot)
			if err != nil || len(img) > notify.MaxImageBytes {
				return nil // the text went; a missing or huge picture is not worth a retry
			}
			sum := md5.Sum(img)
			return w.h.PostJSON(ctx, w.url, map[string]any{"msgtype": "image",
				"image": map[string]string{"base64": base64.StdEncoding.EncodeToString(img), "md5": hex.EncodeToString(sum[:])}})
		})
	}
	return m.RunSteps(steps)
}
