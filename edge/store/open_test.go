package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/event"
)

// TestHelperHoldStore is not a test: the lock test runs the test binary
// with WARDEN_STORE_HOLD set, so a real second process holds the data dir.
func TestHelperHoldStore(t *testing.T) {
	dir := os.Getenv("WARDEN_STORE_HOLD")
	if dir == "" {
		t.Skip("helper process for TestOpenDirInUseByAnotherProcess")
	}
	s, err := Open(Options{Dir: dir})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // hold until the parent closes stdin
	_ = s.Close()
	os.Exit(0)
}

func TestOpenDirInUseByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldStore$")
	cmd.Env = append(os.Environ(), "WARDEN_STORE_HOLD="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper: %q", line)
	}
	start := time.Now()
	_, err := Open(Options{Dir: dir, OpenTimeout: 30 * time.Second})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("data dir %s is in use by another warden (pid %d)", dir, cmd.Process.Pid)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %q, want it to contain %q", err, want)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %v: a second warden must fail at once, not wait for the db lock", d)
	}
	// Once the holder is gone the dir opens.
	_ = stdin.Close()
	_ = cmd.Wait()
	s := openStore(t, Options{Dir: dir})
	_ = s.Close()
}

func TestOpenTwiceInProcess(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir})
	_, err := Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", os.Getpid())) {
		t.Fatalf("err = %v", err)
	}
	_ = s.Close()
	openStore(t, Options{Dir: dir}) // the failed attempt released nothing it did not own
}

func TestOpenDBLockedTimesOut(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir})
	_ = s.Close()
	// Another process (a bbolt tool, say) holds the db file but not warden.lock.
	path := filepath.Join(dir, "warden.db")
	other, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{Dir: dir, OpenTimeout: 300 * time.Millisecond})
	_ = other.Close()
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrLocked naming %s", err, path)
	}
	t.Log(err)
	openStore(t, Options{Dir: dir}) // warden.lock was released by the failed Open
}

func TestOpenCorruptFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// A real database with data, to damage.
	goodDir := closedStore(t, 20)
	good, err := os.ReadFile(filepath.Join(goodDir, "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("good file: %d bytes", len(good))

	garbageAfterMeta := append([]byte(nil), good...)
	copy(garbageAfterMeta[2*4096:], random(len(good)-2*4096))

	cases := map[string][]byte{
		"random 64KiB":        random(64 << 10),
		"random 100 bytes":    random(100),
		"zeros 16KiB":         make([]byte, 16<<10),
		"truncated to third":  good[:len(good)/3],
		"truncated to 1 page": good[:4096],
		"garbage after meta":  garbageAfterMeta,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "warden.db")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(Options{Dir: dir, OpenTimeout: time.Second})
			if err == nil {
				_ = s.Close()
				t.Fatal("corrupt file opened")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want ErrCorrupt naming %s", err, path)
			}
			t.Log(err)
		})
	}
}

// damagedStore makes a store of events, closes it cleanly and overwrites
// its first leaf page of events with noise behind intact meta pages.
func damagedStore(t *testing.T) string {
	t.Helper()
	dir := closedStore(t, 10)
	path := filepath.Join(dir, "warden.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	hit := 0
	for p := 4; p*4096 < len(data) && hit == 0; p++ { // damage the first leaf page of events
		page := data[p*4096 : (p+1)*4096]
		if page[8] == 0x02 && strings.Contains(string(page), `"gate.vehicle"`) { // leaf page flag
			for i := 16; i < len(page); i++ {
				page[i] = byte(rng.Uint32())
			}
			hit++
		}
	}
	if hit == 0 {
		t.Fatal("found no event leaf page to damage")
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// After an unclean stop (no warden.clean) the whole file is checked at
// open: a damaged leaf fails the start instead of a later read.
func TestDamageFoundAfterUncleanStop(t *testing.T) {
	dir := damagedStore(t)
	if err := os.Remove(filepath.Join(dir, cleanMarker)); err != nil {
		t.Fatalf("no clean-stop marker after Close: %v", err)
	}
	s, err := Open(Options{Dir: dir})
	if err == nil {
		s.Close()
		t.Fatal("a damaged file opened after an unclean stop")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "unclean stop") {
		t.Fatalf("err = %v, want ErrCorrupt from the check after an unclean stop", err)
	}
}

// A 0-byte warden.db is refused: bbolt would start an empty store over it.
func TestEmptyDatabaseFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "warden.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: dir})
	if err == nil {
		s.Close()
		t.Fatal("opened a 0-byte database")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "0 bytes") {
		t.Fatalf("err = %v", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("the refused file was written to: %d bytes", fi.Size())
	}
}

// A damaged data page behind intact meta pages, after a clean stop (no
// check at open): whatever touches it gets ErrCorrupt, and nothing panics
// or hangs.
func TestDamagedDataPage(t *testing.T) {
	dir := damagedStore(t)
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("open (only an early leaf is damaged): %v", err)
	}
	defer s.Close()
	_, _, err = s.Read(0, 1000, Filter{})
	t.Logf("read: %v", err)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read err = %v, want ErrCorrupt", err)
	}
	err = s.Append(context.Background(), mkEvent(t, event.GateVehicle, "", "1"))
	t.Logf("append: %v", err)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("append err = %v, want ErrCorrupt or success", err)
	}
}

// closedStore is the directory of a store that held batches commits of
// 100 events and was closed cleanly.
func closedStore(t *testing.T, batches int) string {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir})
	for range batches {
		var evs []*event.Event
		for range 100 {
			evs = append(evs, mkEvent(t, event.GateVehicle, "", "1"))
		}
		if err := s.Append(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	return dir
}
