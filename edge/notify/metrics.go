package notify

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	queued, sent, failed *prometheus.CounterVec
	skipped              *prometheus.CounterVec
	depth                *prometheus.GaugeVec
	latency              *prometheus.HistogramVec
	storeErrors          prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_notify_queued_total", Help: "Alarm messages queued per notify target.",
		}, []string{"target"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_notify_sent_total", Help: "Alarm messages the target accepted.",
		}, []string{"target"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_notify_failed_total", Help: "Failed tries (each is retried with backoff, or given up when the target refuses a routine message).",
		}, []string{"target"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_notify_skipped_total", Help: "Messages given up, by reason (rate, expired, refused, queue_full); never life safety, except refused.",
		}, []string{"target", "reason"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_notify_queue", Help: "Messages waiting per notify target.",
		}, []string{"target"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warden_notify_delivery_seconds", Help: "From the alarm change to the target's acceptance.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
		}, []string{"target"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_notify_store_errors_total", Help: "Queue writes the database refused; those messages are sent from memory.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.queued, m.sent, m.failed, m.skipped, m.depth, m.latency, m.storeErrors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("notify: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
