package uplink

import (
	"context"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
)

// The saver holds delivery back at maxUnsaved unsaved batches, a save
// lets it go on, and a stop saves the last cursor.
func TestSaverBoundsUnsavedBatches(t *testing.T) {
	st := storetest.Open(t, store.Options{})
	u, err := New(Options{Store: st, Config: config.Uplink{HTTP: &config.UplinkHTTP{URL: "http://127.0.0.1:1/", Media: new(bool)}}})
	if err != nil {
		t.Fatal(err)
	}
	tg := u.targets[0]
	sv := newSaver(tg)
	ctx := t.Context()
	for i := 1; i < maxUnsaved; i++ {
		tg.advance(uint64(i), 1)
		if err := sv.ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tg.advance(maxUnsaved, 1)
	blocked := make(chan error, 1)
	go func() { blocked <- sv.ack(ctx) }()
	select {
	case err := <-blocked:
		t.Fatalf("ack %d returned %v without a save", maxUnsaved, err)
	case <-time.After(200 * time.Millisecond):
	}
	if c, _ := st.Cursor("uplink:http"); c != 0 {
		t.Fatalf("cursor saved as %d with no saver running", c)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- sv.run(ctx, stop) }()
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ack still blocked after the saver ran")
	}
	if c, _ := st.Cursor("uplink:http"); c != maxUnsaved {
		t.Fatalf("saved cursor %d, want %d", c, maxUnsaved)
	}
	tg.advance(maxUnsaved+5, 5)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Cursor("uplink:http"); c != maxUnsaved+5 {
		t.Fatalf("cursor after stop %d, want %d", c, maxUnsaved+5)
	}

	// A canceled wait returns ctx's error.
	cctx, cancel := context.WithCancel(ctx)
	for range maxUnsaved - 1 {
		_ = sv.ack(cctx)
	}
	cancel()
	if err := sv.ack(cctx); err == nil {
		t.Fatal("ack with too many unsaved and ctx canceled returned nil")
	}
}
