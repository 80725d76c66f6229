package camera

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/replay/rtsp"

	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

func TestH265RecordStream(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	hevcTS := filepath.Join(dir, "main.ts")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "4",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:bframes=0:log-level=error", "-f", "mpegts", hevcTS).CombinedOutput(); err != nil {
		t.Skipf("ffmpeg cannot encode H.265 here: %v: %s", err, out)
	}
	srv := &rtsp.Server{Addr: "127.0.0.1:0", Streams: []rtsp.Stream{{Name: "main", TS: hevcTS}, {Name: "sub", TS: testStream(t, 4)}}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	st := storetest.Open(t, store.Options{})
	rec := &recorder{st: st}
	cam := New(config.Camera{ID: "two", URL: "rtsp://" + srv.ListenAddr() + "/main",
		Record: config.Record{PreSeconds: 1, PostSeconds: 2},
		Detect: config.Detect{URL: "rtsp://" + srv.ListenAddr() + "/sub", Motion: config.SectionOf(map[string]any{"min_frames": 10, "clip": true})}},
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

	// The camera list names the codec, so the console plays it over LL-HLS.
	if got := (Set{cam}).Status()[0].Codec; got != "h265" {
		t.Errorf("camera list codec %q, want h265", got)
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
