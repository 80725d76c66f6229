package promscope_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smartcommunity/warden/edge/promscope"
)

// A component closed and opened again on one registry registers its metrics
// again; without the scope promauto would panic on the second open.
func TestReopenOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	open := func(v float64) *promscope.Scope {
		s := promscope.New(reg)
		f := promauto.With(s)
		f.NewCounter(prometheus.CounterOpts{Name: "c_total", Help: "h"}).Add(v)
		f.NewGaugeFunc(prometheus.GaugeOpts{Name: "g", Help: "h"}, func() float64 { return v })
		return s
	}
	s := open(1)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 2 {
		t.Fatalf("after open: %d series, %v; want 2", n, err)
	}
	s.Close()
	s.Close() // idempotent
	if n, _ := testutil.GatherAndCount(reg); n != 0 {
		t.Fatalf("after close: %d series left, want 0", n)
	}
	s = open(5)
	defer s.Close()
	if n, _ := testutil.GatherAndCount(reg, "c_total"); n != 1 {
		t.Fatalf("after reopen: %d c_total series, want 1", n)
	}
	want := "# HELP g h\n# TYPE g gauge\ng 5\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "g"); err != nil {
		t.Errorf("reopened gauge is not the new component's: %v", err)
	}
	// A second open while the first is registered is a programming error.
	defer func() {
		if recover() == nil {
			t.Error("registering the same metric twice did not panic")
		}
	}()
	open(6)
}

func TestNilParentRegistersNothing(t *testing.T) {
	s := promscope.New(nil)
	c := promauto.With(s).NewCounter(prometheus.CounterOpts{Name: "c_total", Help: "h"})
	c.Inc()
	if s.Unregister(c) {
		t.Error("Unregister on a nil parent reported a removal")
	}
	s.Close()
}
