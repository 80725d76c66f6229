package alarm_test

import (
	"testing"

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
