package uplink

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

const (
	defaultHTTPTimeout = 30 * time.Second
	maxRetryAfter      = time.Hour // a platform asking for more is capped
	responseKeep       = 4 << 10   // response bytes kept for logs and dead letters
)

// httpTarget POSTs batches as a gzipped JSON array; the cursor moves only
// on a 2xx.
type httpTarget struct {
	t       *target
	url     string
	headers map[string]string
	client  *http.Client
}

func newHTTPTarget(u *Uplink, c *config.UplinkHTTP) (*httpTarget, error) {
	if c.URL == "" {
		return nil, errors.New("uplink http: url is empty")
	}
	client, err := u.httpClient(c.TLS, c.Timeout.D())
	if err != nil {
		return nil, fmt.Errorf("uplink http: %w", err)
	}
	t, err := u.newTarget("http", "http")
	if err != nil {
		return nil, err
	}
	return &httpTarget{t: t, url: c.URL, headers: c.Headers, client: client}, nil
}

// httpClient is Options.HTTPClient, or a client with the target's TLS and
// request timeout (default 30s).
func (u *Uplink) httpClient(tc config.TLS, timeout time.Duration) (*http.Client, error) {
	if u.o.HTTPClient != nil {
		return u.o.HTTPClient, nil
	}
	cfg, err := tlsConfig(tc)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	if timeout <= 0 {
		timeout = defaultHTTPTimeout
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// prepared is a batch read and encoded ahead of its POST.
type prepared struct {
	batch []store.Raw
	body  []byte
}

// run delivers batch after batch, one POST at a time. While a POST is in
// flight the next batch is read and encoded (prefetch), and cursors are
// saved by a saver goroutine, so neither the store read nor the fsync sits
// between two POSTs.
func (h *httpTarget) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan prepared, 1)
	sv := newSaver(h.t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var prefetchErr, saveErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		if prefetchErr = h.prefetch(ctx, ready); prefetchErr != nil {
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		if saveErr = sv.run(ctx, stop); saveErr != nil {
			cancel()
		}
	}()
	err := h.send(ctx, ready, sv)
	cancel()
	close(stop)
	wg.Wait()
	return errors.Join(err, prefetchErr, saveErr)
}

// prefetch reads batches after the last one it read and hands them over
// encoded. The sender never drops a batch (it retries, or bisects down to
// dead letters), so reading ahead of the cursor is safe.
func (h *httpTarget) prefetch(ctx context.Context, ready chan<- prepared) error {
	cfg := h.t.u.o.Config
	var enc encoder
	after := h.t.cursor.Load()
	for {
		batch, err := h.t.next(ctx, after, cfg.Batch, cfg.Linger.D())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, store.ErrClosed) {
				return fmt.Errorf("uplink http: read backlog: %w", err)
			}
			h.t.fail(fmt.Errorf("read backlog: %w", err))
			if sleep(ctx, cfg.MaxBackoff.D()) != nil {
				return nil
			}
			continue
		}
		after = batch[len(batch)-1].Seq
		select {
		case ready <- prepared{batch: batch, body: enc.encode(batch)}:
		case <-ctx.Done():
			return nil
		}
	}
}

// send delivers prepared batches in order until ctx ends.
func (h *httpTarget) send(ctx context.Context, ready <-chan prepared, sv *saver) error {
	for {
		var p prepared
		select {
		case <-ctx.Done():
			return nil
		case p = <-ready:
		}
		h.t.oldest.Store(p.batch[0].Time.UnixNano())
		if err := h.deliver(ctx, p.batch, p.body, sv); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// result of one POST.
type result struct {
	status     int
	body       []byte
	retryAfter time.Duration
	header     http.Header
	err        error
}

// rejects says the platform refused the content: narrow it down. Auth,
// routing and method errors are about the request, not the events, and
// are retried like outages (dead-lettering a backlog because a token
// expired would be a disaster).
func (r result) rejects() bool {
	if r.err != nil || r.status < 400 || r.status >= 500 {
		return false
	}
	switch r.status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusProxyAuthRequired:
		return false
	}
	return true
}

func (r result) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("HTTP %d: %s", r.status, truncate(r.body, 200))
}

