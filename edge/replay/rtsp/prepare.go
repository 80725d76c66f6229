// Package rtsp serves recorded video files as looping live RTSP streams,
// paced in real time, so the camera pipeline can be tested and demonstrated
// without cameras.
//
// Every input (MP4, MKV, AVI, TS, raw H.264) is first turned into one H.264
// MPEG-TS file by the ffmpeg binary: a stream copy when the video is already
// H.264, a one-time transcode otherwise. Serving then reads that TS file with
// mediacommon, so the hot path has no subprocess.
package rtsp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoVideo is returned for a file without a video stream ffmpeg can read.
var ErrNoVideo = errors.New("no readable video stream")

// Probe returns the codec name of the first video stream of file.
func Probe(ctx context.Context, file string) (string, error) {
	if _, err := os.Stat(file); err != nil {
		return "", fmt.Errorf("replay: %w", err)
	}
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name", "-of", "csv=p=0", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("replay: ffprobe %s: %w: %s: %s", file, ErrNoVideo, err, strings.TrimSpace(stderr.String()))
	}
	// a TS file lists its streams once per program too: the first line
	codec, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if codec = strings.TrimSpace(codec); codec == "" {
		return "", fmt.Errorf("replay: %s: %w", file, ErrNoVideo)
	}
	return codec, nil
}

// Prepare writes file's first video stream as MPEG-TS into dir and returns
// the path. H.264 and H.265 are copied (cameras send both); any other codec
// is transcoded once to H.264 (libx264, no B-frames, a key frame every
// second) unless noTranscode is set, in which case it refuses with a clear
// error.
func Prepare(ctx context.Context, file, dir string, noTranscode bool) (string, error) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return "", fmt.Errorf("replay: the ffmpeg binary is required: %w", err)
	}
	codec, err := Probe(ctx, file)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))+".ts")
	args := []string{"-nostdin", "-v", "error", "-y", "-fflags", "+genpts"}
	ext := strings.ToLower(filepath.Ext(file))
	switch ext {
	case ".h264", ".264":
		args = append(args, "-f", "h264")
	case ".h265", ".265", ".hevc":
		args = append(args, "-f", "hevc")
	}
	args = append(args, "-i", file, "-map", "0:v:0", "-an", "-sn", "-dn")
	switch codec {
	case "h264":
		args = append(args, "-c:v", "copy", "-bsf:v", "h264_mp4toannexb")
	case "hevc":
		args = append(args, "-c:v", "copy", "-bsf:v", "hevc_mp4toannexb")
	default:
		if noTranscode {
			return "", fmt.Errorf("replay: %s is %s, neither H.264 nor H.265, and transcoding is off", file, codec)
		}
		args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
			"-bf", "0", "-force_key_frames", "expr:gte(t,n_forced*1)")
	}
	args = append(args, "-f", "mpegts", out)
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("replay: ffmpeg %s (%s): %w: %s", file, codec, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
