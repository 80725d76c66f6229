package notify

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	queued, sent, failed *prometheus.CounterVec
	skipped              *prometheus.CounterVec
	depth                *prometheus.GaugeVec
	latency              *prometheus.HistogramVec
	storeErrors          prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	f := promauto.With(reg)
	m := &metrics{
		queued: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_notify_queued_total", Help: "Alarm messages queued per notify target.",
		}, []string{"target"}),
		sent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_notify_sent_total", Help: "Alarm messages the target accepted.",
		}, []string{"target"}),
		failed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_notify_failed_total", Help: "Failed tries (each is retried with backoff, or given up when the target refuses a routine message).",
		}, []string{"target"}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_notify_skipped_total", Help: "Messages given up, by reason (rate, expired, refused, queue_full); never life safety, except refused.",
		}, []string{"target", "reason"}),
		depth: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_notify_queue", Help: "Messages waiting per notify target.",
		}, []string{"target"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warden_notify_delivery_seconds", Help: "From the alarm change to the target's acceptance.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
		}, []string{"target"}),
		storeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "warden_notify_store_errors_total", Help: "Queue writes the database refused; those messages are sent from memory.",
		}),
	}
	return m, nil
}
