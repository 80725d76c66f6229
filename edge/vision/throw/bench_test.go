package throw_test

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/vision"
	"github.com/smartcommunity/warden/edge/vision/throw"
	"github.com/smartcommunity/warden/edge/vision/throw/throwsim"
)

func cpu() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// BenchmarkPipeline720p decodes a generated 1280×720 25 fps clip with and
// without the throw detector, in the same run; it reports frames per second
// per core and CPU per camera (cores used by a live 25 fps camera).
func BenchmarkPipeline720p(b *testing.B) {
	dir := b.TempDir()
	o := throwsim.DefaultOptions()
	o.Seconds, o.NegFrac = 4, 0
	tr, err := throwsim.One(dir, "bench", 7, o)
	if err != nil {
		b.Fatal(err)
	}
	opts, err := throw.ParseOptions("detect.throw", tr.ThrowSection())
	if err != nil {
		b.Fatal(err)
	}
	os.Setenv("OPENCV_FOR_THREADS_NUM", "1")
	for _, withDet := range []bool{false, true} {
		name := "decode"
		if withDet {
			name = "decode+throw"
		}
		b.Run(name, func(b *testing.B) {
			frames := 0
			c0 := cpu()
			for range b.N {
				d := throw.NewDetector(opts, nil)
				n, err := camera.ReadFile(context.Background(), tr.Clip, camera.FileOptions{FPS: tr.FPS}, func(f vision.Frame) {
					if withDet {
						d.Detect(f)
					}
				})
				d.Close()
				if err != nil {
					b.Fatal(err)
				}
				frames += n
			}
			c := cpu() - c0
			b.ReportMetric(float64(frames)/c, "frames/s/core")
			b.ReportMetric(25*c/float64(frames), "cores@25fps")
		})
	}
}
