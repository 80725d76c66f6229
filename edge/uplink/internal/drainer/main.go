// Command drainer is a test-only process: it opens the store in -dir and
// runs the uplink to -url until killed. The crash test kill -9s it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/uplink"
	_ "github.com/smartcommunity/warden/edge/uplink/all" // every target kind
)

func main() {
	dir := flag.String("dir", "", "store data dir")
	url := flag.String("url", "", "platform URL")
	batch := flag.Int("batch", 100, "events per batch")
	runID := flag.String("run", "", "sent as X-Run, so the platform knows which process sent a batch")
	viewLib := flag.Bool("gat1400", false, "url is a GA/T 1400 view library (user warden, password s3cret)")
	flag.Parse()
	if err := run(*dir, *url, *batch, *runID, *viewLib); err != nil {
		fmt.Fprintln(os.Stderr, "drainer:", err)
		os.Exit(1)
	}
}

func run(dir, url string, batch int, runID string, viewLib bool) error {
	st, err := store.Open(store.Options{Dir: dir, OpenTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := config.Uplink{
		HTTP:       &config.UplinkHTTP{URL: url, Media: new(bool), Headers: map[string]string{"X-Run": runID}},
		Batch:      batch,
		MinBackoff: config.Duration(10 * time.Millisecond),
		MaxBackoff: config.Duration(100 * time.Millisecond),
	}
	if viewLib {
		cfg.HTTP = nil
		cfg.GAT1400 = &config.GAT1400{URL: url, DeviceID: "33010299011190000253", Username: "warden", Password: "s3cret"}
	}
	u, err := uplink.New(uplink.Options{Gateway: "gw-crash", Store: st, Config: cfg})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Println("ready")
	return u.Run(ctx)
}
