// Package dingtalk is the dingtalk notify target kind (edge/notify): a
// DingTalk (钉钉) group robot, sent a markdown message, signed when the
// target has a secret.
package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/notify"
)

func init() { notify.Register(notify.Kind{Name: "dingtalk", New: New}) }

// New makes the sender of one dingtalk target.
func New(c config.NotifyTarget, e notify.Env) (notify.Sender, error) {
	return &dingtalk{h: e.Poster, url: c.URL, secret: c.Secret, mentions: c.Mentions}, nil
}

// dingtalk is a DingTalk (钉钉) group robot, with the signed-secret mode:
// timestamp and sign = base64(HMAC-SHA256(secret, timestamp+"\n"+secret))
// as query parameters.
type dingtalk struct {
	h        notify.Poster
	url      string
	secret   string
	mentions []string
}

func (d *dingtalk) Send(ctx context.Context, m *notify.Message) error {
	u := d.url
	if d.secret != "" {
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		u += sep(u) + "timestamp=" + ts + "&sign=" + url.QueryEscape(Sign(d.secret, ts))
	}
	text := m.Markdown
	for _, mob := range d.mentions {
		text += " @" + mob // DingTalk notifies only mobiles named in the text too
	}
	return d.h.PostJSON(ctx, u, map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"title": m.Title, "text": text},
		"at":       map[string]any{"atMobiles": nonNil(d.mentions), "isAtAll": false},
	})
}

// Sign is the robot signature for timestamp (milliseconds).
func Sign(secret, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
