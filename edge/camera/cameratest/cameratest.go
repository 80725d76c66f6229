// Package cameratest makes test videos with ffmpeg for camera and detector
// tests: real H.264 files built from real images, at test time.
package cameratest

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// NeedFFmpeg skips the test when ffmpeg is not installed.
func NeedFFmpeg(t testing.TB) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed: run `make test` (it installs ffmpeg)", b)
		}
	}
}

// Slideshow builds an H.264 MP4 where each image stays in view for hold
// seconds, each followed by a black gap of gap seconds (longer than a
// track's life, so each image is a new person passing, also when the clip
// loops).
func Slideshow(t testing.TB, out string, imgs []string, hold, gap float64) {
	t.Helper()
	var shots []Shot
	for _, img := range imgs {
		shots = append(shots, Shot{Image: img, Secs: hold}, Shot{Secs: gap})
	}
	Shots(t, out, shots)
}

// Shot is a still in a test video: Image fitted into 640×480 and shrunk by
// Scale (0 or 1: fitted), or black when Image is empty.
type Shot struct {
	Image string
	Scale float64
	Secs  float64
}

// Shots builds a 640×480, 10 fps H.264 MP4 of the shots in order.
func Shots(t testing.TB, out string, shots []Shot) {
	t.Helper()
	NeedFFmpeg(t)
	var args []string
	var filter strings.Builder
	for i, s := range shots {
		if s.Image == "" {
			args = append(args, "-f", "lavfi", "-t", fmt.Sprint(s.Secs), "-i", "color=c=black:s=640x480:r=10")
			fmt.Fprintf(&filter, "[%d:v]setsar=1,format=yuv420p[v%d];", i, i)
			continue
		}
		scale := s.Scale
		if scale <= 0 {
			scale = 1
		}
		args = append(args, "-loop", "1", "-framerate", "10", "-t", fmt.Sprint(s.Secs), "-i", s.Image)
		fmt.Fprintf(&filter, "[%d:v]scale=%d:%d:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=10,format=yuv420p[v%d];",
			i, int(640*scale)/2*2, int(480*scale)/2*2, i)
	}
	for i := range shots {
		fmt.Fprintf(&filter, "[v%d]", i)
	}
	fmt.Fprintf(&filter, "concat=n=%d:v=1:a=0[out]", len(shots))
	args = append(args, "-filter_complex", filter.String(), "-map", "[out]", "-c:v", "libx264", "-g", "10", "-pix_fmt", "yuv420p", "-y", out)
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error"}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
}

// H265 encodes the video of in as H.265 MPEG-TS at out (a key frame a
// second, no B-frames), as a camera's main stream. False, logged, when
// this ffmpeg cannot encode H.265: the caller goes on without it.
func H265(t testing.TB, in, out string) bool {
	t.Helper()
	if b, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", in, "-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "keyint=25:bframes=0:log-level=error", "-f", "mpegts", out).CombinedOutput(); err != nil {
		t.Logf("no H.265 stream (ffmpeg cannot encode it here): %v: %s", err, b)
		return false
	}
	return true
}
