package camera

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"time"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/vision"
)

// analysisDepth is how many decoded frames wait for the detectors. Two,
// not one: a decoder that was descheduled on a busy box catches up with
// two frames back to back, and a one-frame slot dropped the first of
// them although the detectors had time for both (10 of 4,279 frames with
// 40 cameras). More would only add latency when detectors are slower than
// the camera.
const analysisDepth = 2

// publish offers a decoded frame to analysis; when analysisDepth frames
// already wait, the oldest is dropped.
func (c *Camera) publish(f *liveFrame) {
	c.mu.Lock()
	if len(c.queue) == analysisDepth {
		c.m.Dropped.WithLabelValues(c.cfg.ID, "analysis").Inc()
		c.putBuf(c.queue[0].pix)
		c.queue = append(c.queue[:0], c.queue[1:]...)
	}
	c.queue = append(c.queue, f)
	c.mu.Unlock()
	select {
	case c.slot <- struct{}{}:
	default:
	}
}

// next takes the oldest waiting frame, nil when none.
func (c *Camera) next() *liveFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return nil
	}
	f := c.queue[0]
	c.queue = append(c.queue[:0], c.queue[1:]...)
	return f
}

// analyse runs the detectors on each frame published; they are its own
// (it closes them, and Recalibrate's replace them between frames).
func (c *Camera) analyse(ctx context.Context, dets []vision.Detector) {
	defer func() { closeAll(dets) }()
	luma := vision.AllLumaOnly(dets)
	seq := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.slot:
		}
		for ctx.Err() == nil {
			select {
			case next := <-c.swap:
				closeAll(dets)
				dets, luma = next, vision.AllLumaOnly(next)
				c.log.Info("detectors recalibrated")
			default:
			}
			f := c.next()
			if f == nil {
				break
			}
			p, err := c.picture(f, luma)
			if err != nil {
				c.m.Errors.WithLabelValues(c.cfg.ID, "decode").Inc()
				c.putBuf(f.pix)
				continue
			}
			frame := vision.Frame{Mat: p.mat, PTS: f.pts, Wall: f.wall, Seq: seq, Damaged: f.damaged}
			seq++
			if !c.degraded() { // garbage pictures raise no alarms
				c.detect(ctx, dets, frame, p)
			}
			c.noteFrame(f, f.wall)
			p.close() // its Mats borrowed f.pix; it is free again
			c.putBuf(f.pix)
		}
	}
}

// countsEvery: frames between exports of the detectors' counts.
const countsEvery = 5

// exportCounts adds what each counting detector counted since the last
// export. It runs on the analysis goroutine only.
func (c *Camera) exportCounts(dets []vision.Detector) {
	if c.counted == nil {
		c.counted = map[string]int{}
	}
	for _, d := range dets {
		cd, ok := d.(vision.Counting)
		if !ok {
			continue
		}
		for name, n := range cd.Counts() {
			delta := n - c.counted[name]
			if delta < 0 { // a new detector (a new session) counts from 0
				delta = n
			}
			if delta > 0 {
				c.m.Counts.WithLabelValues(c.cfg.ID, name).Add(float64(delta))
			}
			c.counted[name] = n
		}
	}
}

// detect runs every detector on one frame and emits what they found.
func (c *Camera) detect(ctx context.Context, dets []vision.Detector, f vision.Frame, p *picture) {
	t0 := time.Now()
	var found []vision.Detection
	for _, d := range dets {
		found = append(found, d.Detect(f)...)
	}
	c.m.DetectLat.WithLabelValues(c.cfg.ID).Observe(time.Since(t0).Seconds())
	c.m.Analysed.WithLabelValues(c.cfg.ID).Inc()
	if f.Seq%countsEvery == 0 {
		c.exportCounts(dets)
	}
	for _, det := range found {
		if det.Refines != "" {
			c.refine(ctx, det)
			continue
		}
		ev, err := EventFor(c.origin(f.Wall), det)
		if err != nil {
			c.m.Errors.WithLabelValues(c.cfg.ID, "detector").Inc()
			c.log.Error("detector produced a bad detection", "err", err)
			continue
		}
		if det.Snapshot && c.deps.Media != nil {
			if m, err := c.putSnapshot(p, det); err != nil {
				c.m.Errors.WithLabelValues(c.cfg.ID, "media").Inc()
				c.log.Error("snapshot failed", "err", err)
			} else {
				ev.Media = append(ev.Media, m)
			}
		}
		ev.Media = append(ev.Media, c.putImages(det)...)
		if det.Key != "" {
			c.keyed.put(det.Key, ev)
		}
		// The event goes out at detection, so its alarm opens at once; a
		// clip follows as media.added when its post-event seconds are in.
		c.append(ctx, ev)
		if det.Clip && c.deps.Media != nil {
			select {
			case c.clipSem <- struct{}{}:
				c.wg.Add(1)
				go func() {
					defer c.wg.Done()
					defer func() { <-c.clipSem }()
					c.recordClip(ctx, ev, f.Wall)
				}()
			default:
				c.log.Warn("clip skipped: two clips already being recorded", "type", ev.Type)
			}
		}
	}
}

