package uplink_test

import (
	"bufio"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/uplink"
	"github.com/smartcommunity/warden/edge/uplink/uplinktest"
	"github.com/smartcommunity/warden/edge/uplink/viid/viidtest"
)

// Crash: the draining process is kill -9ed 20 times. At the end every event
// is delivered; duplicates exist only for the batches accepted in the last
// window before each kill (cursor not yet saved, or the batch in flight):
// at most uplink.ResendWindow batches of that run.
func TestKill9WhileDraining(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a process")
	}
	bin := buildDrainer(t)
	const n, kills = 20000, 20
	dir := filledDir(t, n)

	p := uplinktest.NewPlatform(t)
	var mu sync.Mutex
	epoch := 0                          // the drainer run now going
	lastBatches := map[int][][]uint64{} // run -> seqs of its last ResendWindow accepted batches
	firstEpoch := map[uint64]int{}      // seq -> run of its first delivery
	accepted := map[int]int{}
	p.SetHook(func(w http.ResponseWriter, r *http.Request, batch []uplinktest.WireEvent, _ int) bool {
		p.Accept(r, batch)
		run, _ := strconv.Atoi(r.Header.Get("X-Run"))
		mu.Lock()
		seqs := make([]uint64, len(batch))
		for i, e := range batch {
			seqs[i] = e.Seq
			if _, ok := firstEpoch[e.Seq]; !ok {
				firstEpoch[e.Seq] = run
			}
		}
		lb := append(lastBatches[run], seqs)
		if len(lb) > uplink.ResendWindow {
			lb = lb[1:]
		}
		lastBatches[run] = lb
		accepted[run]++
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond) // widen the accepted-but-not-acked window
		w.WriteHeader(http.StatusOK)
		return true
	})

	start := func() (*exec.Cmd, chan struct{}) {
		mu.Lock()
		run := strconv.Itoa(epoch)
		mu.Unlock()
		return startDrainer(t, bin, "-dir", dir, "-url", p.URL(), "-batch", "100", "-run", run)
	}
	for k := 0; k < kills; k++ {
		cmd, done := start()
		testenv.Until(t, time.Minute, "progress in this run", func() bool { mu.Lock(); defer mu.Unlock(); return accepted[epoch] > 0 })
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		mu.Lock()
		epoch++
		mu.Unlock()
	}
	cmd, done := start()
	testenv.Until(t, time.Minute, "every event", func() bool { return p.Distinct() == n })
	time.Sleep(time.Second) // let the last 200 OK come back and the cursor be saved
	stopDrainer(t, cmd, done)

	seqs, dups := p.Received()
	seen := map[uint64]bool{}
	var order []uint64
	var dupSeqs []uint64
	for _, s := range seqs {
		if seen[s] {
			dupSeqs = append(dupSeqs, s)
			continue
		}
		seen[s] = true
		order = append(order, s)
	}
	uplinktest.AssertInOrder(t, order)
	t.Logf("%d kills: %d events delivered, %d duplicates", kills, len(order), dups)
	mu.Lock()
	defer mu.Unlock()
	for _, s := range dupSeqs {
		e := firstEpoch[s]
		inLast := false
		for _, b := range lastBatches[e] {
			for _, q := range b {
				inLast = inLast || q == s
			}
		}
		if !inLast || e >= kills {
			t.Errorf("seq %d was delivered twice but was not in the last %d batches accepted before kill %d", s, uplink.ResendWindow, e)
		}
	}
	if dups > kills*uplink.ResendWindow*100 {
		t.Errorf("%d duplicates for %d kills of batch 100", dups, kills)
	}
	st2 := storetest.Open(t, store.Options{Dir: dir})
	// A clean stop with the last batch still in flight leaves the cursor
	// one batch short: that batch is resent on the next start.
	if c, _ := st2.Cursor("uplink:http"); c < n-100 {
		t.Errorf("final cursor %d, want %d (or one batch less)", c, n)
	}
}

// The GA/T 1400 target kill -9ed mid-upload: every vehicle reaches the view
// library, first arrivals in seq order, and a resend after a kill carries
// the same MotorVehicleID, so the platform sees it once.
func TestKill9WhileUploadingGAT1400(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a process")
	}
	bin := buildDrainer(t)
	const n, kills = 3000, 8
	dir := filledDir(t, n) // gate.vehicle events
	v := viidtest.New("warden", "s3cret")
	defer v.Close()
	v.SetAcceptDelay(5 * time.Millisecond) // a list takes time, so kills land mid-upload
	start := func() (*exec.Cmd, chan struct{}) {
		return startDrainer(t, bin, "-dir", dir, "-url", v.URL(), "-batch", "50", "-gat1400")
	}
	for k := range kills {
		before := len(v.Objects())
		cmd, done := start()
		testenv.Until(t, time.Minute, "progress in this run", func() bool { return len(v.Objects()) > before })
		time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		t.Logf("kill %d: %d distinct so far", k, v.Distinct())
	}
	cmd, done := start()
	testenv.Until(t, time.Minute, "every vehicle", func() bool { return v.Distinct() == n })
	stopDrainer(t, cmd, done)
	if p := v.Problems(); len(p) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(p[:min(len(p), 10)], "\n"))
	}
	var first []uint64
	dups := 0
	for _, o := range v.Objects() {
		if o.Count > 1 {
			dups++
			continue
		}
		// The SourceID's last 5 digits are the event's seq.
		seq, _ := strconv.ParseUint(o.MV.SourceID[36:], 10, 64)
		first = append(first, seq)
	}
	uplinktest.AssertInOrder(t, first)
	// The cursor is saved after every batch: a kill resends at most the
	// batch in flight.
	if dups > kills*50 {
		t.Errorf("%d resends for %d kills of batches of 50", dups, kills)
	}
	t.Logf("%d kills: %d vehicles, %d resends (same ids), %d registrations, %d unregisters", kills, len(first), dups, v.Stats().Registers, v.Stats().UnRegisters)
	if s := v.Stats(); s.UnRegisters != 1 {
		t.Errorf("%d unregisters, want 1 (only the clean stop)", s.UnRegisters)
	}
}

// filledDir is a store directory holding n events, closed, for a drainer.
func filledDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	uplinktest.Fill(t, st, n, nil)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildDrainer builds the test-only draining process (race detector on).
func buildDrainer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "drainer")
	out, err := exec.Command("go", "build", "-race", "-o", bin, "./internal/drainer").CombinedOutput()
	if err != nil {
		t.Fatalf("build drainer: %v\n%s", err, out)
	}
	return bin
}

// startDrainer runs it and waits for its "ready"; done closes when it exits.
func startDrainer(t *testing.T, bin string, args ...string) (cmd *exec.Cmd, done chan struct{}) {
	t.Helper()
	cmd = exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		<-done
		t.Fatalf("drainer did not start: %q", line)
	}
	return cmd, done
}

// stopDrainer stops it as systemd would (SIGTERM) and waits for it to exit.
func stopDrainer(t *testing.T, cmd *exec.Cmd, done chan struct{}) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("drainer ignored SIGTERM")
	}
}
