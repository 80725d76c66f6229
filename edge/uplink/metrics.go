package uplink

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/edge/promscope"
)

type metrics struct {
	delivered   *prometheus.CounterVec
	retries     *prometheus.CounterVec
	dead        *prometheus.CounterVec
	held        *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	mediaUp     *prometheus.CounterVec
	mediaFailed *prometheus.CounterVec
	full        prometheus.Gauge
}

// targetMetrics are one target's children.
type targetMetrics struct {
	delivered, retries, dead, skipped prometheus.Counter
	heldCritical                      prometheus.Counter
	lastSuccess                       prometheus.Gauge
	mediaUploaded                     prometheus.Counter
	mediaFailed                       *prometheus.CounterVec // curried: reason
}

func newMetrics(u *Uplink, scope *promscope.Scope) *metrics {
	f := promauto.With(scope)
	lbl := []string{"target"}
	m := &metrics{
		delivered: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_delivered_total",
			Help: "Events the platform accepted (2xx or PUBACK)."}, lbl),
		retries: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_retries_total",
			Help: "Failed delivery attempts that will be retried."}, lbl),
		dead: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_deadlettered_total",
			Help: "Events the platform rejected (4xx), moved to the dead-letter list."}, lbl),
		held: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_rejected_critical_total",
			Help: "Critical events the platform rejected (4xx): kept first in line and retried, never dead-lettered."}, lbl),
		skipped: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_evicted_undelivered_total",
			Help: "Events retention evicted before this target delivered them (info and warning only)."}, lbl),
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{Name: "warden_uplink_last_success_timestamp_seconds",
			Help: "Unix time of the last accepted delivery."}, lbl),
		mediaUp: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_media_uploaded_total",
			Help: "Media files the platform accepted."}, lbl),
		mediaFailed: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_uplink_media_failed_total",
			Help: "Media files not uploaded: missing (evicted first) or rejected (4xx)."}, []string{"target", "reason"}),
		full: f.NewGauge(prometheus.GaugeOpts{Name: "warden_uplink_backlog_critical_full",
			Help: "1 while the store is over budget with only undelivered critical events left."}),
	}
	scope.MustRegister(&backlogCollector{u: u})
	return m
}

func (m *metrics) forTarget(name string) targetMetrics {
	return targetMetrics{
		delivered: m.delivered.WithLabelValues(name), retries: m.retries.WithLabelValues(name),
		dead: m.dead.WithLabelValues(name), heldCritical: m.held.WithLabelValues(name), skipped: m.skipped.WithLabelValues(name),
		lastSuccess: m.lastSuccess.WithLabelValues(name), mediaUploaded: m.mediaUp.WithLabelValues(name),
		mediaFailed: m.mediaFailed.MustCurryWith(prometheus.Labels{"target": name}),
	}
}

var (
	descBacklog = prometheus.NewDesc("warden_uplink_backlog_events",
		"Events committed but not yet delivered by the target (upper bound: includes events evicted meanwhile).", []string{"target"}, nil)
	descBacklogBytes = prometheus.NewDesc("warden_uplink_backlog_bytes",
		"Estimated bytes of the target's backlog (backlog events x average stored event size).", []string{"target"}, nil)
	descOldest = prometheus.NewDesc("warden_uplink_backlog_oldest_age_seconds",
		"Age of the oldest undelivered event (0 when caught up).", []string{"target"}, nil)
)

// backlogCollector computes backlog gauges at scrape time from the cursors.
type backlogCollector struct{ u *Uplink }

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBacklog
	ch <- descBacklogBytes
	ch <- descOldest
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.u.st.Stats()
	avg := 0.0
	if st.Events > 0 {
		avg = float64(st.Bytes) / float64(st.Events)
	}
	for _, t := range slices.Concat(c.u.targets, c.u.queues) {
		cur := t.cursor.Load()
		var n uint64
		if st.LastSeq > cur {
			n = st.LastSeq - cur
		}
		age := 0.0
		if o := t.oldest.Load(); o != 0 && n > 0 {
			age = max(time.Since(time.Unix(0, o)).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(n), t.name)
		ch <- prometheus.MustNewConstMetric(descBacklogBytes, prometheus.GaugeValue, avg*float64(min(n, uint64(st.Events))), t.name)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age, t.name)
	}
}
