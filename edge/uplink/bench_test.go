package uplink_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/uplink"
)

// BenchmarkDrain drains a backlog (100,000 events; WARDEN_BENCH_EVENTS=1000000
// for the 1M) to the fake platform over loopback while appends go
// on in parallel, and compares with the fake's own accept rate for the same
// gzip batches posted by a bare client.
//
//	go test -run '^$' -bench Drain -benchtime 1x ./edge/uplink/
func BenchmarkDrain(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("WARDEN_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for i := 0; i < b.N; i++ {
		p := newPlatform(b)
		st := openStore(b, b.TempDir(), nil)
		fill(b, st, n, nil)

		// The platform's own rate: a bare client posting the same batches.
		raws, err := st.ReadRaw(0, 10000)
		if err != nil {
			b.Fatal(err)
		}
		bodies := make([][]byte, 0, len(raws)/200)
		for j := 0; j+200 <= len(raws); j += 200 {
			bodies = append(bodies, uplink.EncodeBatch(raws[j:j+200]))
		}
		t0 := time.Now()
		for j, body := range bodies {
			req, _ := http.NewRequest(http.MethodPost, p.url(), bytes.NewReader(body))
			req.Header.Set("Content-Encoding", "gzip")
			req.Header.Set("Idempotency-Key", strconv.Itoa(j))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("bare post: %v %v", err, resp)
			}
			resp.Body.Close()
		}
		bare := float64(len(bodies)*200) / time.Since(t0).Seconds()
		p.mu.Lock()
		p.ids, p.seqs = map[string]int{}, nil
		p.mu.Unlock()

		cfg := fastConfig(p.url())
		ctx, cancel := context.WithCancel(context.Background())
		var ingested atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // ingest in parallel: commits of 50 as fast as the store takes them
			defer wg.Done()
			for ctx.Err() == nil {
				evs := make([]*event.Event, 50)
				for k := range evs {
					evs[k] = mkEvent(event.GateVehicle, event.Info, map[string]any{"k": k})
				}
				if st.Append(ctx, evs...) == nil {
					ingested.Add(50)
				}
			}
		}()
		start := time.Now()
		r := runUplink(b, uplink.Options{Config: cfg, Store: st})
		waitFor(b, "backlog drained", func() bool { return r.u.Protect() > uint64(n) })
		el := time.Since(start)
		cancel()
		wg.Wait()
		r.stop()
		drain := float64(n) / el.Seconds()
		b.ReportMetric(drain, "drain_events/s")
		b.ReportMetric(float64(ingested.Load())/el.Seconds(), "ingest_events/s")
		b.ReportMetric(bare, "platform_events/s")
		b.ReportMetric(drain/bare, "ratio")
	}
}
