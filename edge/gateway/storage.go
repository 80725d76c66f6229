package gateway

import (
	"context"
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

// storageCheckEvery is how often watchStorage looks at the stores.
const storageCheckEvery = time.Second

// watchStorage raises system.storage when the event store or the broker's
// file starts failing its commits (a full disk, I/O errors). The event
// cannot be stored then, so the alarm manager shows it from memory and
// stores it once a commit succeeds; /readyz names the failing part all
// along.
func (g *Gateway) watchStorage(ctx context.Context) error {
	type part struct {
		name, code string // code: the reason_code guards read in their language
		healthy    func() error
	}
	parts := []part{{"event store", "storage.events", g.store.Healthy}}
	if g.broker != nil {
		parts = append(parts, part{"mqtt broker store", "storage.broker", g.broker.Healthy})
	}
	failing := make([]bool, len(parts))
	t := time.NewTicker(storageCheckEvery)
	defer t.Stop()
	for {
		for i, p := range parts {
			err := p.healthy()
			switch {
			case err != nil && !failing[i]:
				failing[i] = true
				g.log.Error("storage failing", "part", p.name, "err", err)
				g.raise(ctx, g.cfg.Gateway.ID, event.SystemStorage, map[string]any{
					"reason": p.name + " cannot commit: " + err.Error(), "part": p.name, "reason_code": p.code,
				})
			case err == nil && failing[i]:
				failing[i] = false
				g.log.Info("storage commits again", "part", p.name)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// raiseFault records a system.fault (a part of the gateway is off) so that
// guards see it as an alarm.
func (g *Gateway) raiseFault(ctx context.Context, component, code, reason string) {
	g.raise(ctx, component, event.SystemFault, map[string]any{"component": component, "reason": reason, "reason_code": code})
}

// raise records one of the gateway's own events (source kind gateway); one
// the store refuses is shown from memory and stored when it recovers.
func (g *Gateway) raise(ctx context.Context, sourceID, typ string, data map[string]any) {
	ev := event.New(event.Origin{Gateway: g.cfg.Gateway.ID, Site: g.cfg.Gateway.Site,
		Source: event.Source{Kind: "gateway", ID: sourceID}}, typ, data)
	if err := g.store.Append(ctx, ev); err != nil && ctx.Err() == nil {
		g.alarms.HoldUnstored(ev)
	}
}
