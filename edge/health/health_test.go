package health

import (
	"errors"
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
