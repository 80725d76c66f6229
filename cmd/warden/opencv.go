package main

import "gocv.io/x/gocv"

// opencvVersion is the version of the linked OpenCV library.
func opencvVersion() string { return gocv.OpenCVVersion() }
