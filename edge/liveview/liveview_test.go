package liveview_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/camera/cameratest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/liveview"
	"github.com/smartcommunity/warden/edge/replay/rtsp"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

const guardTok = "guard-token-0123456789"

// A guard's browser (pion here) offers to receive video; the camera's own
// RTSP session, replayed over loopback, reaches it as H.264 RTP with
// parameter sets, through the real API and its auth. The cap holds, and
// ending the session frees the camera.
func TestWHEPPlaysTheCamera(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "src.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", mp4).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	ts, err := rtsp.Prepare(context.Background(), mp4, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	streams := []rtsp.Stream{{Name: "a", TS: ts}}
	// a camera that sends H.265 only: one session feeds detection and live view
	if hevc := filepath.Join(dir, "hevc.ts"); cameratest.H265(t, mp4, hevc) {
		streams = append(streams, rtsp.Stream{Name: "h", TS: hevc})
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	srv := &rtsp.Server{Addr: addr, Streams: streams}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	st := storetest.Open(t, store.Options{})
	cam := camera.New(config.Camera{ID: "gate", URL: "rtsp://" + addr + "/a", Detect: config.Detect{FPS: 5}},
		camera.Deps{Gateway: "gw", Site: "s", Sink: st, Media: st, StallTimeout: 3 * time.Second, MaxBackoff: time.Second,
			Log: slog.New(slog.DiscardHandler)})
	cams := camera.Set{cam}
	if len(streams) > 1 {
		cams = append(cams, camera.New(config.Camera{ID: "east", URL: "rtsp://" + addr + "/h"},
			camera.Deps{Gateway: "gw", Site: "s", Sink: st, Media: st, MaxBackoff: time.Second, Log: slog.New(slog.DiscardHandler)}),
			camera.New(config.Camera{ID: "north", URL: "rtsp://" + addr + "/h", Detect: config.Detect{URL: "rtsp://" + addr + "/a", FPS: 5}},
				camera.Deps{Gateway: "gw", Site: "s", Sink: st, Media: st, MaxBackoff: time.Second, Log: slog.New(slog.DiscardHandler)}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, c := range cams {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
	}

	reg := prometheus.NewRegistry()
	lv, err := liveview.New(liveview.Options{Cameras: cams, MaxViewers: 1, Registerer: reg, HLSIdle: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = lv.Run(ctx) }()
	a := api.New(api.Options{Tokens: []config.Token{{Name: "guard", Token: guardTok, Role: "guard"}}, Gatherer: reg, Registerer: reg})
	a.Mount(api.Handlers{Live: lv.HTTP()})
	hs := httptest.NewServer(a.Handler())
	defer hs.Close()

	// Video must flow before a viewer can join.
	testenv.Until(t, 30*time.Second, "camera online", func() bool { return cam.Status().State == camera.Online })

	loc, packets, params := playWHEP(t, hs.URL, "gate")
	if !strings.HasPrefix(loc, "/api/v1/cameras/gate/whep/") {
		t.Fatalf("Location %q", loc)
	}
	testenv.Until(t, 30*time.Second, "100 RTP packets with parameter sets", func() bool {
		return packets.Load() >= 100 && params.Load() > 0
	})
	if n := testenv.MetricValue(t, reg, "warden_live_viewers", map[string]string{"camera": "gate"}); n != 1 || cam.Viewers() != 1 {
		t.Errorf("viewers: gauge %v, camera %d; want 1", n, cam.Viewers())
	}

	// The cap (live.max_viewers: 1) refuses a second viewer; a bad offer
	// and an unknown camera are refused too; none needs a token to fail.
	pc2, offer2 := newViewer(t)
	defer pc2.Close()
	for _, c := range []struct {
		path, ctype, body, tok string
		code                   int
	}{
		{"/api/v1/cameras/gate/whep", "application/sdp", offer2, guardTok, http.StatusTooManyRequests},
		{"/api/v1/cameras/gate/whep", "application/json", offer2, guardTok, http.StatusUnsupportedMediaType},
		{"/api/v1/cameras/nope/whep", "application/sdp", offer2, guardTok, http.StatusNotFound},
		{"/api/v1/cameras/gate/whep", "application/sdp", offer2, "", http.StatusUnauthorized},
	} {
		r := post(t, hs.URL+c.path, c.ctype, c.body, c.tok)
		r.Body.Close()
		if r.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.path, c.ctype, r.StatusCode, c.code)
		}
	}

	// Closing the tab: the viewer's DELETE ends the session and frees the camera.
	if code := del(t, hs.URL+loc, guardTok); code != http.StatusNoContent {
		t.Errorf("DELETE: %d", code)
	}
	testenv.Until(t, 10*time.Second, "no viewer left", func() bool { return cam.Viewers() == 0 })

	// The LL-HLS fallback plays the same session to an HLS player, behind
	// the same auth; it ends HLSIdle after the last request.
	if codec := playHLS(t, hs.URL+"/api/v1/cameras/gate/live/index.m3u8"); codec != "*codecs.H264" {
		t.Errorf("HLS track codec %s, want H.264", codec)
	}
	if r := get(t, hs.URL+"/api/v1/cameras/gate/live/index.m3u8", ""); r != http.StatusUnauthorized {
		t.Errorf("HLS without a token: %d, want 401", r)
	}
	testenv.Until(t, 15*time.Second, "HLS stream ended after the last request", func() bool { return cam.Viewers() == 0 })

	// An H.265 camera: analysed from the same session; WebRTC refuses it
	// and names the LL-HLS URL, which plays it as H.265.
	if len(cams) < 2 {
		return
	}
	testenv.Until(t, 30*time.Second, "the H.265 camera's stream flows and is analysed", func() bool {
		st := cams.Status()[1]
		return st.Codec == "h265" && st.State == "online" && !st.LastSeen.IsZero()
	})
	pcH, offerH := newViewer(t)
	defer pcH.Close()
	resp := post(t, hs.URL+"/api/v1/cameras/east/whep", "application/sdp", offerH, guardTok)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "/api/v1/cameras/east/live/index.m3u8") {
		t.Errorf("WHEP for an H.265 camera: %d %s, want 503 naming the LL-HLS URL", resp.StatusCode, body)
	}
	if codec := playHLS(t, hs.URL+"/api/v1/cameras/east/live/index.m3u8"); codec != "*codecs.H265" {
		t.Errorf("HLS track codec of the H.265 camera %s, want H.265", codec)
	}

	// An H.265 main stream with an H.264 sub-stream for detection: WebRTC
	// plays the sub-stream, LL-HLS the main stream, and the cap counts both.
	testenv.Until(t, 30*time.Second, "the camera's main and sub-stream flow", func() bool {
		st := cams.Status()[2]
		return st.Codec == "h265" && st.SubCodec == "h264" && st.State == "online"
	})
	locN, packetsN, paramsN := playWHEP(t, hs.URL, "north")
	testenv.Until(t, 30*time.Second, "100 H.264 RTP packets of the sub-stream", func() bool {
		return packetsN.Load() >= 100 && paramsN.Load() > 0
	})
	if r := get(t, hs.URL+"/api/v1/cameras/north/live/index.m3u8", guardTok); r != http.StatusTooManyRequests {
		t.Errorf("HLS of a camera at its cap (a WebRTC viewer of its sub-stream): %d, want 429", r)
	}
	// without WebRTC, a browser that cannot decode H.265 asks LL-HLS for
	// the camera's H.264 stream: the sub-stream
	if code := del(t, hs.URL+locN, guardTok); code != http.StatusNoContent {
		t.Errorf("DELETE of the sub-stream session: %d", code)
	}
	testenv.Until(t, 10*time.Second, "north has no viewer", func() bool { return cams[2].Viewers() == 0 })
	if codec := playHLS(t, hs.URL+"/api/v1/cameras/north/live/h264/index.m3u8"); codec != "*codecs.H264" {
		t.Errorf("HLS of the H.264 stream of an H.265 camera: track codec %s, want H.264", codec)
	}
}

// playWHEP plays camera id over WebRTC as the guard: the session's
// Location, the RTP packets that arrive and those with parameter sets.
func playWHEP(t *testing.T, base, id string) (loc string, packets, params *atomic.Int64) {
	t.Helper()
	pc, offer := newViewer(t)
	t.Cleanup(func() { pc.Close() })
	packets, params = new(atomic.Int64), new(atomic.Int64)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			packets.Add(1)
			if len(p.Payload) > 0 {
				switch p.Payload[0] & 0x1f {
				case 7, 24: // SPS, or a STAP-A (which pion uses for SPS+PPS)
					params.Add(1)
				}
			}
		}
	})
	resp := post(t, base+"/api/v1/cameras/"+id+"/whep", "application/sdp", offer, guardTok)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "application/sdp" {
		t.Fatalf("offer for %s: %d %s", id, resp.StatusCode, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("Location"), packets, params
}

// playHLS reads 50 access units of url with gohlslib's client as the
// guard, and returns the track's codec type.
func playHLS(t *testing.T, url string) string {
	t.Helper()
	var aus atomic.Int64
	var codec atomic.Value
	quiet := func(string) {}
	cl := &gohlslib.Client{URI: url,
		HTTPClient:                &http.Client{Transport: bearer(guardTok)},
		OnDownloadPrimaryPlaylist: quiet, OnDownloadStreamPlaylist: quiet, OnDownloadSegment: quiet, OnDownloadPart: quiet}
	cl.OnTracks = func(tracks []*gohlslib.Track) error {
		codec.Store(fmt.Sprintf("%T", tracks[0].Codec))
		cl.OnDataH26x(tracks[0], func(_ int64, _ int64, _ [][]byte) { aus.Add(1) })
		return nil
	}
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	testenv.Until(t, 30*time.Second, "50 access units over LL-HLS from "+url, func() bool { return aus.Load() >= 50 })
	c, _ := codec.Load().(string)
	return c
}

type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

func get(t *testing.T, url, tok string) int { t.Helper(); return do(t, http.MethodGet, url, tok) }

// del ends a WHEP session, as a closed tab does.
func del(t *testing.T, url, tok string) int { t.Helper(); return do(t, http.MethodDelete, url, tok) }

func do(t *testing.T, method, url, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}

// newViewer is a receive-only peer with its complete offer.
func newViewer(t *testing.T) (*webrtc.PeerConnection, string) {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc, pc.LocalDescription().SDP
}

func post(t *testing.T, url, ctype, body, tok string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
