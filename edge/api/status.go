package api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

// DeviceStatus is one entry of GET /api/v1/devices.
type DeviceStatus struct {
	ID       string         `json:"id"`
	Kind     string         `json:"kind"`
	Driver   string         `json:"driver,omitempty"`
	Location event.Location `json:"location"`
	Online   bool           `json:"online"`
	LastSeen time.Time      `json:"last_seen,omitzero"`
	// State is the driver's latest view (e.g. {"lel_percent": 3, "battery": 80}).
	State map[string]any `json:"state,omitempty"`
	Error string         `json:"error,omitempty"`
}

// CameraStatus is one entry of GET /api/v1/cameras. The stream URL is left
// out on purpose: it often carries credentials.
type CameraStatus struct {
	ID          string         `json:"id"`
	DisplayName string         `json:"display_name,omitempty"`
	Location    event.Location `json:"location"`
	Online      bool           `json:"online"`
	// State is connecting, online, offline or degraded (video arrives but
	// decodes with errors; detection paused; Error says why).
	State     string    `json:"state,omitempty"`
	LastSeen  time.Time `json:"last_seen,omitzero"` // last decoded frame
	FPS       float64   `json:"fps"`
	Detectors []string  `json:"detectors"`
	Error     string    `json:"error,omitempty"`
	// Codec of the main stream once it flowed: "h264" (live view over
	// WebRTC or LL-HLS) or "h265" (LL-HLS only).
	Codec string `json:"codec,omitempty"`
	// SubCodec is the detect sub-stream's (detect.url), when it is another
	// stream: with an H.265 main stream, "h264" means WebRTC plays the
	// sub-stream.
	SubCodec string `json:"sub_codec,omitempty"`
}

type deadLettersResponse struct {
	DeadLetters []deadLetterJSON `json:"deadletters"`
	Next        uint64           `json:"next"`
}

// deadLetterJSON shows the payload as text when it is UTF-8 (it usually is
// JSON), else as base64.
type deadLetterJSON struct {
	ID            uint64    `json:"id"`
	Time          time.Time `json:"time"`
	Source        string    `json:"source"`
	Topic         string    `json:"topic"`
	Reason        string    `json:"reason"`
	Payload       string    `json:"payload,omitempty"`
	PayloadBase64 string    `json:"payload_base64,omitempty"`
	Size          int       `json:"size"`
}

type readyResponse struct {
	Status string            `json:"status"`
	Failed map[string]string `json:"failed,omitempty"`
	// Followers is each event-log follower's lag in events (authenticated
	// callers only); it never makes the gateway not ready.
	Followers map[string]uint64 `json:"followers,omitempty"`
}

// readyz runs every check. It needs no credentials (probes and systemd
// helpers call it); only an authenticated caller sees the error texts.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	failed := s.runChecks()
	_, authed, err := s.authenticate(r)
	authed = authed && err == nil
	var lag map[string]uint64
	if authed && s.opts.Followers != nil {
		lag = s.opts.Followers()
	}
	w.Header().Set("Cache-Control", "no-store")
	if len(failed) == 0 {
		WriteJSON(w, http.StatusOK, readyResponse{Status: "ok", Followers: lag})
		return
	}
	if !authed {
		for k := range failed {
			failed[k] = "failed"
		}
	}
	WriteJSON(w, http.StatusServiceUnavailable, readyResponse{Status: "not ready", Failed: failed, Followers: lag})
}

// runChecks runs the checks at once, each bounded by ReadyTimeout, and
// returns the failed ones. A check that does not return in time is failed;
// its goroutine ends when the check returns, and no second run of that
// check starts before then, so a hung check costs one goroutine, not one
// per probe.
func (s *Server) runChecks() map[string]string {
	type result struct {
		i   int
		err error
	}
	failed := map[string]string{}
	res := make(chan result, len(s.opts.Ready)) // never blocks a late check
	pending := map[int]bool{}
	for i, c := range s.opts.Ready {
		if !s.running[i].CompareAndSwap(false, true) {
			failed[c.Name] = "still running (timed out on an earlier probe)"
			continue
		}
		pending[i] = true
		go func() {
			defer s.running[i].Store(false)
			res <- result{i, runCheck(c)}
		}()
	}
	timeout := time.NewTimer(s.opts.ReadyTimeout)
	defer timeout.Stop()
	for len(pending) > 0 {
		select {
		case r := <-res:
			delete(pending, r.i)
			if r.err != nil {
				failed[s.opts.Ready[r.i].Name] = r.err.Error()
			}
		case <-timeout.C:
			for i := range pending {
				failed[s.opts.Ready[i].Name] = fmt.Sprintf("timed out after %v", s.opts.ReadyTimeout)
			}
			return failed
		}
	}
	return failed
}

