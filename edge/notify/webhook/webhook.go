// Package webhook is the webhook notify target kind (edge/notify): the
// alarm as JSON, HMAC-signed when the target has a secret.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/notify"
)

func init() { notify.Register(notify.Kind{Name: "webhook", New: New}) }

// New makes the sender of one webhook target.
func New(c config.NotifyTarget, e notify.Env) (notify.Sender, error) {
	return &webhook{h: e.Poster, url: c.URL, secret: c.Secret}, nil
}

// webhook POSTs the alarm as JSON. With a secret it signs the body:
// X-Warden-Signature: sha256=<hex HMAC-SHA256(secret, body)>.
// X-Warden-Delivery is the message id, the same on every retry.
type webhook struct {
	h      notify.Poster
	url    string
	secret string
}

// Payload is the generic webhook's JSON body.
type Payload struct {
	Action   string `json:"action"` // opened, escalated, acknowledged, resolved
	Priority int    `json:"priority"`
	Title    string `json:"title"`
	Text     string `json:"text"` // Markdown
	Link     string `json:"link,omitempty"`
	Alarm    any    `json:"alarm"`
}

func (w *webhook) Send(ctx context.Context, m *notify.Message) error {
	body, err := json.Marshal(Payload{Action: m.Action, Priority: m.Priority, Title: m.Title, Text: m.Markdown, Link: m.Link, Alarm: m.Alarm})
	if err != nil {
		return notify.Permanent(err)
	}
	hdr := map[string]string{"X-Warden-Delivery": strconv.FormatUint(m.ID, 10)}
	if w.secret != "" {
		mac := hmac.New(sha256.New, []byte(w.secret))
		mac.Write(body)
		hdr["X-Warden-Signature"] = "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	_, err = w.h.Post(ctx, w.url, "application/json", body, hdr)
	return err
}
