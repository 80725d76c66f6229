package http_test

import (
	"bytes"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/uplink"
	"github.com/smartcommunity/warden/edge/uplink/uplinktest"
)

// Media follow their events on their own queue: a failing media endpoint
// never holds events back, and once it works every file arrives intact.
func TestMediaQueueNeverDelaysEvents(t *testing.T) {
	p := uplinktest.NewPlatform(t)
	var mediaDown atomic.Bool
	mediaDown.Store(true)
	p.Mu.Lock()
	p.MediaHook = func(w http.ResponseWriter, _ *http.Request) bool {
		if mediaDown.Load() {
			http.Error(w, "media store down", http.StatusInternalServerError)
			return true
		}
		return false
	}
	p.Mu.Unlock()
	st := storetest.Open(t, store.Options{})
	snap := bytes.Repeat([]byte("jpeg"), 5000)
	mi, err := st.PutMedia("snapshot", "image/jpeg", snap)
	if err != nil {
		t.Fatal(err)
	}
	uplinktest.Fill(t, st, 300, func(i int) *event.Event {
		ev := uplinktest.Event(event.GateVehicle, event.Info, map[string]any{"i": i})
		if i == 10 {
			ev.Media = []event.Media{{Kind: "snapshot", URL: "/api/v1/media/" + mi.ID, SHA256: mi.SHA256}}
		}
		if i == 20 { // evicted before upload: skipped, counted
			ev.Media = []event.Media{{Kind: "clip", URL: "/api/v1/media/01JD0Z3K9Q4N2T8V5W6X7Y8Z9A"}}
		}
		return ev
	})
	r := uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st})
	testenv.Until(t, time.Minute, "events delivered while media fail", func() bool { return r.U.Protect() == 301 })
	var media uplink.TargetStatus
	for _, s := range r.U.Status() {
		if s.Kind == "media" {
			media = s
		}
	}
	if !media.Retrying || media.Cursor >= 11 {
		t.Fatalf("media status while its endpoint fails = %+v", media)
	}
	mediaDown.Store(false)
	testenv.Until(t, time.Minute, "media uploaded", func() bool {
		for _, s := range r.U.Status() {
			if s.Kind == "media" && s.Cursor == 300 {
				return true
			}
		}
		return false
	})
	p.Mu.Lock()
	defer p.Mu.Unlock()
	got, h := p.Media[mi.ID], p.MediaHdr[mi.ID]
	if !bytes.Equal(got, snap) || h.Get("Content-Type") != "image/jpeg" || h.Get("X-Warden-SHA256") != mi.SHA256 || h.Get("X-Warden-Event-Id") == "" {
		t.Fatalf("media upload: %d bytes, headers %v", len(got), h)
	}
	if len(p.Media) != 1 {
		t.Errorf("%d media uploaded, want 1 (the other was never stored)", len(p.Media))
	}
}
