package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/smartcommunity/warden/edge/vision/face"
	"github.com/smartcommunity/warden/edge/vision/face/cv"
)

// runEval dispatches `warden eval KIND` to evalCommands.
func runEval(ctx context.Context, args []string) int {
	if len(args) == 0 || evalCommands[args[0]].run == nil {
		names := make([]string, 0, len(evalCommands))
		for n := range evalCommands {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintln(os.Stderr, "usage: warden eval KIND [flags]\n\nkinds:")
		for _, n := range names {
			fmt.Fprintf(os.Stderr, "  %-11s %s\n", n, evalCommands[n].summary)
		}
		return 2
	}
	return evalCommands[args[0]].run(ctx, args[1:])
}

func runEvalFace(_ context.Context, args []string) int {
	fs := flag.NewFlagSet("eval face", flag.ContinueOnError)
	det := fs.String("detector-model", "", "YuNet ONNX (empty: Haar cascade)")
	rec := fs.String("recognizer-model", "", "embedding ONNX (empty: LBPH)")
	cascade := fs.String("cascade", face.Defaults().Cascade, "fallback cascade when no --detector-model")
	recIn := fs.String("recognizer-input", "sface", "sface or arcface (how crops are normalised)")
	dir := fs.String("dir", "", "folder of person folders")
	k := fs.Int("k", 5, "images enrolled per person (with --dir)")
	enrolDir := fs.String("enroll-dir", "", "images PERSON_*.jpg to enrol (instead of --dir)")
	testDir := fs.String("test-dir", "", "images PERSON_*.jpg to test (with --enroll-dir)")
	strangers := fs.Bool("strangers", false, "hold every second person out as a non-enrolled stranger")
	thr := fs.Float64("threshold", face.DefaultThreshold, "cosine threshold reported first")
	minFace := fs.Int("min-face-px", 0, "override min_face_px (0: default)")
	threads := fs.Int("threads", 1, "OpenCV threads (1: one core)")
	sweep := fs.String("sweep", "0.20,0.25,0.30,0.35,0.40,0.45,0.50,0.55,0.60", "thresholds to sweep")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*dir == "") == (*enrolDir == "" || *testDir == "") {
		fmt.Fprintln(os.Stderr, "usage: warden eval face [--detector-model F] [--recognizer-model F] (--dir DIR [--k N] | --enroll-dir DIR --test-dir DIR) [--strangers]")
		return 2
	}
	cv.SetNumThreads(*threads)
	o := face.Defaults()
	o.DetectorModel, o.RecognizerModel, o.RecognizerInput, o.Threshold = *det, *rec, *recIn, *thr
	o.Cascade = *cascade
	if *minFace > 0 {
		o.MinFacePx = *minFace
	}
	var ths []float64
	for _, s := range strings.Split(*sweep, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "warden eval face: --sweep %q: %v\n", s, err)
			return 2
		}
		ths = append(ths, v)
	}
	e, err := face.NewEngine(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden eval face:", err)
		return 1
	}
	defer e.Close()
	r, err := face.Evaluate(e, o, face.EvalOptions{Dir: *dir, K: *k, EnrollDir: *enrolDir, TestDir: *testDir, Strangers: *strangers, Thresholds: ths})
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden eval face:", err)
		return 1
	}
	fmt.Printf("model %s\npersons %d (enrolled %d, strangers %d), enrolment images %d (failed %d)\n",
		e.Model(), r.Persons, r.Enrolled, r.Strangers, len(r.EnrolImages), len(r.EnrolFailed))
	for _, f := range r.EnrolFailed {
		fmt.Printf("  enrol failed: %s\n", f)
	}
	fmt.Printf("probes %d enrolled + %d stranger, no face found %d\n", r.Probes, r.StrangerProbes, r.NoFace)
	fmt.Printf("threshold %.2f: identification %.1f%%, false accepts %.1f%%\n", r.Threshold, 100*r.Accuracy, 100*r.FAR)
	fmt.Printf("time per face (detect+align+embed, %d thread): %.1f ms over %d faces\n", *threads, float64(r.PerFace.Microseconds())/1000, r.Faces)
	fmt.Println("sweep: threshold  identification  false-accept")
	for _, s := range r.Sweep {
		fmt.Printf("       %.2f       %6.1f%%         %5.1f%%\n", s.Threshold, 100*s.Accuracy, 100*s.FAR)
	}
	return 0
}
