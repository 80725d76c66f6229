package camera

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision"
)

// held is a detector that holds each frame until released, as a slow one
// does; it reports the PTS of each frame it is given.
type held struct {
	got     chan time.Duration
	release chan struct{}
}

func (h *held) Detect(f vision.Frame) []vision.Detection {
	h.got <- f.PTS
	<-h.release
	return nil
}
func (h *held) Close() {}

// A decoder that catches up gives two frames back to back while the
// detectors work on a third: both are analysed, in order, none dropped.
// Only when more wait than the queue holds is the oldest dropped.
func TestAnalysisQueueTakesABurst(t *testing.T) {
	m := NewMetrics(nil)
	c := New(config.Camera{ID: "q", URL: "rtsp://127.0.0.1:1/q"}, Deps{Gateway: "gw", Site: "s", Metrics: m})
	h := &held{got: make(chan time.Duration), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.analyse(ctx, []vision.Detector{h}) }()
	defer func() { cancel(); close(h.release); <-done }()

	frame := func(i int) *liveFrame {
		return &liveFrame{pix: make([]byte, 16*16*3/2), i420: true, w: 16, h: 16, pts: time.Duration(i) * time.Second, wall: time.Now()}
	}
	analysed := func(want ...int) {
		t.Helper()
		for _, i := range want {
			select {
			case pts := <-h.got:
				if pts != time.Duration(i)*time.Second {
					t.Fatalf("analysed frame %v, want frame %d", pts, i)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("frame %d never analysed", i)
			}
			h.release <- struct{}{}
		}
	}
	dropped := func() float64 { return testutil.ToFloat64(m.Dropped.WithLabelValues("q", "analysis")) }

	c.publish(frame(1))
	if pts := <-h.got; pts != time.Second {
		t.Fatalf("analysed %v first", pts)
	}
	c.publish(frame(2)) // the burst, while frame 1 is in the detector
	c.publish(frame(3))
	h.release <- struct{}{}
	analysed(2, 3)
	if d := dropped(); d != 0 {
		t.Fatalf("%v frames dropped from a burst of two", d)
	}

	c.publish(frame(4))
	if pts := <-h.got; pts != 4*time.Second {
		t.Fatalf("analysed %v, want frame 4", pts)
	}
	for i := 5; i <= 7; i++ { // three while one is in the detector
		c.publish(frame(i))
	}
	h.release <- struct{}{}
	analysed(6, 7)
	if d := dropped(); d != 1 {
		t.Fatalf("%v frames dropped of three waiting, want the oldest (1)", d)
	}
}
