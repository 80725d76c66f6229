package camera

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/replay/rtsp"

	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

// hevcServer loops an H.265 TS file in real time (replay/rtsp only serves H.264).
func hevcServer(t *testing.T, ts string) string {
	f, err := os.Open(ts)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	type au struct {
		pts int64
		nal [][]byte
	}
	var aus []au
	for _, tr := range r.Tracks() {
		if _, ok := tr.Codec.(*tscodecs.H265); ok {
			r.OnDataH265(tr, func(pts, _ int64, a [][]byte) error { aus = append(aus, au{pts, a}); return nil })
		}
	}
	for r.Read() == nil {
	}
	if len(aus) == 0 {
		t.Fatal("no H.265 in test clip")
	}
	forma := &format.H265{PayloadTyp: 96}
	s := &stallServer{}
	s.srv = &gortsplib.Server{Handler: s, RTSPAddress: "127.0.0.1:0"}
	if err := s.srv.Start(); err != nil {
		t.Fatal(err)
	}
	s.stream = &gortsplib.ServerStream{Server: s.srv, Desc: &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}}
	if err := s.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	enc, err := forma.CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start, base := time.Now(), int64(0)
		for {
			for _, a := range aus {
				off := base + a.pts - aus[0].pts
				select {
				case <-done:
					return
				case <-time.After(time.Until(start.Add(time.Duration(off) * time.Second / 90000))):
				}
				pkts, err := enc.Encode(a.nal)
				if err != nil {
					continue
				}
				for _, p := range pkts {
					p.Timestamp = uint32(off)
					_ = s.stream.WritePacketRTP(s.stream.Desc.Medias[0], p)
				}
			}
			base += aus[len(aus)-1].pts - aus[0].pts + 3600
		}
	}()
	t.Cleanup(func() { close(done); wg.Wait(); s.stream.Close(); s.srv.Close() })
	return s.srv.NetListener().Addr().String()
}

func TestH265RecordStream(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	hevcTS := filepath.Join(dir, "main.ts")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "4",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:bframes=0:log-level=error", "-f", "mpegts", hevcTS).CombinedOutput(); err != nil {
		t.Skipf("ffmpeg cannot encode H.265 here: %v: %s", err, out)
	}
	mainAddr := hevcServer(t, hevcTS)
	sub := &rtsp.Server{Addr: "127.0.0.1:0", Streams: []rtsp.Stream{{Name: "sub", TS: testStream(t, 4)}}}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	st := storetest.Open(t, store.Options{})
	rec := &recorder{st: st}
	cam := New(config.Camera{ID: "two", URL: "rtsp://" + mainAddr + "/main",
		Record: config.Record{PreSeconds: 1, PostSeconds: 2},
		Detect: config.Detect{URL: "rtsp://" + sub.ListenAddr() + "/sub", Motion: config.SectionOf(map[string]any{"min_frames": 10, "clip": true})}},
		Deps{Gateway: "gw", Site: "s", Sink: rec, Media: st})
	runCamera(t, cam)
	testenv.Until(t, 30*time.Second, "motion with a clip", func() bool {
		evs := rec.find("motion.detected", "two")
		if len(evs) == 0 {
			return false
		}
		_, ok := rec.clipOf(evs[0])
		return ok
	})
	m, _ := rec.clipOf(rec.find("motion.detected", "two")[0])
	p := filepath.Join(dir, "clip.mp4")
	if err := os.WriteFile(p, readMedia(t, st, m), 0o600); err != nil {
		t.Fatal(err)
	}
	codec, dur := probe(t, p)
	if codec != "hevc" || dur < 2 || dur > 4 {
		t.Fatalf("clip is %s of %.2fs, want hevc of 3±1 s", codec, dur)
	}

	// Live view gets the H.265 main stream (for LL-HLS), from a key frame
	// that carries VPS, SPS and PPS.
	v, err := cam.Watch(1)
	if err != nil || !v.HEVC {
		t.Fatalf("Watch: %v, HEVC %v", err, v != nil && v.HEVC)
	}
	defer v.Close()
	select {
	case u := <-v.C:
		have := map[h265.NALUType]bool{}
		for _, n := range u.AU {
			have[h265.NALUType((n[0]>>1)&0x3f)] = true
		}
		if !u.IDR || !have[h265.NALUType_VPS_NUT] || !have[h265.NALUType_SPS_NUT] || !have[h265.NALUType_PPS_NUT] {
			t.Errorf("first live unit: IDR %v, NAL types %v", u.IDR, have)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no live unit in 10 s")
	}
	if _, err := cam.Watch(1); err != ErrTooManyViewers {
		t.Errorf("second viewer over the cap: %v", err)
	}
}
