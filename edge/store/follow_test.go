package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

func appendN(t *testing.T, s *Store, n int) {
	t.Helper()
	for range n {
		if err := s.Append(context.Background(), mkEvent(t, event.GateVehicle, "", "1")); err != nil {
			t.Fatal(err)
		}
	}
}

// A follower sees every commit in seq order, woken by commits; a failed
// call gets the rest of its page again; a durable cursor resumes.
func TestFollow(t *testing.T) {
	s := openStore(t, Options{Dir: t.TempDir()})
	appendN(t, s, 7)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []uint64
	failOnce := true
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, FollowOptions{Name: "test", Cursor: "test", Start: 2, Page: 3, Retry: 10 * time.Millisecond},
			func(_ context.Context, page []event.Event) (uint64, error) {
				mu.Lock()
				defer mu.Unlock()
				for i, e := range page {
					if e.Seq == 5 && failOnce {
						failOnce = false
						return page[i-1].Seq, errors.New("refused") // 3, 4 handled; 5 again
					}
					got = append(got, e.Seq)
				}
				return page[len(page)-1].Seq, nil
			})
	}()
	seen := func(n int) bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n }
	deadline := time.Now().Add(10 * time.Second)
	for !seen(5) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	appendN(t, s, 2) // a later commit wakes it
	for !seen(7) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for s.FollowerLag()["test"] != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []uint64{3, 4, 5, 6, 7, 8, 9}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if c, _ := s.Cursor("test"); c != 9 {
		t.Errorf("durable cursor %d, want 9", c)
	}
	if _, ok := s.FollowerLag()["test"]; ok {
		t.Error("a stopped follower still reports lag")
	}

	// Resume from the saved cursor; Start is only for a first run.
	appendN(t, s, 1)
	ctx2, cancel2 := context.WithCancel(context.Background())
	var resumed []uint64
	err := s.Follow(ctx2, FollowOptions{Name: "test", Cursor: "test", Start: 0}, func(_ context.Context, page []event.Event) (uint64, error) {
		for _, e := range page {
			resumed = append(resumed, e.Seq)
		}
		cancel2()
		return page[len(page)-1].Seq, nil
	})
	if err != nil || len(resumed) != 1 || resumed[0] != 10 {
		t.Fatalf("resumed %v (%v), want [10]", resumed, err)
	}
}

// Lag is what a follower has not handled while it works.
func TestFollowerLag(t *testing.T) {
	s := openStore(t, Options{Dir: t.TempDir()})
	appendN(t, s, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	block := make(chan struct{})
	inFn := make(chan struct{}, 1)
	go s.Follow(ctx, FollowOptions{Name: "slow", Page: 1}, func(context.Context, []event.Event) (uint64, error) {
		select {
		case inFn <- struct{}{}:
		default:
		}
		<-block
		return 0, context.Canceled
	})
	<-inFn
	if lag := s.FollowerLag()["slow"]; lag != 4 {
		t.Errorf("lag %d while the first event is in hand, want 4", lag)
	}
	cancel()
	close(block)
}

// A tail reads after its position, moves past what a filter skips, wakes
// on the next commit, and reports lag at what its owner handled; tails
// sharing a name report the furthest behind.
func TestTail(t *testing.T) {
	s := openStore(t, Options{Dir: t.TempDir()})
	appendN(t, s, 3) // seq 1-3, building "1"
	if err := s.Append(context.Background(), mkEvent(t, event.SystemFault, "", "2")); err != nil {
		t.Fatal(err)
	}
	a, b := s.Tail("sse guard", 0), s.Tail("sse guard", 0)
	defer b.Close()

	page, err := a.Read(10, Filter{Building: "2"})
	if err != nil || len(page) != 1 || page[0].Seq != 4 || a.After() != 4 {
		t.Fatalf("filtered read: %v after %d (%v), want seq 4 after 4", page, a.After(), err)
	}
	raw, skipped, err := b.ReadRaw(2)
	if err != nil || len(raw) != 2 || skipped != 0 || b.After() != 2 {
		t.Fatalf("raw read: %d events, skipped %d, after %d (%v)", len(raw), skipped, b.After(), err)
	}
	a.Handled(4)
	b.Handled(1)
	if lag := s.FollowerLag()["sse guard"]; lag != 3 {
		t.Errorf("lag %d, want 3 (the tail at 1 of 4)", lag)
	}
	a.Close()
	b.Handled(2)
	if lag := s.FollowerLag()["sse guard"]; lag != 2 {
		t.Errorf("lag %d after the other tail closed, want 2", lag)
	}

	if page, _ := a.Read(10, Filter{}); len(page) != 0 {
		t.Fatalf("read %d events at the end of the log", len(page))
	}
	select {
	case <-a.Changed():
		t.Fatal("Changed closed with no commit")
	default:
	}
	appendN(t, s, 1)
	select {
	case <-a.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("Changed did not close on a commit")
	}
	a.Seek(1)
	if page, _ := a.Read(1, Filter{}); len(page) != 1 || page[0].Seq != 2 {
		t.Fatalf("after Seek(1) read %v, want seq 2", page)
	}
}
