package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/smartcommunity/warden/edge/config"
)

// sender delivers one message to one target. Senders that need several
// requests (WeCom's picture, one SMS per number) resume at m.step.
type sender interface {
	send(ctx context.Context, m *message) error
}

// permanentError is an answer that retrying cannot change (a 4xx other
// than 408/429, a robot's "invalid key"). Life-safety messages are retried
// anyway: the installer may fix the key.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// maxImageBytes is WeCom's limit for a robot picture.
const maxImageBytes = 2 << 20

func newSender(c config.NotifyTarget, o Options) (sender, error) {
	h := httpPoster{client: o.Client, headers: c.Headers}
	switch c.Kind {
	case "wecom":
		return &wecom{h: h, url: c.URL, mentions: c.Mentions, media: o.Media}, nil
	case "dingtalk":
		return &dingtalk{h: h, url: c.URL, secret: c.Secret, mentions: c.Mentions}, nil
	case "webhook":
		return &webhook{h: h, url: c.URL, secret: c.Secret}, nil
	case "sms_http":
		tpl, err := template.New(c.Name).Funcs(config.NotifyBodyFuncs).Option("missingkey=error").Parse(c.Body)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		ct := c.ContentType
		if ct == "" {
			ct = "application/json"
		}
		return &smsHTTP{h: h, url: c.URL, to: c.To, body: tpl, ctype: ct}, nil
	}
	return nil, fmt.Errorf("unknown kind %q", c.Kind)
}

type httpPoster struct {
	client  *http.Client
	headers map[string]string
}

// post sends body and returns the answer's body (up to 64 KiB) for a 2xx.
func (h httpPoster) post(ctx context.Context, u, ctype string, body []byte, extra map[string]string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, permanentError{err}
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "warden-notify")
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(ans))
		if resp.StatusCode/100 == 4 && resp.StatusCode != 408 && resp.StatusCode != 429 {
			return nil, permanentError{err}
		}
		return nil, err
	}
	return ans, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// robotAnswer is the reply of WeCom and DingTalk robots: errcode 0 is ok.
func robotAnswer(ans []byte) error {
	var r struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(ans, &r); err != nil || r.ErrCode == nil {
		return fmt.Errorf("robot answer is not {\"errcode\":…}: %s", snippet(ans))
	}
	switch *r.ErrCode {
	case 0:
		return nil
	case 45009, 130101: // WeCom, DingTalk: sent too often, try later
		return fmt.Errorf("robot rate limit: errcode %d %s", *r.ErrCode, r.ErrMsg)
	}
	return permanentError{fmt.Errorf("robot refused: errcode %d %s", *r.ErrCode, r.ErrMsg)}
}

func postJSON(ctx context.Context, h httpPoster, u string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return permanentError{err}
	}
	ans, err := h.post(ctx, u, "application/json", body, nil)
	if err != nil {
		return err
	}
	return robotAnswer(ans)
}

// wecom is a WeCom (企业微信) group robot: a markdown message, a text
// message that @-mentions the mobiles (markdown cannot), then the snapshot
// as an image message (base64 + md5).
type wecom struct {
	h        httpPoster
	url      string
	mentions []string
	media    Media
}

