// Package notifytest holds fake vendors for the notify tests: real HTTP
// servers on 127.0.0.1 that check what each vendor documents.
package notifytest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The fakes are real HTTP servers on 127.0.0.1 that check what the vendors
// document: WeCom's robot (msgtype markdown/text/image, content ≤ 4096
// bytes, image base64 + md5), DingTalk's robot with the signed secret
// (timestamp within an hour, sign = base64 HMAC-SHA256), the generic
// webhook's signature and an SMS gateway.

// Received is one request a fake took.
type Received struct {
	Kind string         // msgtype, or "webhook" / "sms"
	Body map[string]any // decoded JSON
	Hdr  http.Header
	At   time.Time
}

// Fake is one vendor endpoint.
type Fake struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	got      []Received
	failNext int    // answer this many requests with 503 first
	errcode  int    // robots: answer with this errcode (0 = ok)
	bad      string // the first shape problem seen
}

// URL is the fake's address with path.
func (f *Fake) URL(path string) string { return f.srv.URL + path }

func (f *Fake) problem(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bad == "" {
		f.bad = fmt.Sprintf(format, a...)
	}
}

// Messages are the requests taken so far.
func (f *Fake) Messages() []Received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Received(nil), f.got...)
}

// Check fails t if any request broke the vendor's documented shape.
func (f *Fake) Check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bad != "" {
		t.Errorf("vendor shape: %s", f.bad)
	}
}

// SetFail answers the next n requests with 503, and robots then with
// errcode (0: ok).
func (f *Fake) SetFail(n, errcode int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.errcode = n, errcode
}

// serve decodes a JSON POST; it answers 503 while failNext lasts.
func (f *Fake) serve(w http.ResponseWriter, r *http.Request, kind func(map[string]any) string, ok func(http.ResponseWriter)) {
	if r.Method != http.MethodPost {
		f.problem("method %s", r.Method)
	}
	f.mu.Lock()
	if f.failNext > 0 {
		f.failNext--
		f.mu.Unlock()
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	f.mu.Unlock()
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		f.problem("body is not JSON: %v", err)
		http.Error(w, "bad json", 400)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, Received{Kind: kind(body), Body: body, Hdr: r.Header.Clone(), At: time.Now()})
	f.mu.Unlock()
	ok(w)
}

// New serves h, a handler made for the fake (vendors call its serve).
func New(t *testing.T, h func(f *Fake) http.HandlerFunc) *Fake {
	f := &Fake{t: t}
	f.srv = httptest.NewServer(h(f))
	t.Cleanup(f.srv.Close)
	return f
}

func robotOK(f *Fake) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		f.mu.Lock()
		code := f.errcode
		f.mu.Unlock()
		fmt.Fprintf(w, `{"errcode":%d,"errmsg":"%s"}`, code, map[bool]string{true: "ok", false: "refused"}[code == 0])
	}
}

// WeComKey is the robot key NewWeCom expects.
const WeComKey = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"

// NewWeCom is a WeCom group robot at /cgi-bin/webhook/send?key=WeComKey.
func NewWeCom(t *testing.T) *Fake {
	return New(t, func(f *Fake) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/cgi-bin/webhook/send" || r.URL.Query().Get("key") != WeComKey {
				f.problem("wecom url %s", r.URL)
			}
			if r.Header.Get("Content-Type") != "application/json" {
				f.problem("wecom content type %q", r.Header.Get("Content-Type"))
			}
			f.serve(w, r, func(b map[string]any) string {
				typ, _ := b["msgtype"].(string)
				switch typ {
				case "markdown":
					c, _ := b["markdown"].(map[string]any)["content"].(string)
					if c == "" || len(c) > 4096 {
						f.problem("wecom markdown content of %d bytes", len(c))
					}
				case "text":
					tx, _ := b["text"].(map[string]any)
					if s, _ := tx["content"].(string); s == "" {
						f.problem("wecom text without content")
					}
				case "image":
					im, _ := b["image"].(map[string]any)
					raw, err := base64.StdEncoding.DecodeString(fmt.Sprint(im["base64"]))
					sum := md5.Sum(raw)
					if err != nil || len(raw) == 0 || len(raw) > 2<<20 || hex.EncodeToString(sum[:]) != im["md5"] {
						f.problem("wecom image: base64/md5 do not match")
					}
				default:
					f.problem("wecom msgtype %q", typ)
				}
				return typ
			}, robotOK(f))
		}
	})
}

// DingSecret is the signing secret NewDingTalk checks.
const DingSecret = "SEC0123456789abcdef"

// NewDingTalk is a DingTalk robot at /robot/send?access_token=tok, signed
// with DingSecret.
func NewDingTalk(t *testing.T) *Fake {
	return New(t, func(f *Fake) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
			mac := hmac.New(sha256.New, []byte(DingSecret))
			mac.Write([]byte(q.Get("timestamp") + "\n" + DingSecret))
			want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if r.URL.Path != "/robot/send" || q.Get("access_token") != "tok" || err != nil ||
				time.Since(time.UnixMilli(ts)).Abs() > time.Hour || q.Get("sign") != want {
				f.problem("dingtalk signature: %s", r.URL.RawQuery)
				fmt.Fprint(w, `{"errcode":310000,"errmsg":"sign not match"}`)
				return
			}
			f.serve(w, r, func(b map[string]any) string {
				md, _ := b["markdown"].(map[string]any)
				if b["msgtype"] != "markdown" || md["title"] == "" || md["text"] == "" {
					f.problem("dingtalk body %v", b)
				}
				if _, ok := b["at"].(map[string]any)["atMobiles"].([]any); !ok {
					f.problem("dingtalk at.atMobiles missing")
				}
				return "markdown"
			}, robotOK(f))
		}
	})
}

// HookSecret is the HMAC key NewWebhook checks.
const HookSecret = "family-shared-secret"

// NewWebhook checks the X-Warden-Signature made with HookSecret.
func NewWebhook(t *testing.T) *Fake {
	return New(t, func(f *Fake) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			mac := hmac.New(sha256.New, []byte(HookSecret))
			mac.Write(raw)
			if r.Header.Get("X-Warden-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) || r.Header.Get("X-Warden-Delivery") == "" {
				f.problem("webhook signature or delivery id missing")
			}
			r.Body = io.NopCloser(bytes.NewReader(raw))
			f.serve(w, r, func(map[string]any) string { return "webhook" }, func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) })
		}
	})
}

// NewSMS is an SMS gateway taking {"phone", "text"} JSON.
func NewSMS(t *testing.T) *Fake {
	return New(t, func(f *Fake) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f.serve(w, r, func(b map[string]any) string {
				if b["phone"] == "" || b["text"] == "" {
					f.problem("sms body %v", b)
				}
				return "sms"
			}, func(w http.ResponseWriter) { fmt.Fprint(w, `{"result":"queued"}`) })
		}
	})
}
