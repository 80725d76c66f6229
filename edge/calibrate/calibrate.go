// Package calibrate is the throw cameras' calibration from the console
// (admin): it reads a camera's facade and regions, tries a proposed
// calibration on the camera's last minute of video, and saves it to the
// calibration overlay (config.OverlayName) after the whole config has
// been validated with it, then gives the running camera its new detector.
// The config file stays the source of truth: the overlay only sets
// detect.throw.facade and detect.zones (docs/config.md).
package calibrate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/atomicfile"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision"
	"github.com/smartcommunity/warden/edge/vision/throw"
)

// TestSeconds is how much recent video a test replays: the ring of a throw
// camera keeps at least this much.
const TestSeconds = camera.ThrowRecentSeconds

// Cameras is what the calibration needs of the running cameras.
type Cameras interface {
	Recent(ctx context.Context, id string, d time.Duration) ([]byte, error)
	Recalibrate(id string, cam config.Camera) error
}

// Options configure the calibration handlers.
type Options struct {
	Config *config.Config // as loaded, with the overlay
	// Validate loads the config file with overlay as its calibration
	// overlay and every check run does: a *config.Error names what is wrong.
	Validate func(overlay []byte) (*config.Config, error)
	Cameras  Cameras
	Audit    *audit.Log
	Logger   *slog.Logger
}

// Calibrator serves GET/PUT /api/v1/cameras/{id}/calibration and POST
// …/calibration/test.
type Calibrator struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex // guards cams and the overlay file
	cams    map[string]config.Camera
	saving  sync.Mutex // one save at a time: each rewrites the whole overlay
	testing sync.Mutex // one test at a time: it decodes a minute of video
}

// New builds the calibrator from the loaded config.
func New(o Options) *Calibrator {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Calibrator{o: o, log: o.Logger.With("component", "calibrate"), cams: map[string]config.Camera{}}
	for _, cam := range o.Config.Cameras {
		c.cams[cam.ID] = cam
	}
	return c
}

// Facade is a calibration as the console edits it: always four corners
// (a frontal rectangle's are its own corners).
type Facade struct {
	Corners     [][]float64 `json:"corners"`
	Floors      int         `json:"floors"`
	LowestFloor int         `json:"lowest_floor"`
	FloorLinesY []float64   `json:"floor_lines_y,omitempty"`
}

// Zone is a detect.zones entry.
type Zone struct {
	Name   string   `json:"name"`
	Mask   bool     `json:"mask"`
	Points [][2]int `json:"points"`
}

// Calibration is the body of GET and PUT.
type Calibration struct {
	Camera string `json:"camera,omitempty"`
	Facade Facade `json:"facade"`
	Zones  []Zone `json:"zones"`
}

// HTTP is the handlers for api.Handlers.
func (c *Calibrator) HTTP() api.CalibrationHandlers {
	return api.CalibrationHandlers{Get: http.HandlerFunc(c.get), Put: http.HandlerFunc(c.put), Test: http.HandlerFunc(c.test)}
}

func (c *Calibrator) camera(id string) (config.Camera, error) {
	c.mu.Lock()
	cam, ok := c.cams[id]
	c.mu.Unlock()
	if !ok {
		return cam, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no camera %q", id)
	}
	if cam.Detect.Throw == nil {
		return cam, api.Errorf(http.StatusConflict, CodeNotThrow, "camera %s has no detect.throw: only throw cameras are calibrated here", id)
	}
	return cam, nil
}

// Error codes the console words.
const (
	CodeNotThrow = "calibration_not_throw"
	CodeInvalid  = "calibration_invalid"
	CodeBusy     = "calibration_busy"
	CodeNoVideo  = "calibration_no_video"
)

func (c *Calibrator) get(w http.ResponseWriter, r *http.Request) {
	cam, err := c.camera(r.PathValue("id"))
	if err != nil {
		api.WriteError(w, err)
		return
	}
	o, err := throw.ParseOptions("detect.throw", cam.Detect.Throw)
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusConflict, CodeInvalid, "%v", err))
		return
	}
	api.WriteJSON(w, http.StatusOK, Calibration{Camera: cam.ID, Facade: facadeOf(o.Facade), Zones: zonesOf(cam.Detect.Regions)})
}

