package ingest_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/ingest"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

func counterDevice(id string) config.Device {
	return config.Device{ID: id, Kind: "perimeter", Driver: "generic_json", Topic: "test/" + id,
		Location: event.Location{Building: "1", Zone: "north"},
		Extra:    map[string]any{"map": map[string]any{"type": "perimeter.intrusion", "data": map[string]any{"n": "n"}}}}
}

// countingActor records how many messages each device's actors saw.
type countingActor struct{ n atomic.Int64 }

func (a *countingActor) React(_ config.Device, _ drivers.Message, evs []*event.Event) []*event.Event {
	a.n.Add(1)
	return evs
}

func newRouter(t *testing.T, st *store.Store, reg prometheus.Registerer, devs ...config.Device) (*ingest.Router, *countingActor) {
	t.Helper()
	a := &countingActor{}
	r, err := ingest.New(ingest.Options{Gateway: "gw", Site: "s", Devices: devs, Registry: drivers.Default, Store: st, Media: st,
		Actors: []ingest.Actor{a}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return r, a
}

func ingestWait(r *ingest.Router, m ingest.Message) error {
	res := make(chan error, 1)
	r.Ingest(m, func(err error) { res <- err })
	return <-res
}

// Devices ingest in parallel, each from its own goroutine as the broker
// does per connection: every message becomes one event, each device's
// events are committed in its order.
func TestIngestConcurrentDevicesKeepOrder(t *testing.T) {
	st := storetest.Open(t, store.Options{})
	const devices, per = 4, 200
	var devs []config.Device
	for i := range devices {
		devs = append(devs, counterDevice(fmt.Sprintf("c%d", i)))
	}
	r, actor := newRouter(t, st, nil, devs...)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pending sync.WaitGroup
			for n := range per {
				pending.Add(1)
				// not waiting for each commit: pipelined like a connection
				r.Ingest(ingest.Message{Topic: d.Topic, Payload: fmt.Appendf(nil, `{"n":%d}`, n)}, func(err error) {
					if err != nil {
						failed.Add(1)
					}
					pending.Done()
				})
			}
			pending.Wait()
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d commits failed", failed.Load())
	}
	evs, _, err := st.Read(0, devices*per+10, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != devices*per {
		t.Fatalf("%d events, want %d", len(evs), devices*per)
	}
	next := map[string]int{}
	for _, e := range evs {
		n := int(e.Data["n"].(float64))
		if n != next[e.Source.ID] {
			t.Fatalf("device %s: event n=%d where %d was due", e.Source.ID, n, next[e.Source.ID])
		}
		next[e.Source.ID]++
	}
	if actor.n.Load() != devices*per {
		t.Errorf("actors saw %d messages, want %d", actor.n.Load(), devices*per)
	}
}

func TestIngestRedeliveryIsDeduplicated(t *testing.T) {
	st := storetest.Open(t, store.Options{})
	reg := prometheus.NewRegistry()
	d := counterDevice("c1")
	r, _ := newRouter(t, st, reg, d)
	m := ingest.Message{Topic: d.Topic, Payload: []byte(`{"n":7}`)}
	if err := ingestWait(r, m); err != nil {
		t.Fatal(err)
	}
	m.Dup = true // the device resends after a lost PUBACK
	if err := ingestWait(r, m); err != nil {
		t.Fatalf("a redelivered duplicate must be acknowledged: %v", err)
	}
	// unknown topics are dead-lettered, then acknowledged; commands ignored
	if err := ingestWait(r, ingest.Message{Topic: "test/nobody", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := ingestWait(r, ingest.Message{Topic: "test/c1/set", Payload: []byte(`"OFF"`)}); err != nil {
		t.Fatal(err)
	}
	evs, _, _ := st.Read(0, 10, store.Filter{})
	if len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
	dead, err := st.DeadLetters(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Topic != "test/nobody" {
		t.Errorf("dead letters %+v, want one for test/nobody", dead)
	}
	for name, want := range map[string]float64{
		"warden_ingest_redelivered_duplicates_total": 1, "warden_ingest_ignored_total": 1,
	} {
		if got := testenv.CounterValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// A commit that fails is reported to the caller (no retry, no ack) after the
// actors ran, and readiness shows it until a commit succeeds.
func TestIngestCommitFailureIsReturned(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d := counterDevice("c1")
	r, actor := newRouter(t, st, nil, d)
	st.Close()
	start := time.Now()
	err = ingestWait(r, ingest.Message{Topic: d.Topic, Payload: []byte(`{"n":1}`)})
	if !errors.Is(err, ingest.ErrNotCommitted) || !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Ingest on a closed store = %v, want ErrNotCommitted wrapping store.ErrClosed", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Ingest waited %v for a failed commit", time.Since(start))
	}
	if actor.n.Load() != 1 {
		t.Errorf("actors ran %d times, want 1 (they act even when the commit fails)", actor.n.Load())
	}
	if r.Healthy() == nil {
		t.Error("Healthy() = nil while commits fail")
	}
}

// A plate camera's pictures arrive with its read: they are stored as media
// and named in the committed event; a picture that is not a JPEG is left
// out and said, and the read itself goes on.
func TestDevicePicturesBecomeMedia(t *testing.T) {
	st := storetest.Open(t, store.Options{Dir: t.TempDir()})
	gate := config.Device{ID: "gate-1", Kind: "barrier_gate", Driver: "generic", Topic: "lpr/gate-1"}
	r, _ := newRouter(t, st, nil, gate)
	scene := []byte{0xFF, 0xD8, 0xFF, 0xE0, 's', 'c', 'e', 'n', 'e'}
	plate := []byte{0xFF, 0xD8, 0xFF, 0xE0, 'p', 'l', 'a', 't', 'e'}
	payload := fmt.Sprintf(`{"plate":"浙A1","direction":"in","image":%q,"plate_image":"data:image/jpeg;base64,%s"}`,
		base64.StdEncoding.EncodeToString(scene), base64.StdEncoding.EncodeToString(plate))
	if err := ingestWait(r, ingest.Message{Topic: "lpr/gate-1", Payload: []byte(payload), Received: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := ingestWait(r, ingest.Message{Topic: "lpr/gate-1", Payload: []byte(`{"plate":"浙A2","image":"bm90IGEganBlZw=="}`), Received: time.Now()}); err != nil {
		t.Fatal(err)
	}
	evs, _, err := st.Read(0, 10, store.Filter{})
	if err != nil || len(evs) != 2 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	got := map[string][]byte{}
	for _, m := range evs[0].Media {
		f, _, err := st.OpenMedia(strings.TrimPrefix(m.URL, ingest.MediaURL))
		if err != nil {
			t.Fatalf("%s: %v", m.URL, err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got[m.Kind] = b
	}
	if !bytes.Equal(got["snapshot"], scene) || !bytes.Equal(got["crop"], plate) {
		t.Errorf("media %v, want the scene as snapshot and the plate as crop", evs[0].Media)
	}
	if len(evs[1].Media) != 0 || evs[1].Data["picture_error"] != "image: not a base64 JPEG" || evs[1].Data["plate"] != "浙A2" {
		t.Errorf("bad picture: media %v data %v, want the read without it and picture_error", evs[1].Media, evs[1].Data)
	}
}
