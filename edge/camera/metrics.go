package camera

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are shared by all cameras of a process, labelled by camera id.
type Metrics struct {
	Received   *prometheus.CounterVec   // access units received
	Fed        *prometheus.CounterVec   // access units written to the decoder
	Decoded    *prometheus.CounterVec   // frames out of the decoder
	Analysed   *prometheus.CounterVec   // frames given to the detectors
	Dropped    *prometheus.CounterVec   // frames or units dropped, by reason
	Reconnects *prometheus.CounterVec   // sessions that ended and were retried
	Bytes      *prometheus.CounterVec   // encoded bytes received
	Errors     *prometheus.CounterVec   // errors by kind (connect, decode, media, sink)
	DecodeLat  *prometheus.HistogramVec // ffmpeg in-to-out latency
	DetectLat  *prometheus.HistogramVec // all detectors on one frame
	FrameAge   *prometheus.GaugeVec     // seconds since the last decoded frame
	State      *prometheus.GaugeVec     // 1 for the camera's state, 0 for the others
	Counts     *prometheus.CounterVec   // what the detectors counted (vision.Counting), by counter
}

// NewMetrics registers the camera metrics on reg; nil reg keeps them
// unregistered (tests, analyze).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return f.NewCounterVec(prometheus.CounterOpts{Name: "warden_camera_" + name, Help: help}, append([]string{"camera"}, labels...))
	}
	lat := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	m := &Metrics{
		Received:   c("access_units_received_total", "Video access units received (H.264 or H.265)."),
		Fed:        c("decoder_units_total", "Access units written to the decoder (key frames only when they alone come often enough)."),
		Decoded:    c("frames_decoded_total", "Frames decoded (at the detect sampling rate)."),
		Analysed:   c("frames_analysed_total", "Frames run through the detectors."),
		Dropped:    c("frames_dropped_total", "Frames or access units dropped because a stage was busy.", "stage"),
		Reconnects: c("reconnects_total", "Sessions that ended and were retried."),
		Bytes:      c("received_bytes_total", "Encoded video bytes received."),
		Errors:     c("errors_total", "Errors by kind.", "kind"),
		DecodeLat: f.NewHistogramVec(prometheus.HistogramOpts{Name: "warden_camera_decode_seconds",
			Help: "Time from an access unit entering the decoder to its frame leaving it.", Buckets: lat}, []string{"camera"}),
		DetectLat: f.NewHistogramVec(prometheus.HistogramOpts{Name: "warden_camera_detect_seconds",
			Help: "Time for all detectors of a camera on one frame.", Buckets: lat}, []string{"camera"}),
		Counts: c("detector_counts_total", "What the detectors counted (throw_suspensions, throw_shaken_frames, …).", "counter"),
		FrameAge: f.NewGaugeVec(prometheus.GaugeOpts{Name: "warden_camera_last_frame_age_seconds",
			Help: "Seconds since the last decoded frame."}, []string{"camera"}),
		State: f.NewGaugeVec(prometheus.GaugeOpts{Name: "warden_camera_state",
			Help: "1 for the camera's state (connecting, online, offline, degraded), 0 for the others."}, []string{"camera", "state"}),
	}
	return m
}
