package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/uplink"
)

// httpTarget POSTs batches as a gzipped JSON array; the cursor moves only
// on a 2xx.
type httpTarget struct {
	t       *uplink.Target
	url     string
	headers map[string]string
	client  *http.Client
}

//go:embed sample.yaml
var sample []byte

func init() {
	uplink.Register(uplink.Kind{Name: "http", Order: 1, New: New, Options: config.UplinkHTTP{}, Sample: sample})
}

// New builds the HTTP target and its media queue when the uplink config
// has http (media unless http.media is false).
func New(e *uplink.Env) ([]uplink.Runner, error) {
	c := e.Config.HTTP
	if c == nil {
		return nil, nil
	}
	ht, err := newHTTPTarget(e, c)
	if err != nil {
		return nil, err
	}
	if c.Media != nil && !*c.Media {
		return []uplink.Runner{ht}, nil
	}
	mq, err := newMediaQueue(e, ht)
	if err != nil {
		return nil, err
	}
	return []uplink.Runner{ht, mq}, nil
}

func newHTTPTarget(e *uplink.Env, c *config.UplinkHTTP) (*httpTarget, error) {
	if c.URL == "" {
		return nil, errors.New("uplink http: url is empty")
	}
	client, err := e.HTTPClient(c.TLS, c.Timeout.D())
	if err != nil {
		return nil, fmt.Errorf("uplink http: %w", err)
	}
	t, err := e.NewTarget("http", "http")
	if err != nil {
		return nil, err
	}
	return &httpTarget{t: t, url: c.URL, headers: c.Headers, client: client}, nil
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
func (h *httpTarget) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan prepared, 1)
	sv := uplink.NewSaver(h.t)
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
		if saveErr = sv.Run(ctx, stop); saveErr != nil {
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
	cfg := h.t.Config()
	var enc encoder
	after := h.t.Cursor()
	for {
		batch, err := h.t.Next(ctx, after, cfg.Batch, cfg.Linger.D())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, store.ErrClosed) {
				return fmt.Errorf("uplink http: read backlog: %w", err)
			}
			h.t.Fail(fmt.Errorf("read backlog: %w", err))
			if uplink.Sleep(ctx, cfg.MaxBackoff.D()) != nil {
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
func (h *httpTarget) send(ctx context.Context, ready <-chan prepared, sv *uplink.Saver) error {
	for {
		var p prepared
		select {
		case <-ctx.Done():
			return nil
		case p = <-ready:
		}
		h.t.SetOldest(p.batch[0].Time)
		if err := h.deliver(ctx, p.batch, p.body, sv); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// deliver sends batch until the platform takes it. A rejected batch is
// split in halves, in order, down to the events that are refused, which
// are dead-lettered. It returns only when the whole batch is accounted for
// (or ctx ends).
//
// body is batch encoded, or nil to encode here. A 2xx moves the cursor in
// memory and the saver persists it; a dead letter's cursor move is saved
// at once, so a restart does not dead-letter the event again.
func (h *httpTarget) deliver(ctx context.Context, batch []store.Raw, body []byte, sv *uplink.Saver) error {
	if body == nil {
		body = EncodeBatch(batch)
	}
	bo := h.t.NewBackoff()
	held := false
	for {
		r := h.post(ctx, batch, body)
		switch {
		case r.Err == nil && r.Status >= 200 && r.Status < 300:
			if held {
				h.t.Log().Info("platform took the critical event it had rejected", "seq", batch[0].Seq, "type", batch[0].Type)
			}
			h.t.Advance(batch[len(batch)-1].Seq, len(batch))
			return sv.Ack(ctx)
		case r.Rejects() && len(batch) == 1 && batch[0].Severity == event.Critical:
			// A gas leak is never dropped because a platform refuses it:
			// it stays first in line, retried with backoff, and guards
			// get an alarm once.
			if !held {
				held = true
				h.t.RejectedCritical(ctx, batch[0], r.Status, r.Body)
			}
		case r.Rejects() && len(batch) == 1:
			if err := h.t.DeadLetter(ctx, batch[0], r.Status, r.Body); err != nil {
				return err
			}
			h.t.Advance(batch[0].Seq, 0)
			if err := h.t.Persist(ctx); err != nil {
				return err
			}
			return sv.Ack(ctx)
		case r.Rejects():
			mid := len(batch) / 2
			h.t.Log().Info("platform rejected a batch; bisecting", "first_seq", batch[0].Seq, "last_seq", batch[len(batch)-1].Seq, "status", r.Status)
			if err := h.deliver(ctx, batch[:mid], nil, sv); err != nil {
				return err
			}
			return h.deliver(ctx, batch[mid:], nil, sv)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.t.Fail(fmt.Errorf("post seq %d..%d: %s", batch[0].Seq, batch[len(batch)-1].Seq, r))
		d := bo.NextBackOff()
		if r.RetryAfter > 0 {
			d = r.RetryAfter
		}
		if err := uplink.Sleep(ctx, d); err != nil {
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

func (h *httpTarget) post(ctx context.Context, batch []store.Raw, body []byte) uplink.Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return uplink.Result{Err: err}
	}
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", IdempotencyKey(h.t.Name(), batch[0], batch[len(batch)-1]))
	req.Header.Set("X-Warden-Gateway", h.t.Env().Gateway)
	req.Header.Set("User-Agent", "warden-uplink")
	return uplink.Do(h.client, req, uplink.ResponseKeep)
}
