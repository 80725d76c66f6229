package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/gateway"
	"github.com/smartcommunity/warden/edge/store"
)

// loadConfig loads and validates, including every driver's and section
// owner's own keys.
func loadConfig(path string) (*config.Config, error) {
	return gateway.LoadConfig(path)
}

func configFlag(name string, args []string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	p := fs.String("config", "/etc/warden/warden.yaml", "config file")
	return fs, p
}

// Exit codes of warden run (docs/systemd.md): 0 stopped, 1 failed (systemd
// restarts it), 2 bad config and 3 damaged data (systemd does not: a
// restart cannot mend either). A crash ends with SIGABRT and is restarted.
const exitDataDamaged = 3

func checkConfig(ctx context.Context, args []string) int {
	fs, path := configFlag("check-config", args)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("%s: ok (gateway %s, %d devices, %d cameras)\n", *path, cfg.Gateway.ID, len(cfg.Devices), len(cfg.Cameras))
	return 0
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func runDaemon(ctx context.Context, args []string) int {
	fs, path := configFlag("run", args)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// A Go crash exits with 2, the bad-config code, which systemd is told
	// not to restart: end crashes with SIGABRT instead, so they restart.
	debug.SetTraceback("crash")
	log := newLogger(cfg.Log.Level)
	slog.SetDefault(log)
	tuneGC(log)

	opts := gateway.Options{
		Logger:  log,
		Version: version,
		Ready: func() {
			if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
				log.Warn("sd_notify ready", "err", err)
			}
		},
	}
	if every := watchdogEvery(); every > 0 {
		opts.HealthyEvery = every
		opts.Healthy = func() { _, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog) }
	}
	g, err := gateway.New(cfg, opts)
	if err != nil {
		log.Error("start failed", "err", err)
		fmt.Fprintln(os.Stderr, "warden:", err)
		if errors.Is(err, store.ErrCorrupt) {
			return exitDataDamaged
		}
		return 1
	}
	err = g.Run(ctx)
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// watchdogEvery is half the systemd watchdog interval, or 0 when off.
func watchdogEvery() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
