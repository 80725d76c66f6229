// Command throwsim writes facade clips with thrown objects and distractors,
// plus ground truth, for the throw detector:
//
//	go run ./testdata/gen/throwsim -out DIR -seed N -n K [flags]
//
// See docs/throw.md for the physics and the ground-truth fields.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/smartcommunity/warden/edge/vision/throw/throwsim"
)

func main() {
	o := throwsim.DefaultOptions()
	out := flag.String("out", "", "output directory (required)")
	seed := flag.Uint64("seed", 1, "random seed")
	n := flag.Int("n", 10, "number of clips")
	flag.IntVar(&o.W, "w", o.W, "width")
	flag.IntVar(&o.H, "h", o.H, "height")
	flag.Float64Var(&o.FPS, "fps", o.FPS, "frames per second")
	flag.Float64Var(&o.Seconds, "seconds", o.Seconds, "clip length")
	crf := flag.String("crf", "20-30", "x264 crf range")
	noise := flag.String("noise", "1-5", "sensor noise σ range (grey levels)")
	size := flag.String("size", "3-20", "object diameter range (px)")
	floors := flag.String("floors", "8-20", "floors of the synthetic facade")
	flag.Float64Var(&o.NegFrac, "neg", o.NegFrac, "share of distractor-only clips")
	flag.BoolVar(&o.Perspective, "perspective", false, "film the facade from the ground looking up (the truth gives its image corners)")
	flag.BoolVar(&o.Night, "night", false, "infrared at night: grey, noisier, lit windows, headlights")
	flag.Float64Var(&o.HardRate, "hard", 0, "share of throw clips that also get a distractor overlapping the fall")
	hard := flag.String("hard-kinds", strings.Join(throwsim.HardDefault, ","), "distractor kinds that may overlap a fall (-hard)")
	bg := flag.String("bg", "", "backdrop: 'synthetic' (default), 'building' (frame 0 of building_orange_fall.avi, give its path with -bgfile)")
	bgFile := flag.String("bgfile", "", "path of building_orange_fall.avi (or another image/video) for -bg building")
	dists := flag.String("distractors", "", "comma-separated distractor kinds (default all: "+strings.Join(throwsim.DistractorKinds, ",")+")")
	flag.Parse()
	if *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if o.CRF[0], o.CRF[1], err = rangeInt(*crf); err == nil {
		if o.Size[0], o.Size[1], err = rangeInt(*size); err == nil {
			var a, b int
			a, b, err = rangeInt(*noise)
			o.Noise = [2]float64{float64(a), float64(b)}
			if err == nil {
				o.Floors[0], o.Floors[1], err = rangeInt(*floors)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "throwsim:", err)
		os.Exit(2)
	}
	if *dists != "" {
		o.Distractors = strings.Split(*dists, ",")
	}
	o.HardKinds = strings.Split(*hard, ",")
	for _, k := range append(append([]string(nil), o.Distractors...), o.HardKinds...) {
		if !slices.Contains(throwsim.DistractorKinds, k) {
			fmt.Fprintf(os.Stderr, "throwsim: unknown distractor %q (kinds: %s)\n", k, strings.Join(throwsim.DistractorKinds, ","))
			os.Exit(2)
		}
	}
	switch *bg {
	case "", "synthetic":
	case "building":
		if *bgFile == "" {
			*bgFile = "../shared/data/throw/building_orange_fall.avi"
		}
		o.Background = *bgFile
		f := throwsim.BuildingFacade()
		o.BgFacade = &f
	default:
		fmt.Fprintln(os.Stderr, "throwsim: -bg is synthetic or building")
		os.Exit(2)
	}
	ts, err := throwsim.Generate(*out, *seed, *n, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "throwsim:", err)
		os.Exit(1)
	}
	for _, t := range ts {
		kind := "negative"
		if len(t.Throws) > 0 {
			kind = fmt.Sprintf("throw floor %d size %d px", t.Throws[0].ReleaseFloor, t.Throws[0].SizePx)
		}
		var ds []string
		for _, d := range t.Distractors {
			ds = append(ds, d.Kind)
		}
		fmt.Printf("%s: %s; distractors [%s]; crf %d noise %.1f\n", t.Clip, kind, strings.Join(ds, ","), t.CRF, t.Noise)
	}
}

func rangeInt(s string) (int, int, error) {
	var a, b int
	if _, err := fmt.Sscanf(s, "%d-%d", &a, &b); err != nil {
		if _, err := fmt.Sscanf(s, "%d", &a); err != nil {
			return 0, 0, fmt.Errorf("%q is not N or A-B", s)
		}
		b = a
	}
	if b < a {
		return 0, 0, fmt.Errorf("%q: range reversed", s)
	}
	return a, b, nil
}
