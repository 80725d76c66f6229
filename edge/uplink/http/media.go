package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/uplink"
)

// mediaQueue uploads the snapshots and clips named by events, with PUT
// <media_url>/<media id>. It has its own cursor and never runs ahead of the
// HTTP event target, so media always follow their events and never delay
// them.
type mediaQueue struct {
	t       *uplink.Target
	events  *uplink.Target
	base    string
	headers map[string]string
	client  *http.Client
}

func newMediaQueue(e *uplink.Env, ht *httpTarget) (*mediaQueue, error) {
	c := e.Config.HTTP
	base := c.MediaURL
	if base == "" {
		base = strings.TrimRight(c.URL, "/") + "/media"
	}
	if _, err := url.Parse(base); err != nil {
		return nil, fmt.Errorf("uplink media url %q: %w", base, err)
	}
	client := e.Client
	if client == nil {
		// Clips can be large: no overall timeout, only on the response header.
		tr := ht.client.Transport
		client = &http.Client{Transport: tr}
	}
	t, err := e.NewQueue("http-media", "media")
	if err != nil {
		return nil, err
	}
	return &mediaQueue{t: t, events: ht.t, base: strings.TrimRight(base, "/"), headers: c.Headers, client: client}, nil
}

type mediaRefs struct {
	ID    string        `json:"id"`
	Media []event.Media `json:"media"`
}

var noMedia = []byte(`"media":[]`)

const mediaPage = 500 // events read at a time

// run follows the HTTP target's cursor. It reads at most what the target
// has delivered, in pages of up to mediaPage events; after a short page it
// rests uplink.SaveInterval, so a fast drain is not read a second time in small
// pieces. Its cursor is saved at most every uplink.SaveInterval and at
// stop: after a crash a few files are sent again, which the platform
// answers with 2xx or 409.
func (q *mediaQueue) Run(ctx context.Context) (err error) {
	defer func() {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if perr := q.t.Persist(pctx); perr != nil && err == nil && !errors.Is(perr, store.ErrClosed) {
			q.t.Log().Warn("media cursor not saved at stop; some media will be sent again", "err", perr)
		}
	}()
	for {
		after, limit := q.t.Cursor(), q.events.Cursor()
		if after >= limit {
			adv := q.events.Advanced()
			if q.events.Cursor() <= after {
				select {
				case <-ctx.Done():
					return nil
				case <-adv:
				}
			}
			continue
		}
		page := int(min(limit-after, mediaPage))
		q.t.Tail().Seek(after)
		batch, _, err := q.t.Tail().ReadRaw(page)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("uplink media: read: %w", err)
		}
		if len(batch) == 0 { // evicted: skip to the event target
			batch = []store.Raw{{Seq: limit}}
		}
		last := after
		for _, r := range batch {
			if r.Seq > limit {
				break
			}
			if r.JSON != nil && !bytes.Contains(r.JSON, noMedia) {
				var refs mediaRefs
				if err := json.Unmarshal(r.JSON, &refs); err == nil {
					for _, m := range refs.Media {
						if !strings.HasPrefix(m.URL, uplink.MediaPrefix) {
							continue // kept elsewhere (a sealed face crop): not ours to upload
						}
						if err := q.upload(ctx, refs.ID, m); err != nil {
							return nil // ctx ended
						}
					}
				}
			}
			last = r.Seq
		}
		if err := q.t.Ack(ctx, last, 0, false); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if page < mediaPage && uplink.Sleep(ctx, uplink.SaveInterval) != nil {
			return nil
		}
	}
}

// upload sends one media file until the platform takes it, refuses it for
// good, or it is gone from the store. It returns an error only when ctx ends.
func (q *mediaQueue) upload(ctx context.Context, eventID string, m event.Media) error {
	id := path.Base(strings.SplitN(m.URL, "?", 2)[0])
	bo := q.t.NewBackoff()
	for {
		f, mi, err := q.t.Env().Store.OpenMedia(id)
		if errors.Is(err, store.ErrNotFound) {
			q.t.MediaFailed("missing")
			q.t.Log().Info("media gone before upload", "media_id", id, "event_id", eventID)
			return nil
		}
		var r uplink.Result
		if err != nil {
			r.Err = err
		} else {
			req, rerr := http.NewRequestWithContext(ctx, http.MethodPut, q.base+"/"+url.PathEscape(id), f)
			if rerr != nil {
				_ = f.Close()
				q.t.MediaFailed("rejected")
				q.t.Log().Error("media upload request invalid", "media_id", id, "err", rerr)
				return nil
			}
			req.ContentLength = mi.Size
			for k, v := range q.headers {
				req.Header.Set(k, v)
			}
			req.Header.Set("Content-Type", mi.ContentType)
			req.Header.Set("X-Warden-Event-ID", eventID)
			req.Header.Set("X-Warden-Media-Kind", mi.Kind)
			req.Header.Set("X-Warden-SHA256", mi.SHA256)
			req.Header.Set("X-Warden-Gateway", q.t.Env().Gateway)
			r = uplink.Do(q.client, req, uplink.ResponseKeep)
			_ = f.Close()
		}
		switch {
		case r.Err == nil && (r.Status >= 200 && r.Status < 300 || r.Status == http.StatusConflict):
			q.t.MediaUploaded()
			return nil
		case r.Rejects():
			q.t.MediaFailed("rejected")
			q.t.Log().Error("platform refused media; skipped", "media_id", id, "event_id", eventID, "status", r.Status, "response", uplink.Truncate(r.Body, 200))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		q.t.Fail(fmt.Errorf("put media %s: %s", id, r))
		d := bo.NextBackOff()
		if r.RetryAfter > 0 {
			d = r.RetryAfter
		}
		if err := uplink.Sleep(ctx, d); err != nil {
			return err
		}
	}
}