// facadeOf is a calibration as corners and image floor lines.
func facadeOf(f throw.Facade) Facade {
	out := Facade{Floors: f.Floors, LowestFloor: f.LowestFloor}
	for _, p := range f.ImageCorners() {
		out.Corners = append(out.Corners, []float64{p[0], p[1]})
	}
	out.FloorLinesY = f.ImageLines()
	return out
}

func zonesOf(rs []config.Region) []Zone {
	out := []Zone{}
	for _, z := range rs {
		out = append(out, Zone{Name: z.Name, Mask: z.Mask, Points: z.Points})
	}
	return out
}

// proposal checks a body and turns it into the overlay with it, and the
// camera as the validated config has it.
func (c *Calibrator) proposal(r *http.Request, id string) (overlay []byte, cam config.Camera, err error) {
	var in Calibration
	if err := api.DecodeJSON(r, &in); err != nil {
		return nil, cam, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ov, err := c.readOverlay()
	if err != nil {
		return nil, cam, err
	}
	facade := map[string]any{"corners": in.Facade.Corners, "floors": in.Facade.Floors, "lowest_floor": in.Facade.LowestFloor}
	if len(in.Facade.FloorLinesY) > 0 {
		facade["floor_lines_y"] = in.Facade.FloorLinesY
	}
	zones := make([]config.Region, 0, len(in.Zones))
	for _, z := range in.Zones {
		zones = append(zones, config.Region{Name: z.Name, Mask: z.Mask, Points: z.Points})
	}
	if ov.Cameras == nil {
		ov.Cameras = map[string]config.OverlayCamera{}
	}
	ov.Cameras[id] = config.OverlayCamera{Detect: config.OverlayDetect{Throw: &config.OverlayThrow{Facade: config.SectionOf(facade)}, Zones: &zones}}
	body, err := yaml.Marshal(ov)
	if err != nil {
		return nil, cam, fmt.Errorf("calibration: encode overlay: %w", err)
	}
	overlay = append([]byte(overlayHeader), body...)
	cfg, err := c.o.Validate(overlay)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return nil, cam, invalid(ce)
		}
		return nil, cam, err
	}
	for _, cc := range cfg.Cameras {
		if cc.ID == id {
			return overlay, cc, nil
		}
	}
	return nil, cam, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no camera %q", id)
}

const overlayHeader = `# Written by the console's camera calibration (admin). For each camera it
# sets detect.throw.facade and detect.zones; every other key is warden.yaml's.
# check-config validates the two together (docs/config.md).
`

// invalid is the 400 of a calibration the config checks refuse: the
// problems as check-config words them.
func invalid(ce *config.Error) error {
	msg := ""
	for i, p := range ce.Problems {
		if i > 0 {
			msg += "; "
		}
		msg += p.String()
	}
	return api.Errorf(http.StatusBadRequest, CodeInvalid, "%s", msg)
}

func (c *Calibrator) readOverlay() (config.Overlay, error) {
	var ov config.Overlay
	b, err := os.ReadFile(c.o.Config.OverlayPath())
	if errors.Is(err, os.ErrNotExist) {
		return ov, nil
	}
	if err != nil {
		return ov, fmt.Errorf("calibration: read overlay: %w", err)
	}
	if ov, err = config.DecodeOverlay(b); err != nil {
		return ov, fmt.Errorf("calibration: overlay %s: %w", c.o.Config.OverlayPath(), err)
	}
	return ov, nil
}