// putImages stores the pictures a detector made (a throw's trajectory, a
// face crop) as media of their kind.
func (c *Camera) putImages(det vision.Detection) []event.Media {
	if c.deps.Media == nil {
		return nil
	}
	var out []event.Media
	for _, img := range det.Images {
		if img.URL != "" {
			sum := sha256.Sum256(img.Data)
			out = append(out, event.Media{Kind: img.Kind, URL: img.URL, SHA256: hex.EncodeToString(sum[:])})
			continue
		}
		ct := img.ContentType
		if ct == "" {
			ct = "image/jpeg"
		}
		info, err := c.deps.Media.PutMedia(img.Kind, ct, img.Data)
		if err != nil {
			c.m.Errors.WithLabelValues(c.cfg.ID, "media").Inc()
			c.log.Error("detector image not stored", "kind", img.Kind, "err", err)
			continue
		}
		out = append(out, event.Media{Kind: img.Kind, URL: "/api/v1/media/" + info.ID, SHA256: info.SHA256})
	}
	return out
}

// EventFor turns a detection into an event of o's camera.
func EventFor(o event.Origin, det vision.Detection) (*event.Event, error) {
	data := maps.Clone(det.Data)
	if data == nil {
		data = map[string]any{}
	}
	if _, ok := data["bbox"]; !ok && !det.BBox.Empty() {
		data["bbox"] = vision.BBoxList(det.BBox)
	}
	return event.Make(o, det.Type, det.Severity, data)
}

func (c *Camera) putSnapshot(p *picture, det vision.Detection) (event.Media, error) {
	m, err := p.colour()
	if err != nil {
		return event.Media{}, fmt.Errorf("snapshot: %w", err)
	}
	jpg, err := vision.SnapshotJPEG(m, det.BBox)
	if err != nil {
		return event.Media{}, err
	}
	info, err := c.deps.Media.PutMedia("snapshot", "image/jpeg", jpg)
	if err != nil {
		return event.Media{}, fmt.Errorf("snapshot: store: %w", err)
	}
	return event.Media{Kind: "snapshot", URL: "/api/v1/media/" + info.ID, SHA256: info.SHA256}, nil
}

// recordClip waits for the post-event seconds, writes the clip and
// appends a media.added event that brings it to ev.
func (c *Camera) recordClip(ctx context.Context, ev *event.Event, at time.Time) {
	pre := time.Duration(c.cfg.Record.PreSeconds) * time.Second
	post := time.Duration(c.cfg.Record.PostSeconds) * time.Second
	deadline := time.Now().Add(post + 10*time.Second)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for c.ring.newest().Before(at.Add(post)) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			deadline = time.Now() // write what there is
		case <-t.C:
		}
	}
	units, codec := c.ring.slice(at.Add(-pre), at.Add(post))
	data, err := writeMP4(units, codec)
	var mi store.MediaInfo
	if err == nil {
		mi, err = c.deps.Media.PutMedia("clip", "video/mp4", data)
	}
	if err != nil {
		c.m.Errors.WithLabelValues(c.cfg.ID, "media").Inc()
		c.log.Error("clip failed", "type", ev.Type, "err", err)
		return
	}
	c.addMedia(ctx, ev.ID, ev.Type, []event.Media{{Kind: "clip", URL: "/api/v1/media/" + mi.ID, SHA256: mi.SHA256}})
}

// addMedia appends a media.added event that brings media to the event id.
func (c *Camera) addMedia(ctx context.Context, id, typ string, media []event.Media) {
	add, err := event.Make(c.origin(time.Now()), event.MediaAdded, event.Info, map[string]any{"event_id": id, "event_type": typ})
	if err != nil {
		c.log.Error("media.added event", "err", err)
		return
	}
	add.Media = media
	c.append(ctx, add)
}

// refine brings a detection's better evidence to the event of the
// detection it refines. A refinement whose event is no longer known (a
// restarted session) or that brings nothing is dropped.
func (c *Camera) refine(ctx context.Context, det vision.Detection) {
	k, ok := c.keyed.get(det.Refines)
	if !ok {
		return
	}
	if media := c.putImages(det); len(media) > 0 {
		c.addMedia(ctx, k.id, k.typ, media)
	}
}

// keyedEvents remembers the last keyedMax keyed events, oldest out first.
type keyedEvents struct {
	byKey map[string]keyedEvent
	order []string
}

type keyedEvent struct{ id, typ string }

const keyedMax = 64

func (k *keyedEvents) put(key string, ev *event.Event) {
	if k.byKey == nil {
		k.byKey = map[string]keyedEvent{}
	}
	if _, ok := k.byKey[key]; !ok {
		k.order = append(k.order, key)
	}
	k.byKey[key] = keyedEvent{ev.ID, ev.Type}
	if len(k.order) > keyedMax {
		delete(k.byKey, k.order[0])
		k.order = k.order[1:]
	}
}

func (k *keyedEvents) get(key string) (keyedEvent, bool) {
	e, ok := k.byKey[key]
	return e, ok
}

// noteFrame updates fps, last frame time and, once a second, the snapshot
// kept for the API.
func (c *Camera) noteFrame(f *liveFrame, wall time.Time) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.snapAt) >= time.Second {
		c.snap.pix = append(c.snap.pix[:0], f.pix...)
		c.snap.i420, c.snap.w, c.snap.h = f.i420, f.w, f.h
		c.snapAt, c.hasSnap = wall, true
	}
	c.lastFrame = wall
	if c.fpsSince.IsZero() {
		c.fpsSince = now
	}
	c.fpsCount++
	if el := now.Sub(c.fpsSince); el >= 2*time.Second {
		c.fps = float64(c.fpsCount) / el.Seconds()
		c.fpsCount, c.fpsSince = 0, now
	}
}
