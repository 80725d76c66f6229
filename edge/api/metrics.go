package api

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	sseClients   prometheus.Gauge
	authFailures *prometheus.CounterVec
	panics       prometheus.Counter
	liveDropped  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_api_requests_total",
			Help: "HTTP API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_api_request_seconds",
			Help:    "HTTP API request duration by route pattern (SSE streams excluded).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		sseClients: f.NewGauge(prometheus.GaugeOpts{
			Name: "warden_api_sse_clients",
			Help: "Connected Server-Sent Events clients.",
		}),
		authFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_api_auth_failures_total",
			Help: "Rejected API requests: missing or invalid credentials, or a role that is not allowed.",
		}, []string{"reason"}),
		panics: f.NewCounter(prometheus.CounterOpts{
			Name: "warden_api_panics_total",
			Help: "Handler panics recovered and answered with 500.",
		}),
		liveDropped: f.NewCounter(prometheus.CounterOpts{
			Name: "warden_api_sse_live_dropped_total",
			Help: "Live (alarm) messages an SSE client missed because it fell behind the in-memory ring.",
		}),
	}
	return m
}
