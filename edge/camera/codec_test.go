package camera

import (
	"os/exec"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// TestParseSPS: size and reordering read from real encoder output, H.264
// and H.265, with and without B-frames (key frames only needs no reordering).
func TestParseSPS(t *testing.T) {
	needX265(t)
	for _, c := range []struct {
		name      string
		hevc      bool
		enc       []string
		noReorder bool
	}{
		{"h264 baseline", false, []string{"-c:v", "libx264", "-bf", "0", "-f", "h264"}, true},
		{"h264 b-frames", false, []string{"-c:v", "libx264", "-bf", "2", "-f", "h264"}, false},
		{"h265 no b-frames", true, []string{"-c:v", "libx265", "-x265-params", "bframes=0:log-level=error", "-f", "hevc"}, true},
		{"h265 b-frames", true, []string{"-c:v", "libx265", "-x265-params", "bframes=3:log-level=error", "-f", "hevc"}, false},
	} {
		args := append([]string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-frames:v", "10"}, c.enc...)
		out, err := exec.Command("ffmpeg", append(args, "-")...).Output()
		if err != nil {
			t.Fatalf("%s: ffmpeg: %v", c.name, err)
		}
		var nalus h264.AnnexB // the start codes are the same in H.265
		if err := nalus.Unmarshal(out); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var p ParamSets
		p.Update(nalus, c.hevc)
		s, err := parseSPS(p.SPS, c.hevc)
		if err != nil || s.w != 320 || s.h != 180 || s.fps != 25 || s.noReorder != c.noReorder {
			t.Errorf("%s: %+v, %v; want 320x180 at 25 fps, noReorder %v", c.name, s, err, c.noReorder)
		}
	}
	if _, err := parseSPS([]byte{0x67, 0xff}, false); err == nil {
		t.Error("a truncated SPS parsed")
	}
}

// TestFindTrack: H.264 is taken before H.265, and a stream with neither
// says so.
func TestFindTrack(t *testing.T) {
	avc := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	hevc := &format.H265{PayloadTyp: 97}
	both := &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{hevc}},
		{Type: description.MediaTypeVideo, Formats: []format.Format{avc}},
	}}
	if tr, err := findTrack(both); err != nil || tr.hevc || tr.forma != avc {
		t.Errorf("H.264 and H.265: %+v, %v; want the H.264 track", tr, err)
	}
	only := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{hevc}}}}
	if tr, err := findTrack(only); err != nil || !tr.hevc {
		t.Errorf("H.265 only: %+v, %v", tr, err)
	}
	audio := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}}}}}
	if _, err := findTrack(audio); err == nil || err.Error() != "stream has no H.264 or H.265 video" {
		t.Errorf("audio only: %v", err)
	}
}
