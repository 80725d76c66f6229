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
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/uplink"
	uphttp "github.com/smartcommunity/warden/edge/uplink/http"
	"github.com/smartcommunity/warden/edge/uplink/uplinktest"
)

// BenchmarkDrain drains a backlog (100,000 events; WARDEN_BENCH_EVENTS=1000000
// for the 1M; WARDEN_BENCH_BATCH sets the batch) to the fake platform over loopback and compares with
// the fake's own accept rate: a bare client posting the same gzip batches
// (the uplink's batch, 200 events by default) one at a time on one kept-alive
// connection, as the uplink does. The platform decompresses, parses and
// records every event. "ingest" runs both measurements while appends go on
// in parallel (commits of 50 as fast as the store takes them); "quiet"
// runs them alone.
//
//	go test -run '^$' -bench Drain -benchtime 1x ./edge/uplink/
func BenchmarkDrain(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("WARDEN_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for _, ingest := range []bool{false, true} {
		name := "quiet"
		if ingest {
			name = "ingest"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchDrain(b, n, ingest)
			}
		})
	}
}

func benchDrain(b *testing.B, n int, ingest bool) {
	p := uplinktest.NewPlatform(b)
	st := storetest.Open(b, store.Options{})
	uplinktest.Fill(b, st, n, nil)
	cfg := uplinktest.FastConfig(p.URL())
	if v, err := strconv.Atoi(os.Getenv("WARDEN_BENCH_BATCH")); err == nil && v > 0 {
		cfg.Batch = v
	}
	size := cfg.Batch

	// ingesting appends in parallel until the returned stop is called,
	// which gives the events appended per second.
	ingesting := func() (stop func() float64) {
		if !ingest {
			return func() float64 { return 0 }
		}
		ctx, cancel := context.WithCancel(context.Background())
		var ingested atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		start := time.Now()
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				evs := make([]*event.Event, 50)
				for k := range evs {
					evs[k] = uplinktest.Event(event.GateVehicle, event.Info, map[string]any{"k": k})
				}
				if st.Append(ctx, evs...) == nil {
					ingested.Add(50)
				}
			}
		}()
		return func() float64 {
			el := time.Since(start)
			cancel()
			wg.Wait()
			return float64(ingested.Load()) / el.Seconds()
		}
	}

	// The platform's own rate: a bare client posting the same batches of
	// the same n events, encoded beforehand.
	var bodies [][]byte
	for after := uint64(0); after < uint64(n); {
		raws, err := st.ReadRaw(after, size)
		if err != nil {
			b.Fatal(err)
		}
		if len(raws) < size {
			break
		}
		bodies = append(bodies, uphttp.EncodeBatch(raws))
		after = raws[len(raws)-1].Seq
	}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer client.CloseIdleConnections()
	stopIngest := ingesting()
	t0 := time.Now()
	for j, body := range bodies {
		req, _ := http.NewRequest(http.MethodPost, p.URL(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Idempotency-Key", strconv.Itoa(j))
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("bare post: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	bare := float64(len(bodies)*size) / time.Since(t0).Seconds()
	bareIngest := stopIngest()
	p.Mu.Lock()
	p.IDs, p.Seqs, p.Keys, p.Times = map[string]int{}, nil, nil, nil
	p.Mu.Unlock()

	backlog := st.LastSeq() // the drain's target: everything appended so far
	conns := p.Conns.Load()
	stopIngest = ingesting()
	start := time.Now()
	r := uplinktest.Run(b, uplink.Options{Config: cfg, Store: st})
	deadline := start.Add(time.Minute + time.Duration(backlog)*100*time.Microsecond)
	for r.U.Protect() <= backlog {
		if time.Now().After(deadline) {
			b.Fatalf("backlog of %d not drained by %s", backlog, deadline.Sub(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	conns = p.Conns.Load() - conns
	drainIngest := stopIngest()
	r.Stop()
	if d := p.Distinct(); d < int(backlog) {
		b.Fatalf("platform has %d distinct events, want at least %d", d, backlog)
	}
	drain := float64(backlog) / el.Seconds()
	b.ReportMetric(drain, "drain_events/s")
	b.ReportMetric(bare, "platform_events/s")
	b.ReportMetric(drain/bare, "ratio")
	b.ReportMetric(float64(conns), "drain_conns")
	if ingest {
		b.ReportMetric(drainIngest, "ingest_events/s")
		b.ReportMetric(bareIngest, "ingest_bare_events/s")
	}
}
