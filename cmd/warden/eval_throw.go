package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/vision"
	"github.com/smartcommunity/warden/edge/vision/throw"
	"github.com/smartcommunity/warden/edge/vision/throw/throwsim"
)

// runEvalThrow runs the throw detector over clips made by throwsim (or any
// clip with a truth file in its format) through the same path as `warden
// analyze`, and prints recall, false alarms, origin floor and latency.
func runEvalThrow(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("eval throw", flag.ContinueOnError)
	minSize := fs.Int("min-size", 5, "smallest object (px) counted in recall")
	bench := fs.Bool("bench", false, "also decode each clip without detectors and report CPU side by side")
	verbose := fs.Bool("v", false, "print every clip")
	dump := fs.String("dump", "", "write every throw.detected event's time and data to this file, one JSON line each, to compare two detector versions clip by clip")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var dumpEnc *json.Encoder
	if *dump != "" {
		f, err := os.Create(*dump)
		if err != nil {
			fmt.Fprintln(os.Stderr, "warden eval throw:", err)
			return 1
		}
		defer f.Close()
		dumpEnc = json.NewEncoder(f)
	}
	var files []string
	for _, a := range fs.Args() {
		st, err := os.Stat(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "warden eval throw:", err)
			return 2
		}
		if st.IsDir() {
			m, _ := filepath.Glob(filepath.Join(a, "*.json"))
			sort.Strings(m)
			files = append(files, m...)
		} else {
			files = append(files, a)
		}
	}
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "usage: warden eval throw [--min-size PX] [--bench] [-v] [--dump FILE] DIR|TRUTH.json...")
		return 2
	}
	var results []throwsim.Result
	var videoS, cpuDet, cpuDec, wallDet, wallDec float64
	var frames int
	for _, f := range files {
		tr, err := throwsim.ReadTruth(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "warden eval throw:", err)
			return 1
		}
		cam := config.Camera{ID: "eval", Detect: config.Detect{FPS: tr.FPS, Throw: tr.ThrowSection()}}
		res := throwsim.Result{Truth: tr}
		c0, w0 := cpuSeconds(), time.Now()
		err = camera.Analyze(ctx, camera.AnalyzeOptions{Camera: cam, Detectors: []vision.Factory{throw.New}}, tr.Clip, func(ev *event.Event) {
			if ev.Type != event.ThrowDetected {
				return
			}
			a := throwsim.Alarm{T: ev.Time.Sub(time.Unix(0, 0))}
			if dumpEnc != nil {
				_ = dumpEnc.Encode(map[string]any{"clip": filepath.Base(tr.Clip), "t": a.T.Seconds(), "data": ev.Data})
			}
			if o, ok := ev.Data["origin"].(map[string]any); ok {
				a.Floor, _ = o["floor"].(int)
				a.X, _ = o["x"].(float64)
			}
			res.Alarms = append(res.Alarms, a)
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "warden eval throw: %s: %v\n", tr.Clip, err)
			return 1
		}
		cpuDet += cpuSeconds() - c0
		wallDet += time.Since(w0).Seconds()
		videoS += float64(tr.Frames) / tr.FPS
		frames += tr.Frames
		if *bench {
			c0, w0 = cpuSeconds(), time.Now()
			if _, err := camera.ReadFile(ctx, tr.Clip, camera.FileOptions{FPS: tr.FPS}, func(vision.Frame) {}); err != nil {
				fmt.Fprintf(os.Stderr, "warden eval throw: %s: %v\n", tr.Clip, err)
				return 1
			}
			cpuDec += cpuSeconds() - c0
			wallDec += time.Since(w0).Seconds()
		}
		results = append(results, res)
		if *verbose {
			var th, ds []string
			for _, t := range tr.Throws {
				th = append(th, fmt.Sprintf("floor %d %dpx 2fl@%.2fs", t.ReleaseFloor, t.SizePx, t.T2FloorsS))
			}
			for _, d := range tr.Distractors {
				ds = append(ds, d.Kind)
			}
			var as []string
			for _, a := range res.Alarms {
				as = append(as, fmt.Sprintf("%.2fs floor %d", a.T.Seconds(), a.Floor))
			}
			fmt.Printf("%s: throws [%s] distractors [%s] -> alarms [%s]\n", filepath.Base(tr.Clip), strings.Join(th, "; "), strings.Join(ds, ","), strings.Join(as, "; "))
		}
	}
	rep := throwsim.Score(results, *minSize)
	fmt.Print(rep.Markdown())
	for _, m := range rep.Misses {
		fmt.Println("missed:", m)
	}
	for _, m := range rep.FalseList {
		fmt.Println("false alarm:", m)
	}
	fmt.Printf("\n| run | CPU per camera (cores) | frames/s per core | wall fps |\n|---|---|---|---|\n")
	fmt.Printf("| decode + throw | %.3f | %.0f | %.0f |\n", cpuDet/videoS, float64(frames)/cpuDet, float64(frames)/wallDet)
	if *bench {
		fmt.Printf("| decode only | %.3f | %.0f | %.0f |\n", cpuDec/videoS, float64(frames)/cpuDec, float64(frames)/wallDec)
		fmt.Printf("| throw alone (difference) | %.3f | %.0f | |\n", (cpuDet-cpuDec)/videoS, float64(frames)/(cpuDet-cpuDec))
	}
	return 0
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
