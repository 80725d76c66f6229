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
	badDate := []byte(`{"id":"x","seq":1,"gateway":"g","site":"s","type":"gas.leak","severity":"info","media":[],"time":"2026-02-30T00:00:00.000Z"}`)
	declined := [][]byte{b, badDate, []byte(`{"id":"x","seq":1,"time":"2026-01-01T00:00:00Z","type":"gas.leak","severity":"info"}`), []byte(`garbage`), nil}

	for _, b := range js {
		l, ok := rawLite(b, nil)
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
		if _, ok := rawLite(b, nil); ok {
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
			if _, ok := rawLite(js, map[string]string{}); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("fast+valid", func(b *testing.B) {
		for b.Loop() {
			if _, ok := rawLite(js, map[string]string{}); !ok || !json.Valid(js) {
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

// BenchmarkReadRaw reads 10,000 stored events a page of 200 at a time, as
// the uplink does.
func BenchmarkReadRaw(b *testing.B) {
	s := openStore(b, Options{})
	for range 50 {
		evs := make([]*event.Event, 200)
		for i := range evs {
			evs[i] = mkEvent(b, event.GateVehicle, event.Info, "1")
		}
		if err := s.Append(b.Context(), evs...); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		n := 0
		for after := uint64(0); ; {
			raws, err := s.ReadRaw(after, 200)
			if err != nil {
				b.Fatal(err)
			}
			if len(raws) == 0 {
				break
			}
			n += len(raws)
			after = raws[len(raws)-1].Seq
		}
		if n != 10000 {
			b.Fatalf("read %d events", n)
		}
	}
}

// ReadRaw's copies share chunks but never each other's bytes, and agree
// with Read.
func TestReadRawChunks(t *testing.T) {
	s := openStore(t, Options{})
	evs := make([]*event.Event, 300)
	for i := range evs {
		evs[i] = mkEvent(t, testTypes[i%len(testTypes)], event.Critical, "1")
	}
	if err := s.Append(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	raws, err := s.ReadRaw(0, 1000)
	if err != nil || len(raws) != 300 {
		t.Fatalf("ReadRaw = %d, %v", len(raws), err)
	}
	second := string(raws[1].JSON)
	raws[0].JSON = append(raws[0].JSON, "garbage"...)
	if string(raws[1].JSON) != second {
		t.Fatal("appending to one event's JSON changed the next")
	}
	full, _, err := s.Read(0, 1000, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range raws[1:] {
		ev := full[i+1]
		var got event.Event
		if err := json.Unmarshal(r.JSON, &got); err != nil {
			t.Fatalf("seq %d: %v", r.Seq, err)
		}
		if r.Seq != ev.Seq || got.ID != ev.ID || r.Type != ev.Type || r.Severity != ev.Severity || !r.Time.Equal(ev.Time) {
			t.Fatalf("raw %d %s %s %s, event %d %s %s %s", r.Seq, r.Type, r.Severity, r.Time, ev.Seq, ev.Type, ev.Severity, ev.Time)
		}
	}
}
