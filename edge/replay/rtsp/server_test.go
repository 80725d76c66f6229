package rtsp

import (
	"context"
	"fmt"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed: %v", b, err)
		}
	}
}

// makeClip writes a 320x180 25 fps test clip of secs seconds with
// ffmpeg's lavfi source, encoded with enc (default: H.264, GOP 25).
func makeClip(t *testing.T, dir, name, secs string, enc ...string) string {
	t.Helper()
	out, err := encodeClip(dir, name, secs, enc...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func encodeClip(dir, name, secs string, enc ...string) (string, error) {
	out := filepath.Join(dir, name)
	if len(enc) == 0 {
		enc = []string{"-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p"}
	}
	args := append([]string{"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", secs}, enc...)
	if b, err := exec.Command("ffmpeg", append(args, out)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ffmpeg: %v: %s", err, b)
	}
	return out, nil
}

func TestReplayLoopsWithMonotonicTimestamps(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	ctx := context.Background()
	mp4 := makeClip(t, dir, "a.mp4", "1")
	avi := makeClip(t, dir, "b.avi", "1", "-c:v", "mpeg4")
	tsA, err := Prepare(ctx, mp4, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	tsB, err := Prepare(ctx, avi, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(ctx, avi, t.TempDir(), true); err == nil {
		t.Fatal("no-transcode accepted an mpeg4 file")
	}
	if _, err := Prepare(ctx, filepath.Join("server.go"), t.TempDir(), false); err == nil {
		t.Fatal("a Go source file was accepted as video")
	}
	s := &Server{Addr: "127.0.0.1:0", Streams: []Stream{{"a", tsA}, {"b", tsB}}}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, name := range []string{"a", "b"} {
		u, _ := base.ParseURL("rtsp://" + s.ListenAddr() + "/" + name)
		c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		desc, _, err := c.Describe(u)
		if err != nil {
			t.Fatal(err)
		}
		var forma *format.H264
		medi := desc.FindFormat(&forma)
		if medi == nil || forma.SPS == nil {
			t.Fatalf("%s: no H.264 with SPS in SDP", name)
		}
		if err := c.SetupAll(desc.BaseURL, []*description.Media{medi}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var stamps []uint32
		c.OnPacketRTP(medi, forma, func(p *rtp.Packet) {
			mu.Lock()
			if len(stamps) == 0 || stamps[len(stamps)-1] != p.Timestamp {
				stamps = append(stamps, p.Timestamp)
			}
			mu.Unlock()
		})
		start := time.Now()
		if _, err := c.Play(nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond)
		c.Close()
		el := time.Since(start)
		mu.Lock()
		n := len(stamps)
		// B-frames reorder by a few frames; beyond that, and across the
		// loop, timestamps must only move forward
		maxTS := stamps[0]
		for i := 1; i < n; i++ {
			if d := int32(stamps[i] - maxTS); d < -90000/5 || d > 90000/5 {
				t.Fatalf("%s: timestamp step %d at %d", name, d, i)
			}
			if int32(stamps[i]-maxTS) > 0 {
				maxTS = stamps[i]
			}
		}
		if span := time.Duration(maxTS-stamps[0]) * time.Second / 90000; span < el/2 {
			t.Fatalf("%s: timestamps span %v in %v", name, span, el)
		}
		mu.Unlock()
		// real-time pacing: 25 fps over ~2.5 s, across at least one loop
		if want := int(el.Seconds() * 25); n < want/2 || n > want*2 {
			t.Fatalf("%s: %d frames in %v, want about %d", name, n, el, want)
		}
	}
}

func TestReplay404AndAuth(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	ts, err := Prepare(context.Background(), makeClip(t, dir, "a.mp4", "1"), dir, false)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: "127.0.0.1:0", Streams: []Stream{{"a", ts}}, User: "u", Pass: "p"}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for url, ok := range map[string]bool{
		"rtsp://u:p@" + s.ListenAddr() + "/a":    true,
		"rtsp://u:bad@" + s.ListenAddr() + "/a":  false,
		"rtsp://" + s.ListenAddr() + "/a":        false,
		"rtsp://u:p@" + s.ListenAddr() + "/nope": false,
	} {
		u, _ := base.ParseURL(url)
		c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		_, _, err := c.Describe(u)
		c.Close()
		if (err == nil) != ok {
			t.Errorf("%s: describe err=%v, want ok=%v", url, err, ok)
		}
	}
}

// TestReplayBFramesPTS: a clip with B-frames is sent in decode order, each
// access unit stamped with its PTS; across loops every frame's PTS is
// exactly one frame after the previous shown frame, with no duplicates (the
// first GOP of a loop, whose DTS start below zero, included).
func TestReplayBFramesPTS(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	// 1 s loops; veryfast: 3 B-frames with pyramid, DTS two frames before PTS
	mp4 := makeClip(t, dir, "bf.mp4", "1", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-g", "25", "-pix_fmt", "yuv420p")
	ts, err := Prepare(context.Background(), mp4, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	c, desc := serveOne(t, ts)
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		t.Fatal("no H.264 in SDP")
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, []*description.Media{medi}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stamps []int64 // one per access unit from the first key frame, decode order
	var prev uint32
	var acc int64
	c.OnPacketRTP(medi, forma, func(p *rtp.Packet) {
		au, err := dec.Decode(p)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if len(stamps) == 0 {
			if !h264.IsRandomAccess(au) {
				return
			}
			prev = p.Timestamp
		}
		acc += int64(int32(p.Timestamp - prev))
		prev = p.Timestamp
		stamps = append(stamps, acc)
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond) // two loop wraps at least
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(stamps) < 50 {
		t.Fatalf("%d access units", len(stamps))
	}
	reordered := false
	for i := 1; i < len(stamps); i++ {
		reordered = reordered || stamps[i] < stamps[i-1]
	}
	if !reordered {
		t.Fatal("decode order equals display order: the clip has no B-frames")
	}
	shown := slices.Clone(stamps)
	slices.Sort(shown)
	// the last few units decoded may miss B-frames shown before them
	for i := 1; i < len(shown)-4; i++ {
		if d := shown[i] - shown[i-1]; d != 90000/25 {
			t.Fatalf("shown frame %d is %d ticks after the previous, want 3600 (PTS in decode order: %v)", i, d, stamps)
		}
	}
}

// An H.265 recording is served as H.265, not transcoded: cameras send it,
// and the gateway's H.265 paths are tested against this server.
func TestReplayH265(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	mp4, err := encodeClip(dir, "hevc.mp4", "1", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error")
	if err != nil {
		t.Skipf("ffmpeg cannot encode H.265 here: %v", err)
	}
	ts, err := Prepare(context.Background(), mp4, dir, true)
	if err != nil {
		t.Fatalf("H.265 with transcoding off: %v", err)
	}
	if codec, err := Probe(context.Background(), ts); err != nil || codec != "hevc" {
		t.Fatalf("prepared stream is %q (%v), want hevc copied", codec, err)
	}
	c, desc := serveOne(t, ts)
	var forma *format.H265
	medi := desc.FindFormat(&forma)
	if medi == nil || forma.VPS == nil || forma.SPS == nil || forma.PPS == nil {
		t.Fatalf("no H.265 with VPS, SPS and PPS in the SDP: %+v", desc.Medias)
	}
	if err := c.SetupAll(desc.BaseURL, []*description.Media{medi}); err != nil {
		t.Fatal(err)
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	aus := make(chan [][]byte, 100)
	c.OnPacketRTP(medi, forma, func(p *rtp.Packet) {
		if au, err := dec.Decode(p); err == nil {
			select {
			case aus <- au:
			default:
			}
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	// 40 units: past the one-second file's end, so across a loop
	for n := 0; n < 40; n++ {
		select {
		case au := <-aus:
			if len(au) == 0 || h265.NALUType((au[0][0]>>1)&0x3f) > h265.NALUType_SUFFIX_SEI_NUT {
				t.Fatalf("unit %d is not H.265: %x", n, au)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d access units in 10 s", n)
		}
	}
}

// serveOne serves ts and returns a client that has described it; both end
// with the test.
func serveOne(t *testing.T, ts string) (*gortsplib.Client, *description.Session) {
	t.Helper()
	s := &Server{Addr: "127.0.0.1:0", Streams: []Stream{{"s", ts}}}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	u, _ := base.ParseURL("rtsp://" + s.ListenAddr() + "/s")
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	return c, desc
}

// Streams loop over the file's units from memory: the same units, in the
// same order, as demuxing it, and shared by the streams of one file. A
// file past the cache budget is demuxed on every loop, as before.
func TestUnitsFromMemoryMatchTheFile(t *testing.T) {
	needFFmpeg(t)
	ts, err := Prepare(context.Background(), makeClip(t, t.TempDir(), "a.mp4", "1"), t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	collect := func(into *[]unit) func(unit) error {
		return func(u unit) error {
			c := unit{pts: u.pts, dts: u.dts}
			for _, n := range u.au {
				c.au = append(c.au, slices.Clone(n))
			}
			*into = append(*into, c)
			return nil
		}
	}
	var disk []unit
	if err := readUnits(ts, collect(&disk)); err != nil || len(disk) < 20 {
		t.Fatalf("demuxing %s: %d units, %v", ts, len(disk), err)
	}
	same := func(what string, got []unit) {
		t.Helper()
		if len(got) != len(disk) {
			t.Fatalf("%s: %d units, the file has %d", what, len(got), len(disk))
		}
		for i := range got {
			if got[i].pts != disk[i].pts || got[i].dts != disk[i].dts || !slices.EqualFunc(got[i].au, disk[i].au, slices.Equal) {
				t.Fatalf("%s: unit %d differs from the file's", what, i)
			}
		}
	}

	s := &Server{}
	for loop := range 2 {
		var mem []unit
		if err := s.units(ts, collect(&mem)); err != nil {
			t.Fatal(err)
		}
		same(fmt.Sprintf("loop %d", loop), mem)
	}
	if s.cache[ts].units == nil || s.cached <= 0 {
		t.Fatal("the file was not kept in memory")
	}

	full := &Server{cached: cacheBudget}
	var again []unit
	if err := full.units(ts, collect(&again)); err != nil {
		t.Fatal(err)
	}
	same("past the budget", again)
	if full.cache[ts].units != nil {
		t.Fatal("a file past the budget was kept in memory")
	}
}
