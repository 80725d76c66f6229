package camera

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision"
)

// Set is a gateway's cameras, in config order; it answers the API's
// camera list, snapshots and recent video.
type Set []*Camera

// Status is GET /api/v1/cameras.
func (s Set) Status() []api.CameraStatus {
	out := make([]api.CameraStatus, 0, len(s))
	for _, c := range s {
		st := c.Status()
		var dets []string
		for _, p := range vision.Plugins() {
			if c.cfg.Detect.Section(p.Name) != nil {
				dets = append(dets, p.Name)
			}
		}
		slices.Sort(dets)
		out = append(out, api.CameraStatus{ID: c.ID(), DisplayName: c.cfg.DisplayName, Location: c.cfg.Location,
			Online: st.State == Online, State: string(st.State), LastSeen: st.LastFrame, FPS: st.FPS,
			Detectors: dets, Error: st.LastError, Codec: c.live.codecName(), SubCodec: c.sub.codecName()})
	}
	return out
}

func (s Set) find(id string) (*Camera, error) {
	for _, c := range s {
		if c.ID() == id {
			return c, nil
		}
	}
	return nil, fmt.Errorf("camera %s: %w", id, api.ErrNotFound)
}

// Snapshot is the camera's latest frame as JPEG.
func (s Set) Snapshot(_ context.Context, id string) ([]byte, time.Time, error) {
	c, err := s.find(id)
	if err != nil {
		return nil, time.Time{}, err
	}
	jpeg, at := c.LastSnapshot()
	if jpeg == nil {
		return nil, time.Time{}, fmt.Errorf("camera %s: no frame yet: %w", id, api.ErrNotFound)
	}
	return jpeg, at, nil
}

// Recent is the camera's last d of video from its ring, as MP4.
func (s Set) Recent(_ context.Context, id string, d time.Duration) ([]byte, error) {
	c, err := s.find(id)
	if err != nil {
		return nil, err
	}
	return c.Recent(d)
}

// Recalibrate gives camera id detectors built from cam (Camera.Recalibrate).
func (s Set) Recalibrate(id string, cam config.Camera) error {
	c, err := s.find(id)
	if err != nil {
		return err
	}
	return c.Recalibrate(cam)
}

// Watch starts a live viewer of camera id (at most limit per camera).
func (s Set) Watch(id string, limit int) (*Viewer, error) {
	c, err := s.find(id)
	if err != nil {
		return nil, err
	}
	return c.Watch(limit)
}

// WatchH264 is Watch for an H.264-only player (Camera.WatchH264).
func (s Set) WatchH264(id string, limit int) (*Viewer, error) {
	c, err := s.find(id)
	if err != nil {
		return nil, err
	}
	return c.WatchH264(limit)
}
