package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/action"
	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/calibrate"
	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/console"
	"github.com/smartcommunity/warden/edge/gateway"
	"github.com/smartcommunity/warden/edge/ingest"
	"github.com/smartcommunity/warden/edge/liveview"
	"github.com/smartcommunity/warden/edge/store"
)

// The test assembles the same real parts edge/gateway does (store, embedded
// broker, MQTT client, ingest, alarm manager, API, console) from a parsed
// config, so that it can stop them and start new ones on the same data
// directory under an open browser tab: a gateway restart.

const (
	guardToken = "e2e-guard-token-0123456789"
	adminToken = "e2e-admin-token-0123456789"
	userName   = "wang"
	userPass   = "night-shift-2026"
)

type stack struct {
	dir      string
	cfg      *config.Config
	st       *store.Store
	audit    *audit.Log
	alarms   *alarm.Manager
	api      *api.Server
	console  *console.Console
	apiAddr  string
	broker   *bus.Broker
	devices  *bus.Client // publishes as the devices would
	cams     camera.Set  // one camera on liveCameraURL, played live in the page
	stop     func()
	internal string
}

// liveCameraURL is the RTSP replay every stack's camera reads; it outlives
// the stacks, as a camera outlives a gateway restart.
var liveCameraURL string

// hevcCameraURL is the same picture in H.265 on the same replay ("" where
// ffmpeg cannot encode it): the main stream of hevc-cam, whose sub-stream is
// liveCameraURL (the console plays that, over WebRTC or LL-HLS), and the
// only stream of hevc-only (LL-HLS where the browser decodes H.265, else
// its tile says why).
var hevcCameraURL string

func logger() *slog.Logger {
	if os.Getenv("E2E_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// userHash is the same for every start: one config file across a restart
// (a new hash would be a password change, which ends the sessions).
var userHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(userPass), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return h
})

func siteConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	hash := userHash()
	y := fmt.Sprintf(`gateway: {id: gw-e2e, site: e2e-site, data_dir: %q}
mqtt:
  embedded: {listen: "127.0.0.1:0", allow_anonymous: true}
api:
  listen: "127.0.0.1:0"
  tokens:
    - {name: guard-desk, token: %q, role: guard}
    - {name: site-admin, token: %q, role: admin}
  users:
    - {username: %s, password_hash: %q, role: guard}
  session_ttl: 1h
places:
  buildings: {"3": "3 号楼（东区）"}
  zones: {north-gate: 北门岗}
devices:
  - {id: gas-3-2-201, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-3-2-201",
     location: {building: "3", unit: "2", room: "201"}}
  - {id: gas-5-1-102, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-5-1-102",
     location: {building: "5", unit: "1", room: "102"}}
  - {id: gas-6-1-301, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-6-1-301",
     location: {building: "6", unit: "1", room: "301"}}
  - {id: valve-3-2-201, kind: gas_valve, driver: zigbee2mqtt, topic: "zigbee2mqtt/valve-3-2-201",
     location: {building: "3", unit: "2", room: "201"}}
  - {id: gate-north, kind: barrier_gate, driver: generic, topic: "gate/north", location: {zone: north-gate}}
`, filepath.Join(dir, "data"), guardToken, adminToken, userName, string(hash))
	if liveCameraURL != "" {
		// a throw camera for the calibration page, on the same picture
		y += fmt.Sprintf(`cameras:
  - id: facade-cam
    url: %q
    detect:
      fps: 10
      throw: {facade: {top_y: 60, bottom_y: 340, left_x: 80, right_x: 560, floors: 10}}
`, liveCameraURL)
	}
	path := filepath.Join(dir, "e2e.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, gateway.Checks...)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackIn(t, t.TempDir())
}

