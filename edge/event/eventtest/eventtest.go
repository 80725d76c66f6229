// Package eventtest makes events for tests: one test origin (gateway
// gw-test at site "site", a gas detector in building 3, unit 2, room 201)
// and options for what a test cares about.
package eventtest

import (
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

// Option changes one part of the event New makes.
type Option func(*spec)

type spec struct {
	o    event.Origin
	sev  event.Severity
	data map[string]any
}

// Severity overrides the type's default severity.
func Severity(s event.Severity) Option { return func(sp *spec) { sp.sev = s } }

// Source sets the source device or camera.
func Source(kind, id string) Option {
	return func(sp *spec) { sp.o.Source = event.Source{Kind: kind, ID: id} }
}

// Location sets where the event happened.
func Location(l event.Location) Option { return func(sp *spec) { sp.o.Location = l } }

// At sets the event's time (default now).
func At(t time.Time) Option { return func(sp *spec) { sp.o.Time = t } }

// Gateway sets the gateway and site.
func Gateway(gw, site string) Option { return func(sp *spec) { sp.o.Gateway, sp.o.Site = gw, site } }

// Data sets the event's data.
func Data(m map[string]any) Option { return func(sp *spec) { sp.data = m } }

// New makes an event of typ; an event.Make error (a test's own mistake)
// panics.
func New(typ string, opts ...Option) *event.Event {
	sp := spec{o: event.Origin{
		Gateway: "gw-test", Site: "site",
		Source:   event.Source{Kind: "gas_detector", ID: "gas-3-2-201"},
		Location: event.Location{Building: "3", Unit: "2", Room: "201"},
	}}
	for _, o := range opts {
		o(&sp)
	}
	ev, err := event.Make(sp.o, typ, sp.sev, sp.data)
	if err != nil {
		panic("eventtest: " + err.Error())
	}
	return ev
}