func runCheck(c Check) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("check panicked: %v", v)
		}
	}()
	return c.Fn()
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{s},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("api: metrics", "err", fmt.Sprint(v...)) }

// mediaID keeps ids to a safe alphabet before they reach the store.
var mediaID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (s *Server) media(w http.ResponseWriter, r *http.Request) {
	if s.opts.Media == nil {
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "media store not configured"))
		return
	}
	id := r.PathValue("id")
	if !mediaID.MatchString(id) || id == "." || id == ".." {
		WriteError(w, Errorf(http.StatusBadRequest, CodeBadRequest, "media id %q is not valid", id))
		return
	}
	f, info, err := s.opts.Media.OpenMedia(id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrNotFound) {
			WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "no media %q", id))
			return
		}
		s.log.Error("api: open media", "id", id, "err", err)
		WriteError(w, Errorf(http.StatusInternalServerError, CodeInternal, "open media failed"))
		return
	}
	defer f.Close()
	h := w.Header()
	ct := info.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	if info.SHA256 != "" {
		h.Set("ETag", `"`+info.SHA256+`"`)
	}
	// Media never changes once written.
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	http.ServeContent(w, r, "", info.Created, f)
}

func (s *Server) devices(w http.ResponseWriter, r *http.Request) {
	if s.opts.Devices == nil {
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "devices not configured"))
		return
	}
	ds := s.opts.Devices()
	if ds == nil {
		ds = []DeviceStatus{}
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, map[string]any{"devices": ds})
}

func (s *Server) cameras(w http.ResponseWriter, r *http.Request) {
	if s.opts.Cameras == nil {
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "cameras not configured"))
		return
	}
	cs := s.opts.Cameras()
	if cs == nil {
		cs = []CameraStatus{}
	}
	for i := range cs {
		if cs[i].Detectors == nil {
			cs[i].Detectors = []string{}
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, map[string]any{"cameras": cs})
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	if s.opts.Snapshot == nil {
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "camera snapshots not configured"))
		return
	}
	id := r.PathValue("id")
	img, at, err := s.opts.Snapshot(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound) || errors.Is(err, store.ErrNotFound):
		WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "no camera %q", id))
		return
	case err != nil:
		s.log.Warn("api: camera snapshot", "camera", id, "err", err)
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "camera %s: no snapshot: %v", id, err))
		return
	case len(img) == 0:
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "camera %s: no frame yet", id))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Cache-Control", "no-store")
	if !at.IsZero() {
		h.Set("Last-Modified", at.UTC().Format(http.TimeFormat))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(img)
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	if s.opts.DeadLetters == nil {
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "dead letters not configured"))
		return
	}
	q, err := newQuery(r, "after", "limit")
	if err != nil {
		WriteError(w, err)
		return
	}
	after, limit, err := q.page()
	if err != nil {
		WriteError(w, err)
		return
	}
	recs, err := s.opts.DeadLetters.DeadLetters(after, limit)
	if err != nil {
		s.log.Error("api: read dead letters", "err", err)
		WriteError(w, Errorf(http.StatusInternalServerError, CodeInternal, "read dead letters failed"))
		return
	}
	out := deadLettersResponse{DeadLetters: make([]deadLetterJSON, 0, len(recs)), Next: after}
	for _, d := range recs {
		j := deadLetterJSON{ID: d.ID, Time: d.Time, Source: d.Source, Topic: d.Topic, Reason: d.Reason, Size: d.Size}
		if utf8.Valid(d.Payload) {
			j.Payload = string(d.Payload)
		} else {
			j.PayloadBase64 = base64.StdEncoding.EncodeToString(d.Payload)
		}
		out.DeadLetters = append(out.DeadLetters, j)
		out.Next = max(out.Next, d.ID)
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, out)
}

// MaxRecentSeconds is the longest "last N seconds" a camera serves.
const MaxRecentSeconds = 30

// recent serves the last ?seconds= (1–30, default 30) of a camera as MP4.
func (s *Server) recent(w http.ResponseWriter, r *http.Request) {
	if s.opts.Recent == nil {
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "camera playback not configured"))
		return
	}
	secs := MaxRecentSeconds
	if v := r.URL.Query().Get("seconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxRecentSeconds {
			WriteError(w, Errorf(http.StatusBadRequest, CodeBadRequest, "seconds=%q: want a whole number from 1 to %d", v, MaxRecentSeconds))
			return
		}
		secs = n
	}
	id := r.PathValue("id")
	mp4, err := s.opts.Recent(r.Context(), id, time.Duration(secs)*time.Second)
	switch {
	case errors.Is(err, ErrNotFound):
		WriteError(w, Errorf(http.StatusNotFound, CodeNotFound, "no camera %q", id))
		return
	case err != nil:
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "camera %s: no recent video: %v", id, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", fmt.Sprintf("%s-last-%ds.mp4", id, secs)))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(mp4))
}
