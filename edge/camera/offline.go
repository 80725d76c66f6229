package camera

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/vision"
)

// AnalyzeOptions configure Analyze.
type AnalyzeOptions struct {
	Gateway, Site string
	Camera        config.Camera
	Detectors     []vision.Factory // nil: DefaultDetectors
	// Start is the wall time of each file's first frame (zero: the Unix epoch).
	Start    time.Time
	Realtime bool
	Progress func(pos, total time.Duration)
	// Done, when set, receives what the detectors did over the file.
	Done func(AnalyzeStats)
}

// AnalyzeStats is what the detectors did over one file: frames analysed,
// time spent in Detect, and the counts of counting detectors (face_faces,
// face_too_small, …), for installers and benchmarks.
type AnalyzeStats struct {
	Frames int
	Detect time.Duration
	Counts map[string]int
}

// Analyze runs the camera's detectors over one file, as fast as possible
// unless Realtime, and calls emit with each event in video order. Event
// times come from the video timeline, and ids are derived from camera, time,
// type and a counter, so the same input gives byte-identical output. Events
// carry no media (analyze has no media store), and refinements are
// dropped. Detectors start fresh for each file.
func Analyze(ctx context.Context, opt AnalyzeOptions, path string, emit func(*event.Event)) error {
	facs := opt.Detectors
	if facs == nil {
		facs = DefaultDetectors()
	}
	dets, err := vision.Open(opt.Camera, facs...)
	if err != nil {
		return fmt.Errorf("camera %s: %w", opt.Camera.ID, err)
	}
	defer func() {
		for _, d := range dets {
			d.Close()
		}
	}()
	start := opt.Start
	if start.IsZero() {
		start = time.Unix(0, 0)
	}
	fps := opt.Camera.Detect.FPS
	if fps <= 0 {
		fps = config.DefaultDetectFPS
	}
	n := 0
	var st AnalyzeStats
	st.Frames, err = ReadFile(ctx, path, FileOptions{FPS: fps, Realtime: opt.Realtime, Progress: opt.Progress}, func(f vision.Frame) {
		f.Wall = start.Add(f.PTS)
		for _, d := range dets {
			t0 := time.Now()
			found := d.Detect(f)
			st.Detect += time.Since(t0)
			for _, det := range found {
				if det.Refines != "" {
					continue // analyze keeps no media to add to
				}
				o := event.Origin{Gateway: opt.Gateway, Site: opt.Site, Source: event.Source{Kind: "camera", ID: opt.Camera.ID},
					Location: opt.Camera.Location, Time: f.Wall}
				ev, err := EventFor(o, det)
				if err != nil {
					continue
				}
				n++
				ev.ID = stableID(opt.Camera.ID, ev.Time, ev.Type, n)
				emit(ev)
			}
		}
	})
	if opt.Done != nil && err == nil {
		st.Counts = map[string]int{}
		for _, d := range dets {
			if c, ok := d.(vision.Counting); ok {
				maps.Copy(st.Counts, c.Counts())
			}
		}
		opt.Done(st)
	}
	return err
}

// stableID is a valid ULID for t whose entropy is a hash of the inputs.
func stableID(cam string, t time.Time, typ string, n int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%s\x00", cam, t.UnixNano(), typ)
	_ = binary.Write(h, binary.BigEndian, int64(n))
	var ent [10]byte
	copy(ent[:], h.Sum(nil))
	var id ulid.ULID
	if err := id.SetTime(ulid.Timestamp(t)); err != nil {
		// before 1970 or after 10889: fall back to the epoch
		_ = id.SetTime(0)
	}
	_ = id.SetEntropy(ent[:])
	return id.String()
}
