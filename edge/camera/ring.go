package camera

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// unit is one encoded access unit of the record input, kept in decode
// order. Only the PTS (the RTP timestamp) is known; the DTS the MP4 needs is
// derived from the PTS of the whole clip when it is muxed (see clipDTS).
type unit struct {
	wall time.Time
	pts  int64 // 90 kHz
	au   [][]byte
	idr  bool
	size int
}

// ring keeps the recent access units of the record input, starting at a key
// frame, so a clip can begin before the event that asked for it.
type ring struct {
	mu       sync.Mutex
	keep     time.Duration
	maxBytes int
	bytes    int
	units    []unit
	hevc     bool // units are H.265
	params   ParamSets
}

// setCodec switches between H.264 and H.265, dropping what was kept.
func (r *ring) setCodec(hevc bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hevc != hevc {
		r.hevc, r.units, r.bytes, r.params = hevc, nil, 0, ParamSets{}
	}
}

func newRing(keep time.Duration, maxBytes int) *ring { return &ring{keep: keep, maxBytes: maxBytes} }

func (r *ring) push(u unit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.params.Update(u.au, r.hevc)
	if len(r.units) == 0 && !u.idr {
		return // a clip must start at a key frame
	}
	r.units = append(r.units, u)
	r.bytes += u.size
	// drop whole GOPs from the front while the second key frame is older
	// than keep (or the ring is over its byte cap)
	for {
		next := -1
		for i := 1; i < len(r.units); i++ {
			if r.units[i].idr {
				next = i
				break
			}
		}
		if next < 0 || (u.wall.Sub(r.units[next].wall) < r.keep && r.bytes <= r.maxBytes) {
			return
		}
		for _, d := range r.units[:next] {
			r.bytes -= d.size
		}
		r.units = append(r.units[:0:0], r.units[next:]...)
	}
}

// newest is the wall time of the last unit (zero when empty).
func (r *ring) newest() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.units) == 0 {
		return time.Time{}
	}
	return r.units[len(r.units)-1].wall
}

// slice copies the units from the key frame nearest to from (so the clip
// length is off by at most half a GOP) up to to, ending where no later unit
// is shown earlier: with B-frames a reference frame comes before the frames
// shown ahead of it, and cutting between them would leave a jump at the end.
func (r *ring) slice(from, to time.Time) ([]unit, codecs.Codec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	before, after := -1, -1
	for i, u := range r.units {
		if !u.idr {
			continue
		}
		if !u.wall.After(from) {
			before = i
		} else {
			after = i
			break
		}
	}
	start := before
	if start < 0 || (after >= 0 && r.units[after].wall.Sub(from) < from.Sub(r.units[before].wall) && r.units[after].wall.Before(to)) {
		start = after
	}
	if start < 0 {
		return nil, nil
	}
	all := r.units[start:]
	end := len(all)
	for i, u := range all {
		if u.wall.After(to) {
			end = i
			break
		}
	}
	end = cleanEnd(all, end)
	out := append([]unit(nil), all[:end]...)
	p := r.params
	switch {
	case !p.complete(r.hevc):
		return out, nil
	case r.hevc:
		return out, &codecs.H265{VPS: p.VPS, SPS: p.SPS, PPS: p.PPS}
	}
	return out, &codecs.H264{SPS: p.SPS, PPS: p.PPS}
}

// cleanEnd moves end back until every unit from end on (as far as the ring
// holds them) is shown after every unit before it.
func cleanEnd(units []unit, end int) int {
	suffixMin := make([]int64, len(units)+1) // suffixMin[i]: smallest PTS of units[i:]
	suffixMin[len(units)] = math.MaxInt64
	for i := len(units) - 1; i >= 0; i-- {
		suffixMin[i] = min(suffixMin[i+1], units[i].pts)
	}
	prefixMax := int64(math.MinInt64) // largest PTS of units[:i]
	clean := 0
	for i := 1; i <= end; i++ {
		prefixMax = max(prefixMax, units[i-1].pts)
		if prefixMax < suffixMin[i] {
			clean = i
		}
	}
	if clean < 2 {
		return end // no clean cut: keep what the window holds
	}
	return clean
}

// clipDTS derives decode timestamps from the PTS of units in decode order.
// The frames shown, in order, are the sorted PTS; the i-th unit decoded gets
// the i-th of them, moved back by the largest reorder delay so that no DTS
// is after its PTS. This is exact for a clip that starts at a key frame and
// ends cleanly, needs neither the SPS nor a warm-up GOP, and cannot fail
// (unlike guessing DTS unit by unit while the stream arrives).
func clipDTS(units []unit) (dts []int64, delay int64) {
	sorted := make([]int64, len(units))
	for i, u := range units {
		sorted[i] = u.pts
	}
	slices.Sort(sorted)
	for i, u := range units {
		delay = max(delay, sorted[i]-u.pts)
	}
	dts = make([]int64, len(units))
	for i := range units {
		dts[i] = sorted[i] - delay
		if i > 0 && dts[i] <= dts[i-1] {
			dts[i] = dts[i-1] + 1 // two units with one PTS (a broken camera)
		}
	}
	return dts, delay
}

var errEmptyClip = errors.New("no recorded video for the clip window")

// writeMP4 muxes units into a progressive MP4 without re-encoding.
func writeMP4(units []unit, codec codecs.Codec) ([]byte, error) {
	if len(units) < 2 || codec == nil {
		return nil, errEmptyClip
	}
	samples := make([]*pmp4.Sample, 0, len(units))
	dts, delay := clipDTS(units)
	for i, u := range units {
		avcc, err := h264.AVCC(u.au).Marshal()
		if err != nil {
			return nil, fmt.Errorf("clip: avcc: %w", err)
		}
		var dur int64
		if i+1 < len(units) {
			dur = dts[i+1] - dts[i]
		} else {
			dur = dts[i] - dts[i-1]
		}
		if dur <= 0 || dur > 90000*10 {
			dur = 90000 / 25
		}
		samples = append(samples, &pmp4.Sample{
			Duration: uint32(dur), PTSOffset: int32(u.pts - dts[i]), IsNonSyncSample: !u.idr,
			PayloadSize: uint32(len(avcc)), GetPayload: func() ([]byte, error) { return avcc, nil },
		})
	}
	// the first frame is shown delay after the first decode; the edit list
	// starts the presentation there (pmp4 reports the track delay shorter)
	p := pmp4.Presentation{Tracks: []*pmp4.Track{{ID: 1, TimeScale: 90000, TimeOffset: -int32(delay), Codec: codec, Samples: samples}}}
	var buf seekBuffer
	if err := p.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("clip: mp4: %w", err)
	}
	return buf.Bytes(), nil
}

// seekBuffer is an in-memory io.WriteSeeker for the MP4 muxer.
type seekBuffer struct {
	b   []byte
	pos int
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if need := s.pos + len(p); need > len(s.b) {
		s.b = append(s.b, make([]byte, need-len(s.b))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += len(p)
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case 0:
		s.pos = int(off)
	case 1:
		s.pos += int(off)
	case 2:
		s.pos = len(s.b) + int(off)
	}
	if s.pos < 0 {
		return 0, errors.New("seek before start")
	}
	return int64(s.pos), nil
}

func (s *seekBuffer) Bytes() []byte { return bytes.Clone(s.b) }
