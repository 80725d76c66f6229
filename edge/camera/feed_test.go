package camera

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/replay/rtsp"
	"github.com/smartcommunity/warden/edge/testenv"
)

// decoderPIDs are this process's ffmpeg children reading units from a pipe.
func decoderPIDs(t *testing.T) []int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmd), "ffmpeg") && strings.Contains(string(cmd), "pipe:0") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// A decoder that stalls for a second and a half (the box busy with a
// burst of faces elsewhere, a page-cache flush) loses nothing: the units
// wait for it. With a 4 s GOP a full feed would drop until the next key
// frame, blinding the camera for up to 4 s.
func TestDecoderStallLosesNoUnits(t *testing.T) {
	needFFmpeg(t)
	srv := &rtsp.Server{Addr: freeAddr(t), Streams: []rtsp.Stream{{Name: "cam", TS: testStreamGOP(t, 12, 100)}}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m := NewMetrics(nil)
	cam := New(config.Camera{ID: "stall", URL: "rtsp://" + srv.ListenAddr() + "/cam",
		Detect: config.Detect{FPS: 5, Motion: config.SectionOf(map[string]any{})}},
		Deps{Gateway: "gw", Site: "s", Metrics: m, OfflineGrace: 10 * time.Second})
	runCamera(t, cam)
	analysed := func() float64 { return testutil.ToFloat64(m.Analysed.WithLabelValues("stall")) }
	dropped := func() float64 { return testutil.ToFloat64(m.Dropped.WithLabelValues("stall", "decoder")) }
	testenv.Eventually(t, 30*time.Second, "frames analysed", func() (bool, string) {
		return analysed() >= 5, strconv.Itoa(int(analysed()))
	})
	pids := decoderPIDs(t)
	if len(pids) != 1 {
		t.Fatalf("want one decoder process, found %v", pids)
	}
	before, a0 := dropped(), analysed()
	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := syscall.Kill(pids[0], syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	t.Logf("decoder stopped 1.5 s: %v units dropped before the decoder, %v frames analysed in the 4.5 s", dropped()-before, analysed()-a0)
	if d := dropped() - before; d != 0 {
		t.Errorf("%v units dropped while the decoder stalled 1.5 s", d)
	}
}
