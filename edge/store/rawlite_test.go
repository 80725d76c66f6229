package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

// rawLite agrees with a full decode on every layout it accepts, and
// declines the ones it cannot read exactly.
func TestRawLiteMatchesDecode(t *testing.T) {
	o := event.Origin{Gateway: "gw-1", Site: "site", Source: event.Source{Kind: "test", ID: "t1"},
		Location: event.Location{Building: "3", Zone: "gate"}}
	tricky := map[string]any{"type": "x", "time": "2001-01-01T00:00:00.000Z", "s": `,"type":"y","time":"z"}`, "n": 1.5}
	var js [][]byte
	for _, d := range []map[string]any{nil, {"i": 1}, tricky} {
		for _, sev := range []event.Severity{event.Info, event.Critical} {
			ev, err := event.Make(o, event.GasLeak, sev, d)
			if err != nil {
				t.Fatal(err)
			}
			ev.Seq = 12345
			ev.Media = []event.Media{{Kind: "snapshot", URL: "/api/v1/media/x"}}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			js = append(js, b)
		}
	}
	esc := o
	esc.Gateway = `gw "quoted"`
	ev, _ := event.Make(esc, event.GasLeak, event.Info, nil)
	b, _ := json.Marshal(ev)
	declined := [][]byte{b, []byte(`{"id":"x","seq":1,"time":"2026-01-01T00:00:00Z","type":"gas.leak","severity":"info"}`), []byte(`garbage`), nil}

	for _, b := range js {
		l, ok := rawLite(b)
		if !ok {
			t.Fatalf("declined %s", b)
		}
		var want lite
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if l.Type != want.Type || l.Severity != want.Severity || !l.Time.Equal(want.Time) || l.Time.Location() != time.UTC {
			t.Fatalf("rawLite %+v, decode %+v for %s", l, want, b)
		}
	}
	for _, b := range declined {
		if _, ok := rawLite(b); ok {
			t.Errorf("accepted %q", b)
		}
	}
}

func BenchmarkRawLite(b *testing.B) {
	ev, _ := event.Make(event.Origin{Gateway: "gw-1", Site: "site", Source: event.Source{Kind: "test", ID: "t1"}},
		event.GateVehicle, event.Info, map[string]any{"i": 1, "plate": "A12345"})
	js, _ := json.Marshal(ev)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, ok := rawLite(js); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("fast+valid", func(b *testing.B) {
		for b.Loop() {
			if _, ok := rawLite(js); !ok || !json.Valid(js) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			var l lite
			if err := json.Unmarshal(js, &l); err != nil {
				b.Fatal(err)
			}
		}
	})
}
