package store

import (
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/edge/promscope"
)

type metrics struct {
	scope         *promscope.Scope
	commitSeconds prometheus.Histogram
	batchSize     prometheus.Histogram
	errors        *prometheus.CounterVec
	evicted       *prometheus.CounterVec
	mediaEvicted  prometheus.Counter
}

// newMetrics registers the store's metrics; Close takes them back, so a
// store reopened on the same registry registers them again.
func newMetrics(s *Store, reg prometheus.Registerer) *metrics {
	scope := promscope.New(reg)
	f := promauto.With(scope)
	m := &metrics{
		scope: scope,
		commitSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "warden_store_commit_seconds",
			Help:    "Duration of one group commit (one fsynced bbolt transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "warden_store_commit_batch_size",
			Help:    "Events written by one group commit.",
			Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000},
		}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_store_errors_total",
			Help: "Store operations that failed, by operation.",
		}, []string{"op"}),
		evicted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_store_evicted_total",
			Help: "Events removed by retention, by severity and reason (age, bytes).",
		}, []string{"severity", "reason"}),
		mediaEvicted: f.NewCounter(prometheus.CounterOpts{
			Name: "warden_store_media_evicted_total",
			Help: "Media files removed to stay within the media quota.",
		}),
	}
	for _, op := range []string{"commit", "read", "retain", "media", "cursor", "validate"} {
		m.errors.WithLabelValues(op)
	}
	scope.MustRegister(followerLag{s})
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_store_events", Help: "Events currently stored."},
		func() float64 { return float64(s.totalEvents()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_store_disk_free_bytes", Help: "Bytes free for Warden on the data dir's filesystem."},
		func() float64 { free, _ := s.disk(); return float64(free) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_store_disk_size_bytes", Help: "Size of the data dir's filesystem."},
		func() float64 { _, size := s.disk(); return float64(size) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_store_max_bytes", Help: "Byte budget of stored events (retention.events_max_bytes; 0: none)."},
		func() float64 { return float64(s.opts.MaxBytes) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_store_bytes", Help: "Bytes of stored events (keys and JSON)."},
		func() float64 { return float64(s.totalBytes()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_store_media_bytes", Help: "Bytes of stored media files."},
		func() float64 { s.mediaMu.Lock(); defer s.mediaMu.Unlock(); return float64(s.mediaSum) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_store_last_seq", Help: "Highest event seq committed."},
		func() float64 { return float64(s.lastSeq.Load()) })
	f.NewCounterFunc(prometheus.CounterOpts{Name: "warden_store_commits_total", Help: "Group commits since start."},
		func() float64 { return float64(s.commits.Load()) })
	return m
}

func (m *metrics) unregister() {
	if m != nil {
		m.scope.Close()
	}
}

// disk reports the bytes available to Warden and the size of the data
// dir's filesystem (0, 0 when it cannot be read).
func (s *Store) disk() (free, size uint64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.opts.Dir, &st); err != nil {
		return 0, 0
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize)
}

var descFollowerLag = prometheus.NewDesc("warden_store_follower_lag_events",
	"Committed events a follower of the event log (MQTT mirror, rules, alarms) has not handled yet.", []string{"follower"}, nil)

// followerLag reports every running follower's lag at scrape time.
type followerLag struct{ s *Store }

func (c followerLag) Describe(ch chan<- *prometheus.Desc) { ch <- descFollowerLag }

func (c followerLag) Collect(ch chan<- prometheus.Metric) {
	for name, lag := range c.s.FollowerLag() {
		ch <- prometheus.MustNewConstMetric(descFollowerLag, prometheus.GaugeValue, float64(lag), name)
	}
}
