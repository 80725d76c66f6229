package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/vision/face"
)

// runAnalyze prints one event per line. seq is a running counter from 1
// over all files (the store assigns real seqs; analyze has none). Each
// file's first frame is at --start (default the Unix epoch).
func runAnalyze(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file (required)")
	camID := fs.String("camera", "", "camera id whose detectors run (required)")
	realtime := fs.Bool("realtime", false, "pace frames by the video timeline")
	startS := fs.String("start", "", "RFC3339 wall time of each file's first frame (default 1970-01-01T00:00:00Z)")
	noGallery := fs.Bool("no-gallery", false, "do not read the configuration's face gallery (every face is unknown)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" || *camID == "" || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: warden analyze --config FILE --camera ID [--realtime] [--start RFC3339] [--no-gallery] VIDEO...")
		return 2
	}
	var start time.Time
	if *startS != "" {
		t, err := time.Parse(time.RFC3339Nano, *startS)
		if err != nil {
			fmt.Fprintf(os.Stderr, "warden analyze: --start %q is not RFC3339: %v\n", *startS, err)
			return 2
		}
		start = t
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var cam *config.Camera
	for i := range cfg.Cameras {
		if cfg.Cameras[i].ID == *camID {
			cam = &cfg.Cameras[i]
		}
	}
	if cam == nil {
		fmt.Fprintf(os.Stderr, "warden analyze: camera %q is not in %s\n", *camID, *cfgPath)
		return 2
	}
	if cam.Detect.Face != nil {
		c, err := analyzeGallery(cfg, *cam, *noGallery)
		if err != nil {
			fmt.Fprintln(os.Stderr, "warden analyze:", err)
			return 2
		}
		cam = &c
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	tty := isTTY(os.Stderr)
	var seq uint64
	code := 0
	for i, path := range fs.Args() {
		var lastDraw time.Time
		progress := func(pos, total time.Duration) {
			if !tty || time.Since(lastDraw) < 100*time.Millisecond {
				return
			}
			lastDraw = time.Now()
			fmt.Fprintf(os.Stderr, "\r[%d/%d] %s %s", i+1, fs.NArg(), bar(pos, total, 30), pos.Truncate(time.Second))
		}
		n := 0
		var stats camera.AnalyzeStats
		err := camera.Analyze(ctx, camera.AnalyzeOptions{Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Camera: *cam,
			Start: start, Realtime: *realtime, Progress: progress, Done: func(s camera.AnalyzeStats) { stats = s }}, path, func(ev *event.Event) {
			seq++
			n++
			ev.Seq = seq
			b, _ := json.Marshal(ev)
			out.Write(b)
			out.WriteByte('\n')
		})
		if tty {
			fmt.Fprint(os.Stderr, "\r\033[K")
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "warden analyze: %s: %v\n", path, err)
			code = 1
			if ctx.Err() != nil {
				return 1
			}
			continue
		}
		fmt.Fprintf(os.Stderr, "[%d/%d] %s: %d events\n", i+1, fs.NArg(), path, n)
		printStats(stats)
	}
	return code
}

// analyzeGallery points the camera's face detector at the configuration's
// gallery (data_dir/warden.db, read-only) unless detect.face.gallery_db is
// set or noGallery, and says how many persons it holds: a recogniser run
// against an empty gallery calls everybody unknown, the watch list too.
func analyzeGallery(cfg *config.Config, cam config.Camera, noGallery bool) (config.Camera, error) {
	f := cam.Detect.Face.Map() // a copy: the config's section stays as read
	cam.Detect.Face = config.SectionOf(f)
	if noGallery {
		delete(f, "gallery_db")
		cam.Detect.Face = config.SectionOf(f)
		fmt.Fprintln(os.Stderr, "gallery: not read (--no-gallery): every face is unknown")
		return cam, nil
	}
	if v, _ := f["gallery_db"].(string); v == "" {
		db := filepath.Join(cfg.Gateway.DataDir, "warden.db")
		if _, err := os.Stat(db); err != nil {
			fmt.Fprintf(os.Stderr, "gallery: none at %s (enrol with warden enroll --config): every face is unknown\n", db)
			return cam, nil
		}
		f["gallery_db"] = db
		cam.Detect.Face = config.SectionOf(f)
	}
	o, err := face.ParseOptions("detect.face", cam.Detect.Face)
	if err != nil {
		return cam, err
	}
	entries, err := face.ReadGallery(o)
	if err != nil {
		return cam, fmt.Errorf("%w; or run with --no-gallery", err)
	}
	persons := map[string]bool{}
	for _, e := range entries {
		persons[e.Person.ID] = true
	}
	fmt.Fprintf(os.Stderr, "gallery: %d persons, %d templates from %s (read-only)\n", len(persons), len(entries), o.GalleryDB)
	return cam, nil
}

func isTTY(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func bar(pos, total time.Duration, width int) string {
	if total <= 0 {
		return strings.Repeat("?", width)
	}
	done := min(width, int(float64(width)*float64(pos)/float64(total)))
	return "[" + strings.Repeat("#", done) + strings.Repeat(".", width-done) + "]"
}

// printStats says what the detectors did: the frames analysed and their
// cost, and for faces how many were seen and what each cost (what an
// installer checks when a camera gives no face events).
func printStats(s camera.AnalyzeStats) {
	if s.Frames == 0 {
		return
	}
	ms := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	fmt.Fprintf(os.Stderr, "  %d frames analysed, %.1f ms per frame in the detectors", s.Frames, ms(s.Detect, s.Frames))
	if n := s.Counts["face_faces"]; n > 0 {
		fmt.Fprintf(os.Stderr, "; %d faces, %.1f ms per face (too small %d, poor quality %d)",
			n, ms(s.Detect, n), s.Counts["face_too_small"], s.Counts["face_poor_quality"])
	}
	fmt.Fprintln(os.Stderr)
}
