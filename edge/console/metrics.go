package console

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	logins         *prometheus.CounterVec
	sessionRefused *prometheus.CounterVec
	sessions       prometheus.Gauge
	storeErrors    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	f := promauto.With(reg)
	m := &metrics{
		logins: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_console_logins_total",
			Help: "Console login attempts by result (ok, bad_credentials, rate_limited, forbidden, cross_site, bad_request).",
		}, []string{"result"}),
		sessionRefused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_console_session_refused_total",
			Help: "Requests with a session cookie that were refused, by reason (unknown_or_expired, csrf_missing, csrf_mismatch, cross_site).",
		}, []string{"reason"}),
		sessions: f.NewGauge(prometheus.GaugeOpts{
			Name: "warden_console_sessions",
			Help: "Console sessions held (expired ones are removed lazily).",
		}),
		storeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "warden_console_session_store_errors_total",
			Help: "Session writes or deletes the database refused; such a session lasts until the next restart.",
		}),
	}
	return m, nil
}
