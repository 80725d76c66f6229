package camera

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// LiveUnit is one access unit of the camera's main stream, for live view:
// its NAL units (a key frame carries its parameter sets in band) and its
// 90 kHz PTS.
type LiveUnit struct {
	AU   [][]byte
	PTS  int64
	Wall time.Time
	IDR  bool
}

// Codec of the main stream, for live view.
const (
	codecNone int32 = iota
	codecH264
	codecH265
)

// codecName is the main stream's codec as the API names it ("" before
// the first unit).
func (v *viewers) codecName() string {
	switch v.codec.Load() {
	case codecH264:
		return "h264"
	case codecH265:
		return "h265"
	}
	return ""
}

// ErrTooManyViewers is Watch's answer when the camera's cap is reached.
var ErrTooManyViewers = errors.New("too many live viewers of this camera")

// ErrNoLiveVideo is Watch's answer for a camera that has no video to
// pass on yet (a file camera, or one not connected).
var ErrNoLiveVideo = errors.New("no live video from this camera")

// Viewer receives a camera's access units from the next key frame on. A
// viewer that falls behind loses units until the next key frame; it never
// holds up the camera.
type Viewer struct {
	C    <-chan LiveUnit
	HEVC bool // the units are H.265, else H.264
	// Sub: the units are the detect sub-stream's (a smaller picture), given
	// to an H.264-only player because the main stream is H.265
	Sub     bool
	ch      chan LiveUnit
	v       *viewers
	waitIDR bool
	once    sync.Once
}

// Close stops the viewer; its channel is closed.
func (w *Viewer) Close() { w.once.Do(func() { w.v.remove(w) }) }

// viewers fans a stream out to live viewers. With none, a unit costs one
// atomic load.
type viewers struct {
	n     atomic.Int32
	mu    sync.Mutex
	subs  map[*Viewer]struct{}
	codec atomic.Int32 // of the stream once it flowed (codecNone before)
}

func (v *viewers) add(sub bool) *Viewer {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.subs == nil {
		v.subs = map[*Viewer]struct{}{}
	}
	ch := make(chan LiveUnit, 64)
	w := &Viewer{C: ch, ch: ch, v: v, waitIDR: true, HEVC: v.codec.Load() == codecH265, Sub: sub}
	v.subs[w] = struct{}{}
	v.n.Store(int32(len(v.subs)))
	return w
}

func (v *viewers) remove(w *Viewer) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.subs[w]; ok {
		delete(v.subs, w)
		close(w.ch)
	}
	v.n.Store(int32(len(v.subs)))
}

// push hands u to every viewer without blocking.
func (v *viewers) push(u LiveUnit) {
	if v.n.Load() == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for w := range v.subs {
		if w.waitIDR && !u.IDR {
			continue
		}
		select {
		case w.ch <- u:
			w.waitIDR = false
		default:
			w.waitIDR = true // behind: skip to the next key frame
		}
	}
}

// count is the number of live viewers.
func (v *viewers) count() int { return int(v.n.Load()) }

// Watch starts a live viewer of the camera's main stream; the camera has
// at most limit viewers at a time (0: no limit).
func (c *Camera) Watch(limit int) (*Viewer, error) { return c.watch(limit, false) }

// WatchH264 is Watch for a player that takes H.264 alone (WebRTC here):
// when the main stream is H.265 and the detect sub-stream (detect.url) is
// H.264, the viewer gets the sub-stream (Sub set), which Warden receives
// anyway; else it is Watch.
func (c *Camera) WatchH264(limit int) (*Viewer, error) { return c.watch(limit, true) }

func (c *Camera) watch(limit int, h264 bool) (*Viewer, error) {
	v := &c.live
	if h264 && v.codec.Load() == codecH265 && c.sub.codec.Load() == codecH264 {
		v = &c.sub
	}
	if v.codec.Load() == codecNone {
		return nil, ErrNoLiveVideo
	}
	c.watchMu.Lock() // the cap counts both streams' viewers
	defer c.watchMu.Unlock()
	if limit > 0 && c.Viewers() >= limit {
		return nil, ErrTooManyViewers
	}
	return v.add(v == &c.sub), nil
}

// Viewers is how many live viewers the camera has now.
func (c *Camera) Viewers() int { return c.live.count() + c.sub.count() }
