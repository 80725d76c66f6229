package main

// opencvVersion is replaced by the camera pipeline once it links OpenCV.
func opencvVersion() string { return "not linked" }
