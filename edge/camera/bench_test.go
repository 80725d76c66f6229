package camera

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/config"
)

// TestBenchCPU measures one camera's CPU and memory (the Go process plus its
// ffmpeg decoder) on WARDEN_BENCH_URL for WARDEN_BENCH_SECONDS (default 20).
// It is skipped unless WARDEN_BENCH_URL is set; see docs/camera.md.
func TestBenchCPU(t *testing.T) {
	url := os.Getenv("WARDEN_BENCH_URL")
	if url == "" {
		t.Skip("set WARDEN_BENCH_URL=rtsp://… to measure CPU per camera")
	}
	secs := 20 * time.Second
	if s, err := time.ParseDuration(os.Getenv("WARDEN_BENCH_SECONDS") + "s"); err == nil && s > 0 {
		secs = s
	}
	rss0 := vmRSS()
	cam := New(config.Camera{ID: "bench", URL: url, Detect: config.Detect{FPS: 5, Motion: config.SectionOf(map[string]any{})}}, Deps{})
	stop := runCamera(t, cam)
	deadline := time.Now().Add(20 * time.Second)
	for cam.Status().State != Online && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // warm up
	var self0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	t0 := time.Now()
	time.Sleep(secs)
	var self1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	wall := time.Since(t0)
	st := cam.Status()
	rss1 := vmRSS()
	stop() // the decoder is waited for, so its usage lands in RUSAGE_CHILDREN
	var kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	cpu := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	goCPU := cpu(self1) - cpu(self0)
	// the child ran ~2 s longer than the window; scale to the window
	kidCPU := time.Duration(float64(cpu(kids)) * secs.Seconds() / (secs.Seconds() + 2))
	t.Logf("url=%s window=%v analysed_fps=%.1f", url, wall.Round(time.Millisecond), st.FPS)
	t.Logf("go process: %.1f%% of a core, max RSS %d MiB; RSS %d MiB before the camera, %d MiB with it", 100*goCPU.Seconds()/wall.Seconds(), self1.Maxrss/1024, rss0>>20, rss1>>20)
	t.Logf("ffmpeg decoder: %.1f%% of a core, max RSS %d MiB", 100*kidCPU.Seconds()/wall.Seconds(), kids.Maxrss/1024)
	t.Logf("total: %.1f%% of a core", 100*(goCPU+kidCPU).Seconds()/wall.Seconds())
}

// vmRSS is the current resident set of this process in bytes.
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
