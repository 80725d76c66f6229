package camera

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/replay/rtsp"

	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

// stallServer plays the first n access units of a TS file, then the first
// RTP packet of the next one (a frame cut in the middle), then nothing while
// keeping the connection open.
type stallServer struct {
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
}

func (s *stallServer) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, s.stream, nil
}
func (s *stallServer) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, s.stream, nil
}
func (s *stallServer) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func readAUs(t *testing.T, path string) [][][]byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	var aus [][][]byte
	for _, tr := range r.Tracks() {
		if _, ok := tr.Codec.(*tscodecs.H264); ok {
			r.OnDataH264(tr, func(_, _ int64, au [][]byte) error { aus = append(aus, au); return nil })
		}
	}
	for {
		if err := r.Read(); err != nil {
			break
		}
	}
	return aus
}

func TestStreamStopsMidFrame(t *testing.T) {
	needFFmpeg(t)
	aus := readAUs(t, testStream(t, 2))
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	for _, n := range aus[0] {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			forma.SPS = n
		case h264.NALUTypePPS:
			forma.PPS = n
		}
	}
	s := &stallServer{}
	s.srv = &gortsplib.Server{Handler: s, RTSPAddress: "127.0.0.1:0"}
	if err := s.srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.srv.Close()
	s.stream = &gortsplib.ServerStream{Server: s.srv, Desc: &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}}
	if err := s.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer s.stream.Close()

	rec := &recorder{st: storetest.Open(t, store.Options{})}
	cam := New(config.Camera{ID: "cut", URL: "rtsp://" + s.srv.NetListener().Addr().String() + "/x"},
		Deps{Gateway: "gw", Site: "s", Sink: rec, OfflineGrace: time.Second, StallTimeout: 2 * time.Second, MaxBackoff: time.Second})
	runCamera(t, cam)

	// play 30 units (about a second) after the client is in
	enc, err := forma.CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	for i, au := range aus[:31] {
		pkts, err := enc.Encode(au)
		if err != nil {
			t.Fatal(err)
		}
		if i == 30 {
			pkts = pkts[:1] // cut in the middle of a frame
		}
		for _, p := range pkts {
			p.Timestamp = uint32(i * 3600)
			if err := s.stream.WritePacketRTP(s.stream.Desc.Medias[0], p); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
		}
		time.Sleep(40 * time.Millisecond)
	}
	testenv.Until(t, 20*time.Second, "stall → offline", func() bool {
		evs := rec.find(event.CameraOffline, "cut")
		return len(evs) > 0 && strings.Contains(evs[len(evs)-1].Data["reason"].(string), "stalled")
	})
}

// udpPorts finds a free even/odd UDP port pair on loopback.
func udpPorts(t *testing.T) (string, string) {
	for p := 20000 + 2*(os.Getpid()%5000); p < 65000; p += 2 {
		a, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		b, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return fmt.Sprintf("127.0.0.1:%d", p), fmt.Sprintf("127.0.0.1:%d", p+1)
	}
	t.Skip("no free UDP port pair")
	return "", ""
}

func TestUDPTransport(t *testing.T) {
	needFFmpeg(t)
	rtpA, rtcpA := udpPorts(t)
	srv := &rtsp.Server{Addr: "127.0.0.1:0", Streams: []rtsp.Stream{{Name: "a", TS: testStream(t, 2)}},
		UDPRTPAddress: rtpA, UDPRTCPAddress: rtcpA}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cam := New(config.Camera{ID: "udp", URL: "rtsp://" + srv.ListenAddr() + "/a?transport=udp"}, Deps{})
	runCamera(t, cam)
	testenv.Until(t, 20*time.Second, "frames over UDP", func() bool { return !cam.Status().LastFrame.IsZero() })
	if _, _, err := dialURL("rtsp://h/a?transport=sctp"); err == nil {
		t.Error("transport=sctp accepted")
	}
}
