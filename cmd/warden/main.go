// Command warden is the edge gateway: the daemon and its tools. main only
// parses the subcommand; each subcommand lives in its own file and is
// listed in the tables below.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. It returns the process exit code: 0 ok, 1
// failure, 2 bad usage or bad config.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) int
}

// commands are warden's subcommands.
var commands = map[string]command{
	"run":           {"run the gateway daemon", runDaemon},
	"check-config":  {"validate a config file (exit 0 ok, 2 bad)", checkConfig},
	"analyze":       {"run a camera's detectors over video files; events as JSON lines on stdout", runAnalyze},
	"enroll":        {"add face images of a person to the gallery (daemon stopped)", runEnroll},
	"gallery":       {"list or remove gallery persons: gallery list|remove --config FILE [ID]", runGallery},
	"eval":          {"evaluate a detector on a labelled data set (warden eval face|…)", runEval},
	"replay":        {"replay recorded input: `replay mqtt` sensor fixtures, `replay rtsp` video files", runReplay},
	"hash-password": {"read a password or token on stdin; print its bcrypt hash (MQTT, console users) and sha256: form (API tokens)", runHashPassword},
	"version":       {"print version, commit, OpenCV and Go versions", runVersion},
}

// evalCommands are the `warden eval KIND` subcommands.
var evalCommands = map[string]command{
	"face":       {"face identification accuracy, false accepts, threshold sweep, time per face", runEvalFace},
	"face-video": {"face recognition through video: people stepping up one after another, scored per visit", runEvalFaceVideo},
	"throw":      {"throw detector on throwsim clips: recall, false alarms, origin floor, latency, CPU", runEvalThrow},
}

// replayKinds are the `warden replay KIND` subcommands.
var replayKinds = map[string]func(ctx context.Context, args []string) int{
	"mqtt": replayMQTT,
	"rtsp": replayRTSP,
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: warden COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-14s %s\n", n, commands[n].summary)
	}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "warden: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.run(ctx, os.Args[2:])
	stop()
	os.Exit(code)
}
