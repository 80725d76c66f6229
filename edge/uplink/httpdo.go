package uplink

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The HTTP request helpers the targets that speak HTTP share.

const (
	// ResponseKeep is the response bytes kept for logs and dead letters.
	ResponseKeep = 4 << 10
	// MaxRetryAfter caps the Retry-After a platform may ask for.
	MaxRetryAfter = time.Hour
	// MediaPrefix is the URL of media files in the event store.
	MediaPrefix = "/api/v1/media/"
)

// Result is a platform's answer to one request.
type Result struct {
	Status     int
	Body       []byte // up to the keep bytes Do was given
	RetryAfter time.Duration
	Header     http.Header
	Err        error
}

// Rejects says the platform refused the content: narrow it down. Auth,
// routing and method errors are about the request, not the events, and
// are retried like outages (dead-lettering a backlog because a token
// expired would be a disaster).
func (r Result) Rejects() bool {
	if r.Err != nil || r.Status < 400 || r.Status >= 500 {
		return false
	}
	switch r.Status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusProxyAuthRequired:
		return false
	}
	return true
}

func (r Result) String() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("HTTP %d: %s", r.Status, Truncate(r.Body, 200))
}

// Do sends req and keeps up to keep bytes of the response.
func Do(c *http.Client, req *http.Request, keep int64) Result {
	resp, err := c.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, keep))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	r := Result{Status: resp.StatusCode, Body: b, Header: resp.Header}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && err != nil {
		// The platform answered 2xx, so the batch is in; a cut body is fine.
		err = nil
	}
	if err != nil {
		r.Err = fmt.Errorf("HTTP %d, reading response: %w", resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		r.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// ParseRetryAfter reads delay-seconds or an HTTP-date; 0 when absent or bad.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		d = time.Duration(min(n, int64(MaxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}
