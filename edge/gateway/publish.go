package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/store"
)

// publisher mirrors committed events onto warden/<gw>/events/<type>. It
// follows the store by cursor, so a slow or absent broker never holds events
// in memory; the cursor starts at the newest event (history is in the API).
type publisher struct {
	events *prometheus.CounterVec
	st     *store.Store
	client eventPublisher
	prefix string
	log    *slog.Logger
	// observe, when set, sees every event published (Home Assistant states).
	observe func(typ string, js []byte)
}

// eventPublisher is the gateway's MQTT client, or the embedded broker
// itself (in-process, no round trip per event).
type eventPublisher interface {
	Publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error
}

func newPublisher(st *store.Store, c eventPublisher, gw string, events *prometheus.CounterVec, log *slog.Logger) *publisher {
	return &publisher{st: st, client: c, events: events, prefix: "warden/" + gw + "/events/", log: log.With("component", "publisher")}
}

func (p *publisher) run(ctx context.Context) error {
	// The stored JSON is published as it is: no decode, no re-encode.
	return p.st.FollowRaw(ctx, store.FollowOptions{Name: "mqtt-mirror", Start: p.st.LastSeq()},
		func(ctx context.Context, page []store.Raw) (uint64, error) {
			var done uint64
			for _, e := range page {
				p.events.WithLabelValues(e.Type, string(e.Severity)).Inc()
				if p.observe != nil {
					p.observe(e.Type, e.JSON)
				}
				if err := p.publish(ctx, p.prefix+e.Type, e.JSON); err != nil {
					return done, err // ctx ended
				}
				done = e.Seq
			}
			return done, nil
		})
}

// publish retries until the broker takes the event or ctx ends.
func (p *publisher) publish(ctx context.Context, topic string, b []byte) error {
	delay := 200 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.client.Publish(pctx, topic, 1, false, b)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.log.Debug("publish event", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}
