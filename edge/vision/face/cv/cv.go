// Package cv is a small cgo shim over the OpenCV 4.6 face APIs that gocv
// v0.32 lacks: cv::FaceDetectorYN (YuNet), cv::FaceRecognizerSF (alignment
// and ONNX embeddings) and cv::face::LBPHFaceRecognizer (contrib). C++
// exceptions are caught in the shim and come back as Go errors.
package cv

/*
#cgo pkg-config: opencv4
#cgo CXXFLAGS: -std=c++11
#cgo LDFLAGS: -lopencv_face
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"gocv.io/x/gocv"
)

// Face is one YuNet detection: box, five landmarks (right eye, left eye,
// nose tip, right and left mouth corner) and score, in image pixels.
type Face struct {
	Row [15]float32 // x, y, w, h, 5×(x, y), score: the layout alignCrop wants
}

// Box returns x, y, w, h.
func (f Face) Box() (x, y, w, h float32) { return f.Row[0], f.Row[1], f.Row[2], f.Row[3] }

// Landmark returns landmark i (0..4).
func (f Face) Landmark(i int) (x, y float32) { return f.Row[4+2*i], f.Row[5+2*i] }

// Score is the detector's confidence.
func (f Face) Score() float32 { return f.Row[14] }

func takeErr(e *C.char) error {
	if e == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(e))
	return errors.New(C.GoString(e))
}

func checkFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}

// YuNet wraps cv::FaceDetectorYN. Not safe for concurrent use.
type YuNet struct{ p *C.FCYuNet }

// NewYuNet loads a YuNet ONNX model. A missing, corrupt or unsupported model
// is an error, never a crash.
func NewYuNet(model string, score, nms float32) (*YuNet, error) {
	if err := checkFile(model); err != nil {
		return nil, fmt.Errorf("yunet model: %w", err)
	}
	cs := C.CString(model)
	defer C.free(unsafe.Pointer(cs))
	var e *C.char
	p := C.fc_yunet_new(cs, C.float(score), C.float(nms), &e)
	if err := takeErr(e); err != nil || p == nil {
		if err == nil {
			err = errors.New("no detector")
		}
		return nil, fmt.Errorf("yunet model %s: %w", model, err)
	}
	return &YuNet{p: p}, nil
}

// Detect finds up to max faces in a BGR image.
func (d *YuNet) Detect(img gocv.Mat, max int) ([]Face, error) {
	if img.Empty() {
		return nil, nil
	}
	buf := make([]float32, 15*max)
	var e *C.char
	n := C.fc_yunet_detect(d.p, C.FCMat(unsafe.Pointer(img.Ptr())), (*C.float)(unsafe.Pointer(&buf[0])), C.int(max), &e)
	runtime.KeepAlive(img)
	if err := takeErr(e); err != nil {
		return nil, fmt.Errorf("yunet detect: %w", err)
	}
	out := make([]Face, int(n))
	for i := range out {
		copy(out[i].Row[:], buf[i*15:(i+1)*15])
	}
	return out, nil
}

// Close frees the detector.
func (d *YuNet) Close() {
	if d != nil && d.p != nil {
		C.fc_yunet_free(d.p)
		d.p = nil
	}
}

// SFace wraps cv::FaceRecognizerSF with any embedding ONNX model that takes
// an aligned 112×112 BGR crop. Not safe for concurrent use.
type SFace struct{ p *C.FCSFace }

// Input says how a crop is fed to the network. The zero value is
// FaceRecognizerSF's own (raw 0..255, RGB), right for SFace; ArcFace-style
// models want (pixel - 127.5) / 128.
type Input struct {
	Scale, Mean float64
	SwapRB      bool
}

// ArcFaceInput is (pixel − 127.5)/128, RGB.
var ArcFaceInput = Input{Scale: 1.0 / 128, Mean: 127.5, SwapRB: true}

// NewSFace loads an embedding model and runs it once on a grey probe, so a
// model that loads but cannot run fails here.
func NewSFace(model string, in Input) (*SFace, error) {
	if err := checkFile(model); err != nil {
		return nil, fmt.Errorf("embedding model: %w", err)
	}
	cs := C.CString(model)
	defer C.free(unsafe.Pointer(cs))
	var e *C.char
	swap := 0
	if in.SwapRB {
		swap = 1
	}
	p := C.fc_sface_new(cs, C.double(in.Scale), C.double(in.Mean), C.int(swap), &e)
	if err := takeErr(e); err != nil || p == nil {
		if err == nil {
			err = errors.New("no recognizer")
		}
		return nil, fmt.Errorf("embedding model %s: %w", model, err)
	}
	return &SFace{p: p}, nil
}

// CropSize is the side of an aligned crop.
const CropSize = 112

// Align returns the 112×112 BGR crop for f (similarity transform on the
// five landmarks) as raw bytes.
func (r *SFace) Align(img gocv.Mat, f Face) ([]byte, error) {
	crop := make([]byte, CropSize*CropSize*3)
	var e *C.char
	C.fc_sface_align(r.p, C.FCMat(unsafe.Pointer(img.Ptr())), (*C.float)(unsafe.Pointer(&f.Row[0])),
		(*C.uchar)(unsafe.Pointer(&crop[0])), &e)
	runtime.KeepAlive(img)
	if err := takeErr(e); err != nil {
		return nil, fmt.Errorf("align: %w", err)
	}
	return crop, nil
}

// Feature embeds an aligned crop (CropSize² × 3 BGR bytes).
func (r *SFace) Feature(crop []byte) ([]float32, error) {
	if len(crop) != CropSize*CropSize*3 {
		return nil, fmt.Errorf("feature: crop is %d bytes, want %d", len(crop), CropSize*CropSize*3)
	}
	out := make([]float32, 4096)
	var e *C.char
	n := C.fc_sface_feature(r.p, (*C.uchar)(unsafe.Pointer(&crop[0])), (*C.float)(unsafe.Pointer(&out[0])), C.int(len(out)), &e)
	if err := takeErr(e); err != nil {
		return nil, fmt.Errorf("feature: %w", err)
	}
	return out[:int(n)], nil
}

// Close frees the recognizer.
func (r *SFace) Close() {
	if r != nil && r.p != nil {
		C.fc_sface_free(r.p)
		r.p = nil
	}
}

// LBPH wraps cv::face::LBPHFaceRecognizer (radius 1, 8 neighbours, 8×8 grid).
// Not safe for concurrent use.
type LBPH struct{ p *C.FCLBPH }

// NewLBPH makes an untrained recognizer.
func NewLBPH() (*LBPH, error) {
	var e *C.char
	p := C.fc_lbph_new(&e)
	if err := takeErr(e); err != nil || p == nil {
		return nil, fmt.Errorf("lbph: %v", err)
	}
	return &LBPH{p: p}, nil
}

// Train replaces the model with grey images of size w×h and their labels.
func (l *LBPH) Train(imgs [][]byte, labels []int32, w, h int) error {
	if len(imgs) != len(labels) {
		return errors.New("lbph train: images and labels differ in length")
	}
	if len(imgs) == 0 {
		return nil
	}
	data := make([]byte, 0, len(imgs)*w*h)
	for i, im := range imgs {
		if len(im) != w*h {
			return fmt.Errorf("lbph train: image %d is %d bytes, want %d", i, len(im), w*h)
		}
		data = append(data, im...)
	}
	var e *C.char
	C.fc_lbph_train(l.p, (*C.uchar)(unsafe.Pointer(&data[0])), C.int(len(imgs)), C.int(w), C.int(h),
		(*C.int)(unsafe.Pointer(&labels[0])), &e)
	if err := takeErr(e); err != nil {
		return fmt.Errorf("lbph train: %w", err)
	}
	return nil
}

// Predict returns the nearest label and its chi-square distance (lower is
// closer); label -1 when untrained.
func (l *LBPH) Predict(grey []byte, w, h int) (int, float64, error) {
	if len(grey) != w*h || w == 0 {
		return -1, 0, fmt.Errorf("lbph predict: image is %d bytes, want %d", len(grey), w*h)
	}
	var label C.int
	var dist C.double
	var e *C.char
	C.fc_lbph_predict(l.p, (*C.uchar)(unsafe.Pointer(&grey[0])), C.int(w), C.int(h), &label, &dist, &e)
	if err := takeErr(e); err != nil {
		return -1, 0, fmt.Errorf("lbph predict: %w", err)
	}
	return int(label), float64(dist), nil
}

// Close frees the recognizer.
func (l *LBPH) Close() {
	if l != nil && l.p != nil {
		C.fc_lbph_free(l.p)
		l.p = nil
	}
}

// SetNumThreads sets OpenCV's worker threads for the whole process (1: run
// on the calling thread only, as in the one-core benchmarks).
func SetNumThreads(n int) { C.fc_set_num_threads(C.int(n)) }