// deliver sends batch until the platform takes it. A rejected batch is
// split in halves, in order, down to the events that are refused, which
// are dead-lettered. It returns only when the whole batch is accounted for
// (or ctx ends).
//
// body is batch encoded, or nil to encode here. A 2xx moves the cursor in
// memory and the saver persists it; a dead letter's cursor move is saved
// at once, so a restart does not dead-letter the event again.
func (h *httpTarget) deliver(ctx context.Context, batch []store.Raw, body []byte, sv *saver) error {
	if body == nil {
		body = EncodeBatch(batch)
	}
	bo := h.t.newBackoff()
	held := false
	for {
		r := h.post(ctx, batch, body)
		switch {
		case r.err == nil && r.status >= 200 && r.status < 300:
			if held {
				h.t.log.Info("platform took the critical event it had rejected", "seq", batch[0].Seq, "type", batch[0].Type)
			}
			h.t.advance(batch[len(batch)-1].Seq, len(batch))
			return sv.ack(ctx)
		case r.rejects() && len(batch) == 1 && batch[0].Severity == event.Critical:
			// A gas leak is never dropped because a platform refuses it:
			// it stays first in line, retried with backoff, and guards
			// get an alarm once.
			if !held {
				held = true
				h.t.rejectedCritical(ctx, batch[0], r.status, r.body)
			}
		case r.rejects() && len(batch) == 1:
			if err := h.t.deadLetter(ctx, batch[0], r.status, r.body); err != nil {
				return err
			}
			h.t.advance(batch[0].Seq, 0)
			if err := h.t.persist(ctx); err != nil {
				return err
			}
			return sv.ack(ctx)
		case r.rejects():
			mid := len(batch) / 2
			h.t.log.Info("platform rejected a batch; bisecting", "first_seq", batch[0].Seq, "last_seq", batch[len(batch)-1].Seq, "status", r.status)
			if err := h.deliver(ctx, batch[:mid], nil, sv); err != nil {
				return err
			}
			return h.deliver(ctx, batch[mid:], nil, sv)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.t.fail(fmt.Errorf("post seq %d..%d: %s", batch[0].Seq, batch[len(batch)-1].Seq, r))
		d := bo.NextBackOff()
		if r.retryAfter > 0 {
			d = r.retryAfter
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// IdempotencyKey is the key of the batch of events first..last: the same
// batch resent after a crash carries the same key. The ULIDs keep it
// unique even if a new store restarts seq at 1.
func IdempotencyKey(target string, first, last store.Raw) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00%s", target, first.Seq, last.Seq, eventID(first.JSON), eventID(last.JSON))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// eventID cuts the id out of stored JSON, which always starts {"id":"…".
func eventID(js []byte) string {
	const p = `{"id":"`
	if !bytes.HasPrefix(js, []byte(p)) {
		return ""
	}
	rest := js[len(p):]
	if i := bytes.IndexByte(rest, '"'); i >= 0 {
		return string(rest[:i])
	}
	return ""
}

// EncodeBatch is the request body: the events' JSON as one array, gzipped.
func EncodeBatch(batch []store.Raw) []byte {
	var enc encoder
	return enc.encode(batch)
}

// encoder keeps its gzip writer and JSON buffer between batches; one
// goroutine only. Each body is a fresh slice: it lives until the POST is
// acknowledged.
type encoder struct {
	zw   *gzip.Writer
	js   []byte
	size int // last body size, to size the next
}

func (e *encoder) encode(batch []store.Raw) []byte {
	e.js = append(e.js[:0], '[')
	for i, r := range batch {
		if i > 0 {
			e.js = append(e.js, ',')
		}
		e.js = append(e.js, r.JSON...)
	}
	e.js = append(e.js, ']')
	buf := bytes.NewBuffer(make([]byte, 0, e.size+e.size/4+64))
	if e.zw == nil {
		e.zw, _ = gzip.NewWriterLevel(buf, gzip.BestSpeed)
	} else {
		e.zw.Reset(buf)
	}
	_, _ = e.zw.Write(e.js)
	_ = e.zw.Close()
	e.size = buf.Len()
	return buf.Bytes()
}

func (h *httpTarget) post(ctx context.Context, batch []store.Raw, body []byte) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", IdempotencyKey(h.t.name, batch[0], batch[len(batch)-1]))
	req.Header.Set("X-Warden-Gateway", h.t.u.o.Gateway)
	req.Header.Set("User-Agent", "warden-uplink")
	return do(h.client, req)
}

func do(c *http.Client, req *http.Request) result { return doKeep(c, req, responseKeep) }

// doKeep is do keeping up to keep bytes of the response.
func doKeep(c *http.Client, req *http.Request, keep int64) result {
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, keep))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	r := result{status: resp.StatusCode, body: b, header: resp.Header}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && err != nil {
		// The platform answered 2xx, so the batch is in; a cut body is fine.
		err = nil
	}
	if err != nil {
		r.err = fmt.Errorf("HTTP %d, reading response: %w", resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// parseRetryAfter reads delay-seconds or an HTTP-date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
