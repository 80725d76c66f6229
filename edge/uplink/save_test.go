package uplink

import (
	"context"
	"slices"
	"strings"
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
	u, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := u.env.NewTarget("http", "http")
	if err != nil {
		t.Fatal(err)
	}
	sv := NewSaver(tg)
	ctx := t.Context()
	for i := 1; i < maxUnsaved; i++ {
		tg.Advance(uint64(i), 1)
		if err := sv.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tg.Advance(maxUnsaved, 1)
	blocked := make(chan error, 1)
	go func() { blocked <- sv.Ack(ctx) }()
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
	go func() { done <- sv.Run(ctx, stop) }()
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
	tg.Advance(maxUnsaved+5, 5)
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
		_ = sv.Ack(cctx)
	}
	cancel()
	if err := sv.Ack(cctx); err == nil {
		t.Fatal("ack with too many unsaved and ctx canceled returned nil")
	}
}

// A target the config names but the binary does not link is an error at
// New, not an uplink that silently delivers nothing.
func TestConfiguredTargetMustBeLinked(t *testing.T) {
	c := &config.Uplink{HTTP: &config.UplinkHTTP{URL: "http://x"}, MQTT: &config.UplinkMQTT{Broker: "tcp://127.0.0.1:1"}}
	http := Kind{Name: "http"}
	if err := linked(c, []Kind{http}); err == nil || !strings.Contains(err.Error(), "no mqtt target is linked") {
		t.Fatalf("linked = %v, want the missing mqtt kind named", err)
	}
	if err := linked(c, []Kind{http, {Name: "mqtt"}}); err != nil {
		t.Fatalf("both linked: %v", err)
	}
}

func TestRegisterRefusesTwins(t *testing.T) {
	k := Kind{Name: "twin-test", Order: 99, New: func(*Env) ([]Runner, error) { return nil, nil }}
	Register(k)
	defer func() {
		kindsMu.Lock()
		kinds = slices.DeleteFunc(kinds, func(o Kind) bool { return o.Name == k.Name })
		kindsMu.Unlock()
		if recover() == nil {
			t.Error("a second kind of the same name was accepted")
		}
	}()
	Register(k)
}
