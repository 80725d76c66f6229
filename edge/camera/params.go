package camera

import (
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// ParamSets are the newest parameter sets of a stream: SPS and PPS, and VPS
// for H.265. The decoder, the ring's clips and live view all need them.
type ParamSets struct {
	VPS, SPS, PPS []byte
}

// Update keeps the parameter sets au carries.
func (p *ParamSets) Update(au [][]byte, hevc bool) {
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if hevc {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				p.VPS = n
			case h265.NALUType_SPS_NUT:
				p.SPS = n
			case h265.NALUType_PPS_NUT:
				p.PPS = n
			}
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			p.SPS = n
		case h264.NALUTypePPS:
			p.PPS = n
		}
	}
}

// complete: every set the codec needs is known.
func (p ParamSets) complete(hevc bool) bool {
	return p.SPS != nil && p.PPS != nil && (!hevc || p.VPS != nil)
}

// Prefix puts the parameter sets in front of a key frame that lacks them
// (a camera may send them only in the SDP), so a viewer joining at it can
// decode.
func (p ParamSets) Prefix(au [][]byte, idr, hevc bool) [][]byte {
	if !idr || !p.complete(hevc) {
		return au
	}
	var in ParamSets
	in.Update(au, hevc)
	if hevc && in.VPS != nil || !hevc && in.SPS != nil {
		return au
	}
	if hevc {
		return append([][]byte{p.VPS, p.SPS, p.PPS}, au...)
	}
	return append([][]byte{p.SPS, p.PPS}, au...)
}
