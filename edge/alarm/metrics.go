package alarm

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	alarms      *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	ackSeconds  prometheus.Histogram
	escalations prometheus.Counter
	errors      *prometheus.CounterVec
	unstored    prometheus.Gauge
	// per type: the compound's management is supervised on these
	timeToAck, timeToResolve *prometheus.HistogramVec
	outcomes                 *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	f := promauto.With(reg)
	m := &metrics{
		alarms: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_alarms",
			Help: "Alarms kept, by state (open, acknowledged, resolved).",
		}, []string{"state"}),
		transitions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_alarm_transitions_total",
			Help: "Alarm state changes by the state reached (open, acknowledged, resolved, escalated).",
		}, []string{"to"}),
		ackSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "warden_alarm_ack_seconds",
			Help:    "Time from an alarm opening to its acknowledgement.",
			Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600},
		}),
		escalations: f.NewCounter(prometheus.CounterOpts{
			Name: "warden_alarm_escalations_total",
			Help: "Alarms escalated because nobody acknowledged them in time.",
		}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_alarm_errors_total",
			Help: "Alarm failures by stage: persist (bbolt), sink (recording alarm.* events), notify (a callback panicked), follow (reading events), unstored (an alarm that could not be stored nor shown).",
		}, []string{"stage"}),
		timeToAck: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_alarm_time_to_ack_seconds",
			Help:    "Time from an alarm opening to its acknowledgement (ack, accept or on scene), by alarm type.",
			Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600},
		}, []string{"type"}),
		timeToResolve: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_alarm_time_to_resolve_seconds",
			Help:    "Time from an alarm opening to its resolution, by alarm type.",
			Buckets: []float64{30, 60, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 7 * 24 * 3600},
		}, []string{"type"}),
		outcomes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_alarm_outcomes_total",
			Help: "Resolved alarms by type, source (device or camera id) and outcome (real, false_alarm, test, duplicate, unspecified): a noisy detector shows up as false_alarm.",
		}, []string{"type", "source", "outcome"}),
		unstored: f.NewGauge(prometheus.GaugeOpts{
			Name: "warden_alarms_unstored",
			Help: "Alarms shown from memory because their event could not be stored (full or failing disk).",
		}),
	}
	for _, s := range []string{"persist", "sink", "notify", "follow", "unstored"} {
		m.errors.WithLabelValues(s)
	}
	for _, s := range []string{"open", "acknowledged", "resolved", "escalated"} {
		m.transitions.WithLabelValues(s)
	}
	return m, nil
}
