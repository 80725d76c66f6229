package camera

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"
	"golang.org/x/sys/unix"
)

// decoder turns Annex-B H.264 or H.265 access units into raw frames with
// an ffmpeg subprocess. A separate process keeps a corrupt stream from
// crashing the gateway, needs no second RTSP session (the record ring and
// the decoder share one), and lets ffmpeg drop the frames analysis does not
// need before the costly colour conversion and pipe copy (select every k-th
// frame).
//
// Units go in in decode order, frames come out in display order (they differ
// when the stream has B-frames), and the raw pipes carry no timestamps. So
// every written unit's PTS waits in a min-heap: the frames leave ffmpeg in
// PTS order, one per unit, and select keeps frames 0, k, 2k … of that order,
// so frame i is the smallest pending PTS after the k-1 skipped ones.
type decoder struct {
	w, h  int
	every int // keep every k-th frame (display order)
	alloc func(n int) []byte
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   io.ReadCloser
	lw    *limitedWriter

	i420 bool // ffmpeg writes I420 (else BGR, for odd sizes)
	// keyOnly: only key frames are fed, about one a second, and each must
	// come out before the next goes in. An access unit delimiter after each
	// ends it for ffmpeg's parser, which otherwise waits for the next unit,
	// and -threads 1 holds no frame back (ffmpeg 5.1: two units of delay
	// without both, one with either alone; TestKeyFramesOnly)
	keyOnly bool
	aud     []byte // an access unit delimiter of the codec

	mu      sync.Mutex
	pending pendingHeap // written units whose frame has not come out
	skip    int         // frames select drops before the next one out
}

type pendingAU struct {
	pts  int64
	wall time.Time
	in   time.Time
}

// pendingHeap orders written units by PTS (display order).
type pendingHeap []pendingAU

