package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision/face"
	"github.com/smartcommunity/warden/edge/vision/face/cv"
	"github.com/smartcommunity/warden/edge/vision/face/videoeval"
)

// optionFlags collects repeated -o key=value face options.
type optionFlags map[string]any

func (o optionFlags) String() string { return fmt.Sprint(map[string]any(o)) }

func (o optionFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q: want key=value", s)
	}
	var val any = v
	if json.Valid([]byte(v)) { // numbers and booleans as in YAML
		json.Unmarshal([]byte(v), &val)
	}
	o[strings.TrimSpace(k)] = val
	return nil
}

func runEvalFaceVideo(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("eval face-video", flag.ContinueOnError)
	set := fs.String("set", "", "manifest CSV: person,role(enrol|probe|stranger),path")
	data := fs.String("data", "../shared/data", "folder the manifest's paths are relative to")
	opts := optionFlags{}
	fs.Var(opts, "o", "detect.face option key=value (repeatable), e.g. -o detector_model=F -o recognizer_input=arcface")
	renders := fs.Int("renders", 2, "times each visit is rendered (size, place, mirror and light differ)")
	seed := fs.Uint64("seed", 1, "random seed of the clip")
	fps := fs.Float64("fps", 0, "detect.fps (0: the default)")
	work := fs.String("work", "", "keep the gallery and clip.mp4 in this folder (default: a temporary one, removed)")
	threads := fs.Int("threads", 1, "OpenCV threads (1: one core)")
	verbose := fs.Bool("v", false, "list every visit, not only the ones that went wrong")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *set == "" {
		fmt.Fprintln(os.Stderr, "usage: warden eval face-video --set MANIFEST.csv [--data DIR] -o detector_model=F -o recognizer_model=F [-o key=value…]")
		return 2
	}
	fo, err := face.ParseOptions("-o", config.SectionOf(map[string]any(opts)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden eval face-video:", err)
		return 2
	}
	s, err := videoeval.ReadManifest(*set, *data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden eval face-video:", err)
		return 2
	}
	dir := *work
	if dir == "" {
		if dir, err = os.MkdirTemp("", "warden-face-video-"); err != nil {
			fmt.Fprintln(os.Stderr, "warden eval face-video:", err)
			return 1
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "warden eval face-video:", err)
		return 1
	}
	cv.SetNumThreads(*threads)
	clip := videoeval.DefaultClip()
	clip.Renders, clip.Seed = *renders, *seed
	r, err := videoeval.Run(ctx, s, videoeval.Options{Face: fo, Clip: clip, Dir: dir, FPS: *fps,
		Progress: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden eval face-video:", err)
		return 1
	}
	for _, f := range r.EnrolFailed {
		fmt.Printf("enrol refused: %s\n", f)
	}
	fmt.Printf("model %s, threshold %.2f, %d persons enrolled (%d photos)\n", r.Model, fo.Threshold, r.Persons, r.Templates)
	for _, v := range r.Visits {
		if v.Outcome == videoeval.Correct || v.Outcome == videoeval.Rejected {
			if !*verbose && len(v.Events) == 1 {
				continue
			}
		}
		var seen []string
		for _, e := range v.Events {
			seen = append(seen, e.Type+"/"+e.Person+"@"+strconv.FormatFloat(e.At.Seconds(), 'f', 1, 64))
		}
		fmt.Printf("  %-12s %-8s %-9s %3d px mirror=%-5v %6.1f–%.1f s %s  %s\n", v.Outcome, v.Person, v.Role, v.FacePx, v.Mirror,
			v.Start.Seconds(), v.End.Seconds(), strings.TrimPrefix(v.Path, *data+"/"), strings.Join(seen, " "))
	}
	fmt.Printf("resident visits %d: correct %d, wrong person %d, missed %d → identification %.1f%%\n",
		r.Genuine, r.Counts[videoeval.Correct], r.Counts[videoeval.Wrong], r.Counts[videoeval.Missed], 100*r.Identification)
	fmt.Printf("stranger visits %d: false accepts %d → %.1f%%\n", r.Strangers, r.Counts[videoeval.FalseAccept], 100*r.FAR)
	fmt.Printf("events: visits with none %d, with more than one %d, outside any visit %d\n", r.Silent, r.Extra, r.Stray)
	if r.Frames > 0 {
		fmt.Printf("face detector: %d frames, %.1f ms per frame (%d thread); tracks cut %d\n", r.Frames,
			float64(r.Detect.Microseconds())/1000/float64(r.Frames), *threads, r.Tracker["face_track_cuts"])
	}
	return 0
}
