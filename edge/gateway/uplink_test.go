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
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var batch []apiEvent
		if err := json.NewDecoder(zr).Decode(&batch); err != nil {
			http.Error(w, err.Error(), 400)
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
	mu.Lock()
	up = true
	mu.Unlock()
	eventually(t, 30*time.Second, "all events delivered", func() (bool, string) {
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
