package camera

import (
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// track is a session's video, H.264 or H.265: cameras send either, and
// detection, the ring and live view take both.
type track struct {
	hevc   bool
	medi   *description.Media
	forma  format.Format
	sdp    ParamSets // as the SDP gave them; a camera may send them nowhere else
	decode func(*rtp.Packet) ([][]byte, error)
}

// findTrack picks the H.264 video of desc, else its H.265 video: a camera
// offering both is read as H.264, which every browser plays over WebRTC.
func findTrack(desc *description.Session) (*track, error) {
	var avc *format.H264
	if m := desc.FindFormat(&avc); m != nil {
		d, err := avc.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("rtp decoder: %w", err)
		}
		return &track{medi: m, forma: avc, sdp: ParamSets{SPS: avc.SPS, PPS: avc.PPS}, decode: d.Decode}, nil
	}
	var hevc *format.H265
	if m := desc.FindFormat(&hevc); m != nil {
		d, err := hevc.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("rtp decoder: %w", err)
		}
		return &track{hevc: true, medi: m, forma: hevc, sdp: ParamSets{VPS: hevc.VPS, SPS: hevc.SPS, PPS: hevc.PPS}, decode: d.Decode}, nil
	}
	return nil, errors.New("stream has no H.264 or H.265 video")
}

// partialUnit: the packet was part of an access unit, or the tail of one
// whose start was lost; neither is an error worth counting.
func partialUnit(err error) bool {
	return errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) ||
		errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious)
}

func randomAccess(au [][]byte, hevc bool) bool {
	if hevc {
		return h265.IsRandomAccess(au)
	}
	return h264.IsRandomAccess(au)
}

func codecOf(hevc bool) int32 {
	if hevc {
		return codecH265
	}
	return codecH264
}

// spsInfo is what the decoder needs from a sequence parameter set.
type spsInfo struct {
	w, h      int
	fps       float64 // 0 when the SPS does not say
	noReorder bool    // frames come out in decode order
}

func parseSPS(b []byte, hevc bool) (spsInfo, error) {
	if hevc {
		var s h265.SPS
		if err := s.Unmarshal(b); err != nil {
			return spsInfo{}, err
		}
		// the highest sub-layer's value is always coded and bounds the others
		r := s.MaxNumReorderPics
		return spsInfo{w: s.Width(), h: s.Height(), fps: s.FPS(), noReorder: len(r) > 0 && r[len(r)-1] == 0}, nil
	}
	var s h264.SPS
	if err := s.Unmarshal(b); err != nil {
		return spsInfo{}, err
	}
	no := s.PicOrderCntType == 2 ||
		s.VUI != nil && s.VUI.BitstreamRestriction != nil && s.VUI.BitstreamRestriction.MaxNumReorderFrames == 0
	return spsInfo{w: s.Width(), h: s.Height(), fps: s.FPS(), noReorder: no}, nil
}