func (h pendingHeap) Len() int           { return len(h) }
func (h pendingHeap) Less(i, j int) bool { return h[i].pts < h[j].pts }
func (h pendingHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)        { *h = append(*h, x.(pendingAU)) }
func (h *pendingHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// maxPending bounds the heap if ffmpeg lost frames (a corrupt stream).
const maxPending = 512

type rawFrame struct {
	pix  []byte // I420 when i420, else BGR
	i420 bool
	pts  int64
	wall time.Time
	lat  time.Duration
}

func startDecoder(ctx context.Context, hevc bool, w, h, every int, keyOnly bool, alloc func(int) []byte) (*decoder, error) {
	if w <= 0 || h <= 0 || w*h > 8192*8192 {
		return nil, fmt.Errorf("decoder: bad frame size %dx%d", w, h)
	}
	// no -fflags nobuffer: it makes ffmpeg discard what it read while
	// probing, i.e. the first frames, and the PTS heap would be off by them
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-flags", "low_delay", "-probesize", "32", "-analyzeduration", "0"}
	if keyOnly {
		args = append(args, "-threads", "1")
	}
	in, aud := "h264", []byte{0, 0, 0, 1, 9, 0xf0} // primary_pic_type 7 (any)
	if hevc {
		in, aud = "hevc", []byte{0, 0, 0, 1, 35 << 1, 1, 0x50} // pic_type 2 (any)
	}
	args = append(args, "-f", in, "-i", "pipe:0")
	if keyOnly {
		args = append(args, "-threads", "1") // on the output side too: else a frame stays behind
	}
	if every > 1 {
		args = append(args, "-vf", fmt.Sprintf("select=not(mod(n\\,%d))", every))
	}
	// I420 out: half the bytes of BGR through the pipe, no swscale pass in
	// ffmpeg, and a camera whose detectors read luma alone never converts
	// it (odd sizes keep bgr24).
	pix := "bgr24"
	d := &decoder{w: w, h: h, every: max(1, every), keyOnly: keyOnly, aud: aud, alloc: alloc}
	if w%2 == 0 && h%2 == 0 {
		pix, d.i420 = "yuv420p", true
	}
	args = append(args, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", pix, "-s", fmt.Sprintf("%dx%d", w, h), "pipe:1")
	d.cmd = exec.CommandContext(ctx, "ffmpeg", args...)
	d.lw = &limitedWriter{b: &bytes.Buffer{}, n: 4096}
	d.cmd.Stderr = d.lw
	var err error
	if d.in, err = d.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if d.out, err = d.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	growPipe(d.out)
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("decoder: start ffmpeg: %w", err)
	}
	return d, nil
}

// write feeds one access unit; pts in 90 kHz.
func (d *decoder) write(au [][]byte, pts int64, wall time.Time) error {
	var buf bytes.Buffer
	for _, n := range au {
		buf.Write([]byte{0, 0, 0, 1})
		buf.Write(n)
	}
	if d.keyOnly {
		buf.Write(d.aud)
	}
	d.mu.Lock()
	if d.pending.Len() >= maxPending {
		heap.Pop(&d.pending) // the decoder lost frames; keep the heap bounded
	}
	heap.Push(&d.pending, pendingAU{pts, wall, time.Now()})
	d.mu.Unlock()
	_, err := d.in.Write(buf.Bytes())
	return err
}

// read blocks for the next frame.
func (d *decoder) read() (rawFrame, error) {
	n := d.w * d.h * 3
	if d.i420 {
		n = d.w * d.h * 3 / 2
	}
	b := d.alloc(n)
	if _, err := io.ReadFull(d.out, b); err != nil {
		return rawFrame{}, fmt.Errorf("decoder: %w%s", err, d.errText())
	}
	f := rawFrame{pix: b, i420: d.i420, wall: time.Now()}
	d.mu.Lock()
	for ; d.skip > 0 && d.pending.Len() > 1; d.skip-- {
		heap.Pop(&d.pending)
	}
	if d.pending.Len() > 0 {
		p := heap.Pop(&d.pending).(pendingAU)
		f.pts, f.wall, f.lat = p.pts, p.wall, time.Since(p.in)
	}
	d.skip = d.every - 1
	d.mu.Unlock()
	return f, nil
}

func (d *decoder) errText() string {
	d.lw.mu.Lock()
	s := strings.TrimSpace(d.lw.b.String())
	d.lw.mu.Unlock()
	if s == "" {
		return ""
	}
	return ": ffmpeg: " + s
}

// close ends ffmpeg and waits for it.
func (d *decoder) close() error {
	d.in.Close()
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Second):
		_ = d.cmd.Process.Kill()
		return errors.Join(<-done, errors.New("decoder: ffmpeg killed"))
	}
}

// limitedWriter keeps the first n bytes of ffmpeg's stderr for messages,
// and counts its lines (at -loglevel error each is a decoding error) with
// the last one, to tell a stream that decodes to garbage.
type limitedWriter struct {
	mu    sync.Mutex
	b     *bytes.Buffer
	n     int
	lines int64
	last  []byte // the last complete line, at most 200 bytes
	cur   []byte
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	for _, c := range p {
		if c != '\n' {
			if len(l.cur) < 200 {
				l.cur = append(l.cur, c)
			}
			continue
		}
		l.lines++
		l.last, l.cur = append(l.last[:0], l.cur...), l.cur[:0]
	}
	return len(p), nil
}

// errorLines is how many lines ffmpeg wrote so far, and the last one.
func (d *decoder) errorLines() (int64, string) {
	d.lw.mu.Lock()
	defer d.lw.mu.Unlock()
	return d.lw.lines, string(d.lw.last)
}

// growPipe widens the raw-frame pipe from Linux's 64 KiB to 1 MiB (the
// unprivileged maximum): a 720p I420 frame then crosses in two writes, not
// 22, each of which woke the reader and switched tasks. Best effort.
func growPipe(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	if sc, err := f.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20) })
	}
}

// i420ToBGR converts one I420 frame (w×h, even) into bgr (w*h*3 bytes).
func i420ToBGR(yuv, bgr []byte, w, h int) error {
	src, err := gocv.NewMatFromBytes(h*3/2, w, gocv.MatTypeCV8UC1, yuv)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, bgr)
	if err != nil {
		return err
	}
	defer dst.Close()
	gocv.CvtColor(src, &dst, gocv.ColorYUVToBGRIYUV)
	return nil
}
