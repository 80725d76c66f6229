package console

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	logins         *prometheus.CounterVec
	sessionRefused *prometheus.CounterVec
	sessions       prometheus.Gauge
	storeErrors    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_console_logins_total",
			Help: "Console login attempts by result (ok, bad_credentials, rate_limited, forbidden, cross_site, bad_request).",
		}, []string{"result"}),
		sessionRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_console_session_refused_total",
			Help: "Requests with a session cookie that were refused, by reason (unknown_or_expired, csrf_missing, csrf_mismatch, cross_site).",
		}, []string{"reason"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_console_sessions",
			Help: "Console sessions held (expired ones are removed lazily).",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_console_session_store_errors_total",
			Help: "Session writes or deletes the database refused; such a session lasts until the next restart.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.logins, m.sessionRefused, m.sessions, m.storeErrors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("console: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
