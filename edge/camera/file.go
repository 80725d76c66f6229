package camera

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision"
)

// FileOptions control ReadFile.
type FileOptions struct {
	FPS      float64 // frames per second of video time handed to onFrame (default 5)
	Realtime bool    // pace by the video timeline instead of as fast as possible
	// Progress, when set, is called with the position and the duration
	// (zero when unknown) about once per analysed frame.
	Progress func(pos, total time.Duration)
}

// ErrUnreadable is wrapped by ReadFile when the file is not a video OpenCV
// can decode.
var ErrUnreadable = errors.New("not a readable video")

// ReadFile decodes a video file with OpenCV (any container and codec its
// FFmpeg backend reads) and calls onFrame for frames sampled at opt.FPS on
// the video timeline. The Frame's Wall is zero; callers map PTS onto their
// own clock. It returns the number of frames handed over.
func ReadFile(ctx context.Context, path string, opt FileOptions, onFrame func(vision.Frame)) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	vc, err := gocv.VideoCaptureFileWithAPI(path, gocv.VideoCaptureFFmpeg)
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return 0, fmt.Errorf("%s: %w (OpenCV could not open it)", path, ErrUnreadable)
	}
	defer vc.Close()
	if opt.FPS <= 0 {
		opt.FPS = 5
	}
	srcFPS := vc.Get(gocv.VideoCaptureFPS)
	if srcFPS <= 0 || srcFPS > 1000 {
		srcFPS = 25
	}
	var total time.Duration
	if n := vc.Get(gocv.VideoCaptureFrameCount); n > 0 {
		total = time.Duration(n / srcFPS * float64(time.Second))
	}
	step := time.Duration(float64(time.Second) / opt.FPS)
	m := gocv.NewMat()
	defer m.Close()
	var next time.Duration
	start := time.Now()
	idx, seq := 0, 0
	for ctx.Err() == nil {
		if !vc.Read(&m) || m.Empty() {
			break
		}
		// the frame index on the nominal rate is deterministic where
		// POS_MSEC may depend on the container
		pts := time.Duration(float64(idx) / srcFPS * float64(time.Second))
		idx++
		if pts < next {
			continue
		}
		next += step
		for next <= pts {
			next += step
		}
		if opt.Realtime {
			if wait := time.Until(start.Add(pts)); wait > 0 {
				select {
				case <-ctx.Done():
					return seq, ctx.Err()
				case <-time.After(wait):
				}
			}
		}
		onFrame(vision.Frame{Mat: m, PTS: pts, Seq: seq})
		seq++
		if opt.Progress != nil {
			opt.Progress(pts, total)
		}
	}
	if idx == 0 {
		return 0, fmt.Errorf("%s: %w (no frame decoded)", path, ErrUnreadable)
	}
	return seq, ctx.Err()
}

// superviseFile plays a file camera in real time, looping, with the same
// analysis path as a live camera (no clips: there is no record ring).
func (c *Camera) superviseFile(ctx context.Context, path string) {
	for ctx.Err() == nil {
		base := time.Since(c.start)
		loopStart := time.Now()
		_, err := ReadFile(ctx, path, FileOptions{FPS: c.cfg.Detect.FPS, Realtime: true}, func(f vision.Frame) {
			c.setOnline(ctx, true, nil)
			bgr := f.Mat.ToBytes()
			c.m.Decoded.WithLabelValues(c.cfg.ID).Inc()
			c.publish(&liveFrame{pix: bgr, w: f.Mat.Cols(), h: f.Mat.Rows(), pts: base + f.PTS, wall: loopStart.Add(f.PTS)})
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.m.Errors.WithLabelValues(c.cfg.ID, "file").Inc()
			c.setOnline(ctx, false, err)
			c.log.Warn("file camera unreadable; retrying", "path", path, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.deps.MaxBackoff):
			}
		}
	}
}
