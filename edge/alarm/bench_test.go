package alarm_test

import (
	"context"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/event"
)

// Repeats of an open alarm cost one fsynced bbolt transaction each.
func BenchmarkObserveRepeat(b *testing.B) {
	benchObserve(b, event.GasLeak)
}

// Events that raise nothing touch no disk.
func BenchmarkObserveNoAlarm(b *testing.B) {
	benchObserve(b, event.MotionDetected)
}

func benchObserve(b *testing.B, typ string) {
	e := newEnv(b, "", nil)
	ev := *mk(typ, "src", "")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ev.Seq = uint64(i + 1)
		if _, _, err := e.m.Observe(bg, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkObserveRepeats measures the follow loop: b.N repeats of one open
// alarm are in the real store before Run starts; the time is until the
// manager's cursor reaches the end of the log.
func BenchmarkObserveRepeats(b *testing.B) {
	e := newEnv(b, "", func(o *alarm.Options) { o.Source = o.Sink.(alarm.Source); o.EscalateAfter = time.Hour })
	const chunk = 1000
	for i := 0; i < b.N+1; i += chunk {
		evs := make([]*event.Event, min(chunk, b.N+1-i))
		for j := range evs {
			evs[j] = mk(event.PerimeterIntr, "fence-1", "")
		}
		if err := e.st.Append(context.Background(), evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.m.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		l, err := e.m.List(alarm.Open, "", 1)
		if err != nil {
			b.Fatal(err)
		}
		if len(l) == 1 && l[0].Count == b.N+1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("follow did not catch up: %+v", l)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
