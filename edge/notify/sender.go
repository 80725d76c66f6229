package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Sender delivers one message to one target (one per notify target, made
// by its kind). Senders that need several requests (WeCom's picture, one
// SMS per number) run them with Message.RunSteps, which resumes a retry
// after the ones already accepted.
type Sender interface {
	Send(ctx context.Context, m *Message) error
}

// permanentError is an answer that retrying cannot change (a 4xx other
// than 408/429, a robot's "invalid key"). Life-safety messages are retried
// anyway: the installer may fix the key.
type permanentError struct{ err error }

// Permanent marks err as an answer retrying cannot change.
func Permanent(err error) error { return permanentError{err} }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// MaxImageBytes is WeCom's limit for a robot picture.
const MaxImageBytes = 2 << 20

// Poster sends a target's requests: its client and extra headers.
type Poster struct {
	Client  *http.Client
	Headers map[string]string
}

// Post sends body and returns the answer's body (up to 64 KiB) for a 2xx.
func (h Poster) Post(ctx context.Context, u, ctype string, body []byte, extra map[string]string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, permanentError{err}
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "warden-notify")
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("HTTP %d: %s", resp.StatusCode, Snippet(ans))
		if resp.StatusCode/100 == 4 && resp.StatusCode != 408 && resp.StatusCode != 429 {
			return nil, permanentError{err}
		}
		return nil, err
	}
	return ans, nil
}

// Snippet is the start of an answer, for messages.
func Snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// RobotAnswer reads the reply of WeCom and DingTalk robots: errcode 0 is ok.
func RobotAnswer(ans []byte) error {
	var r struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(ans, &r); err != nil || r.ErrCode == nil {
		return fmt.Errorf("robot answer is not {\"errcode\":…}: %s", Snippet(ans))
	}
	switch *r.ErrCode {
	case 0:
		return nil
	case 45009, 130101: // WeCom, DingTalk: sent too often, try later
		return fmt.Errorf("robot rate limit: errcode %d %s", *r.ErrCode, r.ErrMsg)
	}
	return permanentError{fmt.Errorf("robot refused: errcode %d %s", *r.ErrCode, r.ErrMsg)}
}

// PostJSON posts v as JSON to a WeCom or DingTalk robot and reads its answer.
func (h Poster) PostJSON(ctx context.Context, u string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return permanentError{err}
	}
	ans, err := h.Post(ctx, u, "application/json", body, nil)
	if err != nil {
		return err
	}
	return RobotAnswer(ans)
}

// RunSteps runs a message's requests in order, from the first one not yet
// accepted (a retry does not send the accepted ones again).
func (m *Message) RunSteps(steps []func() error) error {
	for m.step < len(steps) {
		if err := steps[m.step](); err != nil {
			return err
		}
		m.step++
	}
	return nil
}

// ReadMedia reads an image from the media store, at most MaxImageBytes+1.
func ReadMedia(md Media, id string) ([]byte, error) {
	f, info, err := md.OpenMedia(id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !strings.HasPrefix(info.ContentType, "image/") {
		return nil, fmt.Errorf("media %s is %s", id, info.ContentType)
	}
	return io.ReadAll(io.LimitReader(f, MaxImageBytes+1))
}
