package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/gateway"
)

// Run returns only after every goroutine it started has stopped.
func TestRunLeavesNoGoroutines(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf(`gateway: {id: gw-leak, data_dir: %q}
mqtt: {embedded: {listen: "127.0.0.1:%d", allow_anonymous: true}}
api: {listen: "127.0.0.1:0"}
devices:
%s`, filepath.Join(dir, "data"), freePort(t), counterDevice)
	cfg, err := config.Parse("leak.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for round := range 2 {
		ready := make(chan struct{})
		g, err := gateway.New(cfg, gateway.Options{Ready: func() { close(ready) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("round %d: Run ended early: %v", round, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: not ready after 30s", round)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: Run: %v", round, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines before, %d after Run returned:\n%s", before, n, strings.TrimSpace(string(buf)))
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