func (c *Calibrator) put(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := c.camera(id); err != nil {
		api.WriteError(w, err)
		return
	}
	// from reading the overlay to writing it: two saves of two cameras
	// must not each drop the other's
	c.saving.Lock()
	defer c.saving.Unlock()
	overlay, cam, err := c.proposal(r, id)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	actor := "?"
	if p, ok := api.PrincipalFrom(r.Context()); ok {
		actor = p.Name
	}
	c.mu.Lock()
	err = atomicfile.Write(c.o.Config.OverlayPath(), overlay)
	if err == nil {
		c.cams[id] = cam
	}
	c.mu.Unlock()
	c.record(actor, id, cam, err)
	if err != nil {
		c.log.Error("calibration not saved", "camera", id, "err", err)
		api.WriteError(w, api.Errorf(http.StatusInternalServerError, api.CodeInternal, "calibration not saved: %v", err))
		return
	}
	applied := true
	if err := c.o.Cameras.Recalibrate(id, cam); err != nil {
		// saved: it applies at the next start
		applied = false
		c.log.Error("calibration saved but not applied to the running camera", "camera", id, "err", err)
	}
	c.log.Info("calibration saved", "camera", id, "by", actor, "applied", applied)
	o, _ := throw.ParseOptions("detect.throw", cam.Detect.Throw)
	api.WriteJSON(w, http.StatusOK, map[string]any{"calibration": Calibration{Camera: id, Facade: facadeOf(o.Facade), Zones: zonesOf(cam.Detect.Regions)},
		"applied": applied, "overlay": c.o.Config.OverlayPath()})
}

func (c *Calibrator) record(actor, id string, cam config.Camera, err error) {
	if c.o.Audit == nil {
		return
	}
	e := audit.Entry{Actor: actor, Action: "camera.calibrate", Target: id,
		Detail: map[string]any{"facade": cam.Detect.Throw.Map()["facade"], "zones": len(cam.Detect.Regions)}}
	if err != nil {
		e.Error = err.Error()
	}
	if _, aerr := c.o.Audit.Record(e); aerr != nil {
		c.log.Error("audit record failed", "err", aerr)
	}
}

// Alarm is what the detector would have reported in a test.
type Alarm struct {
	T     float64        `json:"t_s"` // seconds into the replayed video
	Data  map[string]any `json:"data"`
	Image string         `json:"image,omitempty"` // data: URL of the trajectory picture
}

// TestResult is POST …/calibration/test's answer.
type TestResult struct {
	Seconds float64 `json:"seconds"` // video replayed
	Frames  int     `json:"frames"`
	Alarms  []Alarm `json:"alarms"`
}

func (c *Calibrator) test(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := c.camera(id); err != nil {
		api.WriteError(w, err)
		return
	}
	_, cam, err := c.proposal(r, id)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if !c.testing.TryLock() {
		api.WriteError(w, api.Errorf(http.StatusTooManyRequests, CodeBusy, "a calibration test is already running"))
		return
	}
	defer c.testing.Unlock()
	res, err := c.Replay(r.Context(), cam)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, res)
}

// Replay runs cam's throw detector over the camera's last TestSeconds of
// video, at its detect rate, and returns what it would have reported.
func (c *Calibrator) Replay(ctx context.Context, cam config.Camera) (TestResult, error) {
	res := TestResult{Alarms: []Alarm{}}
	mp4, err := c.o.Cameras.Recent(ctx, cam.ID, TestSeconds*time.Second)
	if err != nil {
		return res, api.Errorf(http.StatusConflict, CodeNoVideo, "no recent video of camera %s to replay: %v", cam.ID, err)
	}
	f, err := os.CreateTemp("", "warden-calibration-*.mp4")
	if err != nil {
		return res, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(mp4)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	det, err := throw.New(cam)
	if err != nil || det == nil {
		return res, api.Errorf(http.StatusBadRequest, CodeInvalid, "%v", err)
	}
	defer det.Close()
	fps := cam.Detect.FPS
	if fps <= 0 {
		fps = config.DefaultDetectFPS
	}
	var last time.Duration
	res.Frames, err = camera.ReadFile(ctx, f.Name(), camera.FileOptions{FPS: fps}, func(fr vision.Frame) {
		last = fr.PTS
		for _, d := range det.Detect(fr) {
			a := Alarm{T: fr.PTS.Seconds(), Data: d.Data}
			for _, img := range d.Images {
				if img.Kind == "trajectory" {
					a.Image = "data:" + img.ContentType + ";base64," + base64.StdEncoding.EncodeToString(img.Data)
				}
			}
			res.Alarms = append(res.Alarms, a)
		}
	})
	res.Seconds = last.Seconds()
	if err != nil {
		return res, fmt.Errorf("calibration test of camera %s: %w", cam.ID, err)
	}
	return res, nil
}
