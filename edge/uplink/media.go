package uplink

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
)

// mediaQueue uploads the snapshots and clips named by events, with PUT
// <media_url>/<media id>. It has its own cursor and never runs ahead of the
// HTTP event target, so media always follow their events and never delay
// them.
type mediaQueue struct {
	t       *target
	events  *target
	base    string
	headers map[string]string
	client  *http.Client
}

func newMediaQueue(u *Uplink, ht *httpTarget) (*mediaQueue, error) {
	c := u.o.Config.HTTP
	base := c.MediaURL
	if base == "" {
		base = strings.TrimRight(c.URL, "/") + "/media"
	}
	if _, err := url.Parse(base); err != nil {
		return nil, fmt.Errorf("uplink media url %q: %w", base, err)
	}
	client := u.o.HTTPClient
	if client == nil {
		// Clips can be large: no overall timeout, only on the response header.
		tr := ht.client.Transport
		client = &http.Client{Transport: tr}
	}
	t, err := u.newTarget("http-media", "media")
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

// storeMediaPrefix is the URL of media files in the event store.
const storeMediaPrefix = "/api/v1/media/"

const mediaPage = 500 // events read at a time

// run follows the HTTP target's cursor. It reads at most what the target
// has delivered, in pages of up to mediaPage events; after a short page it
// rests saveInterval, so a fast drain is not read a second time in small
// pieces. Its cursor is saved at most every saveInterval and at
// stop: after a crash a few files are sent again, which the platform
// answers with 2xx or 409.
func (q *mediaQueue) run(ctx context.Context) (err error) {
	defer func() {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if perr := q.t.persist(pctx); perr != nil && err == nil && !errors.Is(perr, store.ErrClosed) {
			q.t.log.Warn("media cursor not saved at stop; some media will be sent again", "err", perr)
		}
	}()
	for {
		after, limit := q.t.cursor.Load(), q.events.cursor.Load()
		if after >= limit {
			adv := q.events.advancedCh()
			if q.events.cursor.Load() <= after {
				select {
				case <-ctx.Done():
					return nil
				case <-adv:
				}
			}
			continue
		}
		page := int(min(limit-after, mediaPage))
		q.t.tail.Seek(after)
		batch, _, err := q.t.tail.ReadRaw(page)
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
						if !strings.HasPrefix(m.URL, storeMediaPrefix) {
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
		if err := q.t.ack(ctx, last, 0, false); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if page < mediaPage && sleep(ctx, saveInterval) != nil {
			return nil
		}
	}
}

// upload sends one media file until the platform takes it, refuses it for
// good, or it is gone from the store. It returns an error only when ctx ends.
func (q *mediaQueue) upload(ctx context.Context, eventID string, m event.Media) error {
	id := path.Base(strings.SplitN(m.URL, "?", 2)[0])
	bo := q.t.newBackoff()
	for {
		f, mi, err := q.t.u.st.OpenMedia(id)
		if errors.Is(err, store.ErrNotFound) {
			q.t.m.mediaFailed.WithLabelValues("missing").Inc()
			q.t.log.Info("media gone before upload", "media_id", id, "event_id", eventID)
			return nil
		}
		var r result
		if err != nil {
			r.err = err
		} else {
			req, rerr := http.NewRequestWithContext(ctx, http.MethodPut, q.base+"/"+url.PathEscape(id), f)
			if rerr != nil {
				_ = f.Close()
				q.t.m.mediaFailed.WithLabelValues("rejected").Inc()
				q.t.log.Error("media upload request invalid", "media_id", id, "err", rerr)
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
			req.Header.Set("X-Warden-Gateway", q.t.u.o.Gateway)
			r = do(q.client, req)
			_ = f.Close()
		}
		switch {
		case r.err == nil && (r.status >= 200 && r.status < 300 || r.status == http.StatusConflict):
			q.t.m.mediaUploaded.Inc()
			q.t.delivered.Add(1)
			return nil
		case r.rejects():
			q.t.m.mediaFailed.WithLabelValues("rejected").Inc()
			q.t.log.Error("platform refused media; skipped", "media_id", id, "event_id", eventID, "status", r.status, "response", truncate(r.body, 200))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		q.t.fail(fmt.Errorf("put media %s: %s", id, r))
		d := bo.NextBackOff()
		if r.retryAfter > 0 {
			d = r.retryAfter
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}