func (w *wecom) send(ctx context.Context, m *message) error {
	steps := []func() error{
		func() error {
			return postJSON(ctx, w.h, w.url, map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": m.Markdown}})
		},
	}
	if len(w.mentions) > 0 {
		steps = append(steps, func() error {
			return postJSON(ctx, w.h, w.url, map[string]any{"msgtype": "text",
				"text": map[string]any{"content": m.Title, "mentioned_mobile_list": w.mentions}})
		})
	}
	if m.Snapshot != "" && w.media != nil {
		steps = append(steps, func() error {
			img, err := readMedia(w.media, m.Snapshot)
			if err != nil || len(img) > maxImageBytes {
				return nil // the text went; a missing or huge picture is not worth a retry
			}
			sum := md5.Sum(img)
			return postJSON(ctx, w.h, w.url, map[string]any{"msgtype": "image",
				"image": map[string]string{"base64": base64.StdEncoding.EncodeToString(img), "md5": hex.EncodeToString(sum[:])}})
		})
	}
	return runSteps(m, steps)
}

func runSteps(m *message, steps []func() error) error {
	for m.step < len(steps) {
		if err := steps[m.step](); err != nil {
			return err
		}
		m.step++
	}
	return nil
}

func readMedia(md Media, id string) ([]byte, error) {
	f, info, err := md.OpenMedia(id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !strings.HasPrefix(info.ContentType, "image/") {
		return nil, fmt.Errorf("media %s is %s", id, info.ContentType)
	}
	return io.ReadAll(io.LimitReader(f, maxImageBytes+1))
}

// dingtalk is a DingTalk (钉钉) group robot, with the signed-secret mode:
// timestamp and sign = base64(HMAC-SHA256(secret, timestamp+"\n"+secret))
// as query parameters.
type dingtalk struct {
	h        httpPoster
	url      string
	secret   string
	mentions []string
}

func (d *dingtalk) send(ctx context.Context, m *message) error {
	u := d.url
	if d.secret != "" {
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		u += sep(u) + "timestamp=" + ts + "&sign=" + url.QueryEscape(DingTalkSign(d.secret, ts))
	}
	text := m.Markdown
	for _, mob := range d.mentions {
		text += " @" + mob // DingTalk notifies only mobiles named in the text too
	}
	return postJSON(ctx, d.h, u, map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"title": m.Title, "text": text},
		"at":       map[string]any{"atMobiles": nonNil(d.mentions), "isAtAll": false},
	})
}

// DingTalkSign is the robot signature for timestamp (milliseconds).
func DingTalkSign(secret, timestamp string) string {
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

// webhook POSTs the alarm as JSON. With a secret it signs the body:
// X-Warden-Signature: sha256=<hex HMAC-SHA256(secret, body)>.
// X-Warden-Delivery is the message id, the same on every retry.
type webhook struct {
	h      httpPoster
	url    string
	secret string
}

// WebhookPayload is the generic webhook's JSON body.
type WebhookPayload struct {
	Action   string `json:"action"` // opened, escalated, acknowledged, resolved
	Priority int    `json:"priority"`
	Title    string `json:"title"`
	Text     string `json:"text"` // Markdown
	Link     string `json:"link,omitempty"`
	Alarm    any    `json:"alarm"`
}

func (w *webhook) send(ctx context.Context, m *message) error {
	body, err := json.Marshal(WebhookPayload{Action: m.Action, Priority: m.Priority, Title: m.Title, Text: m.Markdown, Link: m.Link, Alarm: m.Alarm})
	if err != nil {
		return permanentError{err}
	}
	hdr := map[string]string{"X-Warden-Delivery": strconv.FormatUint(m.ID, 10)}
	if w.secret != "" {
		mac := hmac.New(sha256.New, []byte(w.secret))
		mac.Write(body)
		hdr["X-Warden-Signature"] = "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	_, err = w.h.post(ctx, w.url, "application/json", body, hdr)
	return err
}

// smsHTTP sends one request per number to an SMS or voice gateway, the
// body from the configured template.
type smsHTTP struct {
	h     httpPoster
	url   string
	to    []string
	body  *template.Template
	ctype string
}

func (s *smsHTTP) send(ctx context.Context, m *message) error {
	steps := make([]func() error, len(s.to))
	for i, to := range s.to {
		steps[i] = func() error {
			var b bytes.Buffer
			if err := s.body.Execute(&b, map[string]any{"To": to, "Text": m.Text, "Title": m.Title, "Link": m.Link, "Alarm": m.Alarm}); err != nil {
				return permanentError{fmt.Errorf("body template: %w", err)}
			}
			_, err := s.h.post(ctx, s.url, s.ctype, b.Bytes(), nil)
			return err
		}
	}
	return runSteps(m, steps)
}
