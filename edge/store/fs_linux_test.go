package store

// Tests that need a filesystem of their own: a tiny tmpfs to fill up and a
// read-only mount. They need root (CI runs them as root) and skip otherwise.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/smartcommunity/warden/edge/event"
)

// mountTmpfs mounts a tmpfs of the given size on a fresh dir, or skips.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): this test needs root or CAP_SYS_ADMIN; CI runs it as root", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestAppendOnFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, "4m")
	dir := filepath.Join(mnt, "data")
	reg := prometheus.NewRegistry()
	s, err := Open(Options{Dir: dir, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()

	// Leave little room, then append until the disk is full.
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 2000)
	var acked []string
	var fullErr error
	for i := 0; i < 5000 && fullErr == nil; i++ {
		ev := mkEvent(t, event.GasLeak, "", "1")
		ev.Data["pad"] = pad
		if err := s.Append(context.Background(), ev); err != nil {
			fullErr = err
			break
		}
		acked = append(acked, ev.ID)
	}
	if fullErr == nil {
		t.Fatal("4 MiB filesystem never filled up")
	}
	if !errors.Is(fullErr, syscall.ENOSPC) {
		t.Fatalf("error %v does not wrap ENOSPC", fullErr)
	}
	t.Logf("after %d events: %v", len(acked), fullErr)
	if got := testutil.ToFloat64(s.metrics.errors.WithLabelValues("commit")); got < 1 {
		t.Fatalf("errors_total{op=commit} = %v", got)
	}
	if int(s.LastSeq()) != len(acked) {
		t.Fatalf("LastSeq %d after a failed commit, %d acked", s.LastSeq(), len(acked))
	}

	// Space comes back: the same store keeps working.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		ev := mkEvent(t, event.GasLeak, "", "1")
		if err := s.Append(context.Background(), ev); err != nil {
			t.Fatalf("append after freeing space: %v", err)
		}
		acked = append(acked, ev.ID)
		if ev.Seq != uint64(len(acked)) {
			t.Fatalf("seq %d, want %d (no gap, no reuse)", ev.Seq, len(acked))
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The file is intact: bbolt's own check passes and every acked event is there.
	db, err := bbolt.Open(filepath.Join(dir, "warden.db"), 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	_ = db.Close()
	if err != nil {
		t.Fatalf("consistency check: %v", err)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := s.Read(0, maxLimit, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(acked) {
		t.Fatalf("%d events after reopen, %d acked", len(evs), len(acked))
	}
	for i, ev := range evs {
		if ev.ID != acked[i] || ev.Seq != uint64(i+1) {
			t.Fatalf("event %d: id %s seq %d", i, ev.ID, ev.Seq)
		}
	}
}

func TestPutMediaOnFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, "1m")
	s := openStore(t, Options{Dir: filepath.Join(mnt, "data")})
	_, err := s.PutMedia("snapshot", "image/jpeg", make([]byte, 2<<20))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(mnt, "data", "media")); len(ents) != 0 {
		t.Fatalf("partial media left behind: %v", ents)
	}
	if _, err := s.PutMedia("snapshot", "image/jpeg", []byte("small")); err != nil {
		t.Fatalf("small put after a failed one: %v", err)
	}
}

func TestOpenReadOnly(t *testing.T) {
	mnt := mountTmpfs(t, "4m")
	dir := filepath.Join(mnt, "data")
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	for _, d := range []string{dir, filepath.Join(mnt, "new")} {
		s, err := Open(Options{Dir: d})
		if err == nil {
			_ = s.Close()
			t.Fatalf("opened %s on a read-only filesystem", d)
		}
		if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), d) {
			t.Fatalf("err = %v, want ErrReadOnly naming %s", err, d)
		}
		t.Log(err)
	}
}
