// Package smshttp is the sms_http notify target kind (edge/notify): an SMS
// or voice gateway over HTTP, one request per number, the body from the
// target's template.
package smshttp

import (
	"bytes"
	"context"
	"fmt"
	"text/template"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/notify"
)

func init() { notify.Register(notify.Kind{Name: "sms_http", New: New}) }

// New makes the sender of one sms_http target.
func New(c config.NotifyTarget, e notify.Env) (notify.Sender, error) {
	tpl, err := template.New(c.Name).Funcs(config.NotifyBodyFuncs).Option("missingkey=error").Parse(c.Body)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	ct := c.ContentType
	if ct == "" {
		ct = "application/json"
	}
	return &smsHTTP{h: e.Poster, url: c.URL, to: c.To, body: tpl, ctype: ct}, nil
}

// smsHTTP sends one request per number to an SMS or voice gateway, the
// body from the configured template.
type smsHTTP struct {
	h     notify.Poster
	url   string
	to    []string
	body  *template.Template
	ctype string
}

func (s *smsHTTP) Send(ctx context.Context, m *notify.Message) error {
	steps := make([]func() error, len(s.to))
	for i, to := range s.to {
		steps[i] = func() error {
			var b bytes.Buffer
			if err := s.body.Execute(&b, map[string]any{"To": to, "Text": m.Text, "Title": m.Title, "Link": m.Link, "Alarm": m.Alarm}); err != nil {
				return notify.Permanent(fmt.Errorf("body template: %w", err))
			}
			_, err := s.h.Post(ctx, s.url, s.ctype, b.Bytes(), nil)
			return err
		}
	}
	return m.RunSteps(steps)
}