// startStackIn starts the parts on dir's data, as a restarted gateway would.
func startStackIn(t *testing.T, dir string) *stack {
	t.Helper()
	cfg := siteConfig(t, dir)
	log := logger()
	s := &stack{dir: dir, cfg: cfg, internal: "internal-e2e-secret"}
	var err error
	s.st, err = store.Open(store.Options{Dir: cfg.Gateway.DataDir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if s.audit, err = audit.New(s.st.DB(), log); err != nil {
		t.Fatal(err)
	}
	router, err := ingest.New(ingest.Options{
		Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Devices: cfg.Devices,
		Registry: drivers.Default, Store: s.st, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.console, err = console.New(console.Options{
		Users: cfg.API.Users, Tokens: cfg.API.Tokens, SessionTTL: cfg.API.SessionTTL.D(),
		Audit: s.audit, DB: s.st.DB(), Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.api = api.New(api.Options{
		Events: s.st, Media: s.st, DeadLetters: s.st,
		Devices: func() []api.DeviceStatus {
			var out []api.DeviceStatus
			for _, d := range router.Devices() {
				out = append(out, api.DeviceStatus{ID: d.ID, Kind: d.Kind, Driver: d.Driver, Location: d.Location,
					LastSeen: d.LastSeen, Online: !d.LastSeen.IsZero()})
			}
			return out
		},
		Cameras:  func() []api.CameraStatus { return s.cams.Status() },
		Snapshot: func(ctx context.Context, id string) ([]byte, time.Time, error) { return s.cams.Snapshot(ctx, id) },
		Recent: func(ctx context.Context, id string, d time.Duration) ([]byte, error) {
			return s.cams.Recent(ctx, id, d)
		},
		Tokens:      cfg.API.Tokens,
		SessionAuth: s.console.SessionAuth,
		Heartbeat:   2 * time.Second,
		Logger:      log,
	})
	s.alarms, err = alarm.New(alarm.Options{
		DB: s.st.DB(), Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site,
		EscalateAfter: 5 * time.Second, // the alarm left open is escalated during the test
		Sink:          s.st, Source: s.st, Audit: s.audit, Logger: log,
		Notify: []func(alarm.Change){func(c alarm.Change) { s.api.PublishLive("alarm", c.Alarm.Rev, c.Payload()) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	act, err := action.NewActuators(cfg.Devices, drivers.Default, s.audit, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if liveCameraURL != "" {
		deps := camera.Deps{Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Sink: s.st, Media: s.st, Log: log, MaxBackoff: time.Second}
		s.cams = camera.Set{camera.New(config.Camera{ID: "gate-cam", DisplayName: "北门", URL: liveCameraURL, Detect: config.Detect{FPS: 5}}, deps),
			camera.New(cfg.Cameras[0], deps)}
		if hevcCameraURL != "" {
			s.cams = append(s.cams, camera.New(config.Camera{ID: "hevc-cam", DisplayName: "东门 H.265", URL: hevcCameraURL,
				Detect: config.Detect{URL: liveCameraURL}}, deps),
				camera.New(config.Camera{ID: "hevc-only", DisplayName: "西门 H.265", URL: hevcCameraURL}, deps))
		}
	}
	lv, err := liveview.New(liveview.Options{Cameras: s.cams, MaxViewers: 2, Logger: log, HLSIdle: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.api.Mount(api.Handlers{Alarms: s.alarms.HTTP(), Actions: act.HTTP(), Console: s.console.HTTP(), Places: gateway.PlacesHandler(cfg),
		Live: lv.HTTP(),
		Calibration: calibrate.New(calibrate.Options{Config: cfg, Cameras: s.cams, Audit: s.audit, Logger: log,
			Validate: func(ov []byte) (*config.Config, error) { return config.LoadWith(cfg.Path(), ov, gateway.Checks...) }}).HTTP()})

	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		t.Fatal(err)
	}
	s.apiAddr = ln.Addr().String()
	s.broker, err = bus.StartBroker(bus.BrokerOptions{
		Listen: cfg.MQTT.Embedded.Listen, AllowAnonymous: true,
		Internal: bus.Credentials{Username: "warden-gateway", Password: s.internal},
		Logger:   log,
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	run("store", s.st.Run)
	run("ingest", router.Run)
	run("alarm", s.alarms.Run)
	run("api", func(ctx context.Context) error { return s.api.Serve(ctx, ln) })
	run("live view", lv.Run)
	for _, c := range s.cams {
		run("camera", c.Run)
	}

	gw, err := bus.Connect(ctx, bus.ClientOptions{
		URL: "tcp://" + s.broker.Addr(), ClientID: "warden-gateway-e2e", Username: "warden-gateway", Password: s.internal,
		Subscriptions: router.Filters(),
		OnMessage: func(m *bus.Message) {
			router.Handle(ingest.Message{Topic: m.Topic, Payload: m.Payload, Dup: m.Dup, Received: m.Received, Ack: m.Ack})
		},
		Logger: log,
	})
	if err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	act.SetPublisher(gw)
	s.devices, err = bus.Connect(ctx, bus.ClientOptions{URL: "tcp://" + s.broker.Addr(), ClientID: "devices-e2e", Logger: log})
	if err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ccancel()
			_ = s.devices.Close(cctx)
			_ = gw.Close(cctx)
			cancel()
			wg.Wait()
			_ = s.broker.Close()
			_ = s.st.Close()
		})
	}
	t.Cleanup(s.stop)
	waitHTTP(t, "http://"+s.apiAddr+"/healthz")
	return s
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not up after 20s", url)
}

// proxy forwards TCP to the API; cut drops every connection and refuses new
// ones for a while, like a Wi-Fi drop between the guard's browser and the gateway.
type proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	downUntil time.Time
	wg        sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut(0)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// retarget sends new connections to target and accepts them again.
func (p *proxy) retarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target, p.downUntil = target, time.Time{}
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := time.Now().Before(p.downUntil)
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// cut closes every open connection and refuses new ones for d; it returns
// how many client connections it dropped.
func (p *proxy) cut(d time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.downUntil = time.Now().Add(d)
	n := 0
	for c := range p.conns {
		c.Close()
		n++
	}
	return n / 2
}
