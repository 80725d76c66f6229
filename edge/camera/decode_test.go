package camera

import (
	"context"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The raw-frame pipe is widened to 1 MiB, so a frame crosses in a few
// writes instead of one per 64 KiB.
func TestDecoderPipeIsWide(t *testing.T) {
	needFFmpeg(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := startDecoder(ctx, false, 1280, 720, 1, false, func(n int) []byte { return make([]byte, n) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.close() }()
	f, ok := d.out.(*os.File)
	if !ok {
		t.Fatalf("stdout is a %T, not a pipe file", d.out)
	}
	n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1<<20 {
		t.Errorf("pipe holds %d bytes, want 1 MiB", n)
	}
}
