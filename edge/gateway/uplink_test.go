package gateway_test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/testenv"
)

// The gateway pushes committed events to the platform over HTTP, gzip
// batches in seq order, and keeps them while the platform is down.
func TestUplinkPushesEventsInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []apiEvent
	up := false
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Idempotency-Key") == "" {
			http.Error(w, "want gzip and Idempotency-Key", http.StatusBadRequest)
			return
		}
		batch, ok := readBatch(w, r)
		if !ok {
			return
		}
		got = append(got, batch...)
	}))
	defer platform.Close()

	s := newSite(t, "", counterDevice+fmt.Sprintf("uplink:\n  http: {url: %q}\n  min_backoff: 100ms\n  max_backoff: 500ms\n", platform.URL+"/api/events"))
	s.start()
	c := publisher(t, s.mqttURL)
	for n := range 50 {
		publish(t, c, "test/counter", fmt.Appendf(nil, `{"n":%d}`, n))
	}
	time.Sleep(time.Second) // the platform refuses for a while
	// The target is an event-log follower: /readyz shows its backlog.
	uplinkLag := func() (uint64, bool) {
		var body struct {
			Followers map[string]uint64 `json:"followers"`
		}
		if err := s.apiGet("/readyz", &body); err != nil {
			t.Fatal(err)
		}
		lag, ok := body.Followers["uplink http"]
		return lag, ok
	}
	if lag, ok := uplinkLag(); !ok || lag < 50 {
		t.Errorf("/readyz uplink http lag %d (listed %v) while the platform refuses 50 events", lag, ok)
	}
	mu.Lock()
	up = true
	mu.Unlock()
	testenv.Eventually(t, 30*time.Second, "all events delivered", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, e := range got {
			if e.Type == "perimeter.intrusion" {
				n++
			}
		}
		return n >= 50, fmt.Sprintf("%d of 50", n)
	})
	testenv.Eventually(t, 10*time.Second, "uplink lag 0 on /readyz", func() (bool, string) {
		lag, _ := uplinkLag()
		return lag == 0, fmt.Sprint(lag)
	})
	mu.Lock()
	defer mu.Unlock()
	var last uint64
	seen := map[string]bool{}
	for _, e := range got {
		if e.Seq <= last || seen[e.ID] {
			t.Fatalf("out of order or duplicate at seq %d (after %d)", e.Seq, last)
		}
		last, seen[e.ID] = e.Seq, true
	}
}

// kill -9 the gateway 20 times while it drains a backlog to the platform:
// at the end every event has arrived, first arrivals are in seq order, and
// the duplicates (only from batches in flight at a kill) are counted.
func TestUplinkDrainSurvivesKillLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("kill loop skipped in -short mode")
	}
	const total, kills = 2000, 20
	var mu sync.Mutex
	count := map[string]int{}
	var firstSeqs []uint64
	up := false
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		isUp := up
		mu.Unlock()
		if !isUp {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(20 * time.Millisecond) // a platform that takes its time
		batch, ok := readBatch(w, r)
		if !ok {
			return
		}
		mu.Lock()
		for _, e := range batch {
			if count[e.ID] == 0 && e.Type == "perimeter.intrusion" {
				firstSeqs = append(firstSeqs, e.Seq)
			}
			count[e.ID]++
		}
		mu.Unlock()
	}))
	defer platform.Close()

	s := newSite(t, "", counterDevice+fmt.Sprintf("uplink:\n  http: {url: %q}\n  batch: 50\n  min_backoff: 50ms\n  max_backoff: 200ms\n", platform.URL))
	s.start()
	c := publisher(t, s.mqttURL)
	for n := range total {
		publish(t, c, "test/counter", fmt.Appendf(nil, `{"n":%d}`, n))
	}
	c.Disconnect(50)
	testenv.Eventually(t, 60*time.Second, "backlog committed", func() (bool, string) {
		evs, err := s.allEvents("perimeter.")
		return len(evs) == total, fmt.Sprintf("%d of %d (err %v)", len(evs), total, err)
	})
	mu.Lock()
	up = true
	mu.Unlock()
	for k := range kills {
		time.Sleep(time.Duration(200+k*37%400) * time.Millisecond)
		s.kill9()
		s.start()
	}
	testenv.Eventually(t, 120*time.Second, "every event delivered", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(firstSeqs) == total, fmt.Sprintf("%d of %d delivered", len(firstSeqs), total)
	})
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, n := range count {
		dups += n - 1
	}
	for i := 1; i < len(firstSeqs); i++ {
		if firstSeqs[i] <= firstSeqs[i-1] {
			t.Fatalf("first arrivals out of seq order: %d after %d", firstSeqs[i], firstSeqs[i-1])
		}
	}
	// A kill can resend what was accepted since the cursor was last saved:
	// at most 33 batches (docs/uplink.md, "resend window").
	const window = 33 * 50
	t.Logf("%d events delivered across %d kill -9s; %d duplicate deliveries (bound: %d per kill)", total, kills, dups, window)
	if dups > kills*window {
		t.Errorf("%d duplicates, more than the resend window allows", dups)
	}
}

// readBatch decodes the fake platform's gzipped JSON batch, answering 400
// to one it cannot read.
func readBatch(w http.ResponseWriter, r *http.Request) ([]apiEvent, bool) {
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return nil, false
	}
	var batch []apiEvent
	if err := json.NewDecoder(zr).Decode(&batch); err != nil {
		http.Error(w, err.Error(), 400)
		return nil, false
	}
	return batch, true
}
