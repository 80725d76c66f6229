package testenv

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricValue sums the series of metric name whose labels match labels
// (nil: every series): counters and gauges by value, histograms by sample
// count. A metric with no series gathered gives 0.
func MetricValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := metricValue(t, reg, name, labels)
	return v
}

// CounterValue is MetricValue for a metric that must have been gathered:
// a test asking for one that is not registered fails.
func CounterValue(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	v, found := metricValue(t, reg, name, nil)
	if !found {
		t.Fatalf("metric %s not registered", name)
	}
	return v
}

func metricValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) (sum float64, found bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		found = true
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum, found
}
