package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// lose zeroes payloads of video packets only, in runs of 8, and keeps
// every TS header, PES start and the first 20 video packets.
func TestLoseKeepsHeaders(t *testing.T) {
	var b []byte
	for i := range 400 {
		p := bytes.Repeat([]byte{0xaa}, 188)
		p[0], p[1], p[2], p[3] = 0x47, 0x01, 0x00, 0x10 // PID 0x100, payload only
		switch {
		case i%3 == 2:
			p[1] = 0x10 // PID 0x1000 (the PMT): never touched
		case i%30 == 0:
			p[1] |= 0x40 // a PES starts
		}
		b = append(b, p...)
	}
	path := filepath.Join(t.TempDir(), "a.ts")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := lose(path, 0.05, rand.New(rand.NewPCG(1, 2)))
	if err != nil || n == 0 {
		t.Fatalf("%d losses, %v", n, err)
	}
	got, _ := os.ReadFile(path)
	zeroed, video := 0, 0
	for off := 0; off < len(got); off += 188 {
		if !bytes.Equal(got[off:off+4], b[off:off+4]) {
			t.Fatalf("header of packet %d changed", off/188)
		}
		pid := int(got[off+1]&0x1f)<<8 | int(got[off+2])
		pusi := got[off+1]&0x40 != 0
		changed := !bytes.Equal(got[off:off+188], b[off:off+188])
		if changed && (pid != videoPID || pusi || video < 20) {
			t.Fatalf("packet %d (PID %#x, PES start %v, video packet %d) was changed", off/188, pid, pusi, video)
		}
		if changed {
			if !bytes.Equal(got[off+4:off+188], make([]byte, 184)) {
				t.Fatalf("packet %d partly zeroed", off/188)
			}
			zeroed++
		}
		if pid == videoPID {
			video++
		}
	}
	if zeroed < n || zeroed > 8*n {
		t.Errorf("%d packets zeroed for %d losses: want 1–8 each", zeroed, n)
	}
}
