package health

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

func TestCommitsHoldAndRecover(t *testing.T) {
	now := time.Unix(1000, 0)
	c := &Commits{now: func() time.Time { return now }}
	if c.Err("x") != nil {
		t.Fatal("zero value is not healthy")
	}
	if !c.Failed(errors.New("no space left on device")) {
		t.Error("first failure does not start an episode")
	}
	now = now.Add(time.Second)
	if c.Succeeded() || c.Err("event store") == nil {
		t.Error("a success one second after a failure ended the episode: readiness would flap")
	}
	now = now.Add(time.Second)
	c.Failed(errors.New("no space left on device"))
	now = now.Add(Hold)
	// No commit since: the last outcome is a failure, still failing.
	if err := c.Err("event store"); err == nil || err.Error() != "event store commits failing since 1970-01-01T00:16:40Z: no space left on device" {
		t.Errorf("Err = %v", err)
	}
	if !c.Succeeded() || c.Err("x") != nil {
		t.Error("a success Hold after the last failure did not end the episode")
	}
	// A success, then idle: the episode ends by itself once Hold passed.
	c.Failed(errors.New("eio"))
	now = now.Add(time.Second)
	c.Succeeded()
	if c.Err("x") == nil {
		t.Error("healthy one second after a failure")
	}
	now = now.Add(Hold)
	if c.Err("x") != nil {
		t.Error("still failing after a success and Hold without failures")
	}
}

// The watchdog is fed only while the alive check passes.
func TestWatchdog(t *testing.T) {
	var alive atomic.Bool
	alive.Store(true)
	fed := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watchdog(ctx, time.Millisecond, func() error {
			if alive.Load() {
				return nil
			}
			return errors.New("interlock stuck")
		}, func() { fed <- struct{}{} }, slog.New(slog.DiscardHandler))
	}()
	select {
	case <-fed:
	case <-time.After(10 * time.Second):
		t.Fatal("not fed while alive")
	}
	alive.Store(false)
	time.Sleep(20 * time.Millisecond) // a feed in flight may land
	for len(fed) > 0 {
		<-fed
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(fed); n != 0 {
		t.Errorf("fed %d times while the alive check failed", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
