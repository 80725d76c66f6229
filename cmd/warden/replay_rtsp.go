package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/smartcommunity/warden/edge/replay/rtsp"
)

// replayRTSP serves NAME=FILE pairs as looping live RTSP streams.
func replayRTSP(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("replay rtsp", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP listen address")
	user := fs.String("username", "", "require this user (basic or digest auth)")
	pass := fs.String("password", os.Getenv("WARDEN_RTSP_PASSWORD"), "password for --username (default $WARDEN_RTSP_PASSWORD)")
	noTranscode := fs.Bool("no-transcode", false, "refuse files whose video is neither H.264 nor H.265 instead of transcoding them to H.264")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: warden replay rtsp --listen ADDR NAME=FILE...")
		return 2
	}
	tmp, err := os.MkdirTemp("", "warden-replay-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden replay rtsp:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var streams []rtsp.Stream
	seen := map[string]bool{}
	for _, a := range fs.Args() {
		name, file, ok := strings.Cut(a, "=")
		if !ok || name == "" || file == "" || strings.Contains(name, "/") || seen[name] {
			fmt.Fprintf(os.Stderr, "warden replay rtsp: %q: want a unique NAME=FILE (NAME without '/')\n", a)
			return 2
		}
		seen[name] = true
		dir, err := os.MkdirTemp(tmp, name+"-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "warden replay rtsp:", err)
			return 1
		}
		ts, err := rtsp.Prepare(ctx, file, dir, *noTranscode)
		if err != nil {
			fmt.Fprintln(os.Stderr, "warden replay rtsp:", err)
			return 1
		}
		streams = append(streams, rtsp.Stream{Name: name, TS: ts})
	}
	s := &rtsp.Server{Addr: *listen, Streams: streams, User: *user, Pass: *pass, Log: log}
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "warden replay rtsp:", err)
		return 1
	}
	for _, st := range streams {
		log.Info("serving", "url", "rtsp://"+s.ListenAddr()+"/"+st.Name)
	}
	<-ctx.Done()
	s.Close()
	return 0
}
