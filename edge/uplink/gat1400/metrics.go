package gat1400

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	viidObjects, viidRefused, viidRegs *prometheus.CounterVec
}

func newMetrics(f promauto.Factory) metrics {
	return metrics{
		viidObjects: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_gat1400_objects_total",
			Help: "Faces and vehicles the GA/T 1400 view library accepted (StatusCode 0)."}, []string{"kind"}),
		viidRefused: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_gat1400_refused_total",
			Help: "Objects the GA/T 1400 view library refused, by its StatusCode (or HTTP status); each is retried alone."}, []string{"code"}),
		viidRegs: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_gat1400_registrations_total",
			Help: "GA/T 1400 registrations by result (ok, failed)."}, []string{"result"}),
	}
}
