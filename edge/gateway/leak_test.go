package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/gateway"
	"github.com/smartcommunity/warden/edge/testenv"
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
		_, stop := runInProcess(t, cfg)
		if err := stop(); err != nil {
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

// runInProcess builds a gateway from cfg and runs it until stop, which
// returns Run's error; the test fails if it is not ready in 30 s.
func runInProcess(t testing.TB, cfg *config.Config) (g *gateway.Gateway, stop func() error) {
	t.Helper()
	ready := make(chan struct{})
	g, err := gateway.New(cfg, gateway.Options{Ready: func() { close(ready) }, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		<-done
		t.Fatal("not ready after 30s")
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return g, stop
}

// The service table declares every event-log follower that runs, and each
// one it declares runs (and shows its lag on /readyz).
func TestServiceTableDeclaresFollowers(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf(`gateway: {id: gw-table, data_dir: %q}
mqtt: {embedded: {listen: "127.0.0.1:%d", allow_anonymous: true}}
api: {listen: "127.0.0.1:0"}
uplink:
  http: {url: "http://127.0.0.1:%d/events"}
  mqtt: {broker: "tcp://127.0.0.1:%d", topic: up}
rules:
  - name: mirror
    when: {type: perimeter.intrusion}
    then: [{action: publish, topic: "site/x", payload: "{}"}]
devices:
%s`, filepath.Join(dir, "data"), freePort(t), freePort(t), freePort(t), counterDevice)
	cfg, err := config.Parse("table.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := runInProcess(t, cfg)
	testenv.Eventually(t, 20*time.Second, "every follower declared and running", func() (bool, string) {
		undeclared, missing := g.UndeclaredFollowers()
		return len(undeclared)+len(missing) == 0, fmt.Sprintf("undeclared %v, declared but not running %v", undeclared, missing)
	})
}
