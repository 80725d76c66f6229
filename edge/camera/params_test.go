package camera

import (
	"slices"
	"testing"
)

// Parameter sets go in front of a key frame only when it lacks them and
// all are known, for H.264 and H.265.
func TestParamSetsPrefix(t *testing.T) {
	sps, pps, idr, slice := []byte{0x67, 1}, []byte{0x68, 2}, []byte{0x65, 3}, []byte{0x41, 4}
	var p ParamSets
	p.Update([][]byte{sps, pps, idr}, false)
	if !slices.Equal(p.SPS, sps) || !slices.Equal(p.PPS, pps) {
		t.Fatalf("H.264 sets %+v", p)
	}
	if got := p.Prefix([][]byte{idr}, true, false); len(got) != 3 || !slices.Equal(got[0], sps) || !slices.Equal(got[1], pps) {
		t.Errorf("bare key frame: %v", got)
	}
	for _, au := range [][][]byte{{sps, pps, idr}} {
		if got := p.Prefix(au, true, false); len(got) != 3 {
			t.Errorf("key frame with its sets got more: %v", got)
		}
	}
	if got := p.Prefix([][]byte{slice}, false, false); len(got) != 1 {
		t.Errorf("a non-key frame was prefixed: %v", got)
	}
	if got := (ParamSets{SPS: sps}).Prefix([][]byte{idr}, true, false); len(got) != 1 {
		t.Errorf("prefixed with no PPS known: %v", got)
	}

	vps, hsps, hpps, irap := []byte{32 << 1, 0}, []byte{33 << 1, 0}, []byte{34 << 1, 0}, []byte{19 << 1, 0}
	var h ParamSets
	h.Update([][]byte{vps, hsps, hpps, irap}, true)
	if got := h.Prefix([][]byte{irap}, true, true); len(got) != 4 || !slices.Equal(got[0], vps) {
		t.Errorf("H.265 bare key frame: %v", got)
	}
	if got := (ParamSets{SPS: hsps, PPS: hpps}).Prefix([][]byte{irap}, true, true); len(got) != 1 {
		t.Errorf("H.265 prefixed with no VPS known: %v", got)
	}
}
