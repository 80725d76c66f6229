// Command lossy copies a set of throwsim clips as MPEG-TS files that lost
// packets on the way, for the throw detector under packet loss:
//
//	go run ./testdata/gen/lossy -in DIR -out DIR -rate 0.01 [-seed N]
//
// Each clip is remuxed to TS (ffmpeg -c copy); at each video TS packet a
// loss starts with probability -rate and zeroes the payload of it and the
// next 7 (about one 1400-byte RTP packet). PES headers are kept, so the
// frames still arrive, damaged, as a lost RTP packet leaves them, and so
// are the first 20 packets (the parameter sets, which an SDP carries). The
// truth files are copied with their clip renamed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const videoPID = 0x100 // ffmpeg's first stream

func main() {
	in := flag.String("in", "", "directory of clips and truth files (throwsim -out)")
	out := flag.String("out", "", "output directory")
	rate := flag.Float64("rate", 0.01, "chance that a loss starts at a video TS packet")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *in == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*in, *out, *rate, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "lossy:", err)
		os.Exit(1)
	}
}

func run(in, out string, rate float64, seed uint64) error {
	truths, err := filepath.Glob(filepath.Join(in, "*.json"))
	if err != nil || len(truths) == 0 {
		return fmt.Errorf("%s: no truth files", in)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 0x1055))
	for _, tf := range truths {
		var truth map[string]any
		b, err := os.ReadFile(tf)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &truth); err != nil {
			return fmt.Errorf("%s: %w", tf, err)
		}
		clip, _ := truth["clip"].(string)
		ts := strings.TrimSuffix(clip, filepath.Ext(clip)) + ".ts"
		dst := filepath.Join(out, ts)
		cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-i", filepath.Join(in, clip), "-c", "copy", "-f", "mpegts", dst)
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: ffmpeg: %w: %s", clip, err, o)
		}
		n, err := lose(dst, rate, rng)
		if err != nil {
			return err
		}
		truth["clip"] = ts
		b, _ = json.MarshalIndent(truth, "", "  ")
		if err := os.WriteFile(filepath.Join(out, filepath.Base(tf)), b, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d losses\n", dst, n)
	}
	return nil
}

// lose zeroes the payload of runs of 8 video TS packets of the file.
func lose(path string, rate float64, rng *rand.Rand) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var video []int
	for off := 0; off+188 <= len(b); off += 188 {
		if int(b[off+1]&0x1f)<<8|int(b[off+2]) == videoPID {
			video = append(video, off)
		}
	}
	losses := 0
	for i := 20; i < len(video); i++ {
		if rng.Float64() >= rate {
			continue
		}
		losses++
		for _, o := range video[i:min(i+8, len(video))] {
			if b[o+1]&0x40 != 0 { // a PES starts here: keep its header
				continue
			}
			start := o + 4
			if b[o+3]&0x20 != 0 {
				start += 1 + int(b[o+4])
			}
			clear(b[min(start, o+188) : o+188])
		}
		i += 7
	}
	return losses, os.WriteFile(path, b, 0o644)
}
