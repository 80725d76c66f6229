// Package gateway assembles Warden from its config: store, MQTT broker and
// client, device ingest, the event publisher and the HTTP API, and runs them
// until the context ends. cmd/warden stays a thin flag parser over it.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/action"
	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/calibrate"
	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/console"
	"github.com/smartcommunity/warden/edge/gallery"
	"github.com/smartcommunity/warden/edge/gate"
	"github.com/smartcommunity/warden/edge/health"
	"github.com/smartcommunity/warden/edge/homeassistant"
	"github.com/smartcommunity/warden/edge/i18n"
	"github.com/smartcommunity/warden/edge/ingest"
	"github.com/smartcommunity/warden/edge/liveness"
	"github.com/smartcommunity/warden/edge/liveview"
	"github.com/smartcommunity/warden/edge/notify"
	_ "github.com/smartcommunity/warden/edge/notify/all" // every notify target kind
	"github.com/smartcommunity/warden/edge/rules"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/uplink"
	_ "github.com/smartcommunity/warden/edge/uplink/all" // every uplink target kind
	"github.com/smartcommunity/warden/edge/vision"
	"github.com/smartcommunity/warden/edge/vision/face"
	"github.com/smartcommunity/warden/edge/zones"
)

// Options tune a gateway beyond its config; the zero value is production.
type Options struct {
	Logger *slog.Logger
	// Ready is called once everything is up (sd_notify READY=1).
	Ready func()
	// Healthy is called periodically while the gateway is healthy (the
	// systemd watchdog).
	Healthy      func()
	HealthyEvery time.Duration
	// Version is announced to Home Assistant.
	Version string
}

// Gateway is one running Warden.
type Gateway struct {
	cfg  *config.Config
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry

	store       *store.Store
	broker      *bus.Broker
	client      *bus.Client
	cmdClient   *bus.Client
	router      *ingest.Router
	api         *api.Server
	apiLn       net.Listener
	audit       *audit.Log
	act         *action.Actuators
	lock        *action.Interlock
	gate        *gate.Controller
	zones       *zones.Zones
	cams        camera.Set
	liveView    *liveview.Server
	console     *console.Console
	gallery     *gallery.Gallery
	faceEngine  *face.Engine
	live        *liveness.Watcher
	alarms      *alarm.Manager
	notify      *notify.Notifier
	uplink      atomic.Pointer[uplink.Uplink]
	mqttUp      atomic.Pointer[bus.Client] // g.client for readyz, set once connected
	pub         *publisher
	rules       *rules.Engine
	ha          *homeassistant.Bridge
	brokerURL   string
	eventsTotal *prometheus.CounterVec
	rulesStart  uint64
	// faceErr is why face recognition is off although configured.
	faceErr error
	// commands are the actuators' command topics (broker guard, rules).
	commands *drivers.CommandSpace
	// internalPass is the embedded broker password of our own client,
	// new on every start and never written anywhere.
	internalPass string
}

// New builds the whole gateway, with its MQTT clients not yet connected:
// it opens the store and binds the listeners, so a bad config, a second
// instance or a busy port fails here, before anything runs.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{cfg: cfg, opts: opts, log: opts.Logger, reg: prometheus.NewRegistry()}
	g.eventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_events_total", Help: "Committed events, by type and severity."}, []string{"type", "severity"})
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), g.eventsTotal)
	if err := g.build(); err != nil {
		g.closeAll()
		return nil, err
	}
	return g, nil
}

func (g *Gateway) build() (err error) {
	cfg := g.cfg

	g.store, err = store.Open(store.Options{
		Dir:           cfg.Gateway.DataDir,
		OpenTimeout:   cfg.Store.OpenTimeout.D(),
		MaxAge:        time.Duration(cfg.Retention.EventsDays) * 24 * time.Hour,
		MaxBytes:      eventBudget(cfg),
		MediaMaxBytes: cfg.Retention.MediaMaxBytes,
		// Critical events not yet delivered upstream are never evicted. The
		// uplink needs the store to exist, so it is looked up late.
		Protect: func() uint64 {
			if u := g.uplink.Load(); u != nil {
				return u.Protect()
			}
			return 1
		},
		Logger:     g.log,
		Registerer: g.reg,
	})
	if err != nil {
		return err
	}
	// Before anything can commit events, so the rules miss none.
	if g.rulesStart, err = rules.PrepareCursor(g.store); err != nil {
		return err
	}
	if g.audit, err = audit.New(g.store.DB(), g.log); err != nil {
		return err
	}
	// Before anything that can fail to store an alarm's event (the
	// interlock, ingest): they hand such events to it. Its notifications
	// start with Run, once the API exists.
	g.alarms, err = alarm.New(alarm.Options{
		DB: g.store.DB(), Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site,
		EscalateAfter: cfg.Alarms.EscalateAfter.D(), Priorities: cfg.Alarms.Priorities,
		Duty: cfg.Alarms.Duty, AcceptWithin: cfg.Alarms.AcceptWithin.D(), Places: places(cfg),
		Sink:   g.store, // records alarm.* events
		Source: g.store, // Run follows the event log
		Audit:  g.audit,
		Notify: []func(alarm.Change){func(c alarm.Change) {
			g.api.PublishLive("alarm", c.Alarm.Rev, c.Payload())
		}},
		Logger: g.log, Registerer: g.reg,
	})
	if err != nil {
		return err
	}
	g.notify, err = notify.New(notify.Options{Config: cfg.Notify, Devices: cfg.Devices,
		EscalateAfter: cfg.Alarms.EscalateAfter.D(), DB: g.store.DB(), Timeline: g.alarms, Media: g.store, Places: places(cfg),
		Lang:   cfg.Notify.Language,
		Logger: g.log, Registerer: g.reg})
	if err != nil {
		return err
	}
	if g.notify.Enabled() {
		g.alarms.AddNotify(g.notify.Observe)
	}
	if g.act, err = action.NewActuators(cfg.Devices, drivers.Default, g.audit, g.log, g.reg); err != nil {
		return err
	}
	g.lock, err = action.NewInterlock(g.act, action.InterlockOptions{
		Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Sink: g.store,
		Unstored: g.alarms.HoldUnstored,
		Logger:   g.log, Registerer: g.reg,
	})
	if err != nil {
		return err
	}
	g.zones, err = zones.New(zones.Options{Zones: cfg.Alarms.Zones, DB: g.store.DB(), Audit: g.audit,
		Logger: g.log, Registerer: g.reg})
	if err != nil {
		return err
	}
	g.gate, err = gate.New(gate.Options{
		Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Config: cfg.Gate, Devices: cfg.Devices,
		Opener: g.act, DB: g.store.DB(), Audit: g.audit, Logger: g.log, Registerer: g.reg,
	})
	if err != nil {
		return err
	}
	g.live, err = liveness.New(liveness.Options{
		Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Devices: cfg.Devices, Config: cfg.Liveness, Registry: drivers.Default,
		Sink: g.store, DB: g.store.DB(), Logger: g.log, Registerer: g.reg,
	})
	if err != nil {
		return err
	}
	g.router, err = ingest.New(ingest.Options{
		Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site,
		Devices: cfg.Devices, Registry: drivers.Default, Store: g.store, Media: g.store,
		// Safety first: the interlock acts before anything else; liveness
		// sees the final events last.
		Actors:          []ingest.Actor{g.lock, g.zones, g.gate, g.live},
		MaxPayloadBytes: cfg.MQTT.MaxPayloadBytes,
		Unstored:        g.alarms.ShowUnstored,
		Logger:          g.log, Registerer: g.reg,
	})
	if err != nil {
		return err
	}
	up, err := uplink.New(uplink.Options{
		Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Config: cfg.Uplink, Store: g.store,
		Sealed: g.sealedPicture, Logger: g.log, Registerer: g.reg,
	})
	if err != nil {
		return err
	}
	g.uplink.Store(up)
	g.apiLn, err = net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", cfg.API.Listen, err)
	}
	g.commands = drivers.Default.CommandSpace(cfg.Devices)
	if cfg.MQTT.Broker == "" {
		g.internalPass = randomSecret()
		g.broker, err = bus.StartBroker(bus.BrokerOptions{
			Listen:         cfg.MQTT.Embedded.Listen,
			AllowAnonymous: cfg.MQTT.Embedded.AllowAnonymous,
			Users:          cfg.MQTT.Embedded.Users,
			ACL:            cfg.MQTT.Embedded.ACL,
			Internal:       bus.Credentials{Username: internalUser, Password: g.internalPass},
			MaxInflight:    cfg.MQTT.Embedded.MaxInflight,
			PersistPath:    persistPath(cfg),
			Reserved:       []string{cfg.MQTT.ClientID, cfg.MQTT.ClientID + "-cmd"},
			Commands:       g.commands,
			CommandUsers:   cfg.MQTT.Embedded.CommandUsers,
			MaxPacketBytes: cfg.MQTT.Embedded.MaxPacketBytes,
			MaxClients:     cfg.MQTT.Embedded.MaxClients,
			ConnectTimeout: cfg.MQTT.Embedded.ConnectTimeout.D(),
			Inline:         g.inlineIngest(),
			Logger:         g.log,
			Registerer:     g.reg,
		})
		if err != nil {
			return fmt.Errorf("mqtt: embedded broker: %w", err)
		}
		// Commands go out from inside the broker: no TCP hop, and nothing
		// (disk, PUBACK, a hijacked client id) between a detector and its
		// valve.
		g.act.SetPublisher(g.broker)
	}
	g.console, err = console.New(console.Options{
		Users: cfg.API.Users, Tokens: cfg.API.Tokens, SessionTTL: cfg.API.SessionTTL.D(),
		Secure: cfg.API.TLS.Cert != "", Audit: g.audit, DB: g.store.DB(),
		Logger: g.log, Registerer: g.reg,
	})
	if err != nil {
		return err
	}
	detectors := camera.DefaultDetectors()
	if err := g.openGallery(); err != nil {
		// Degraded, not dead: the interlock, alarms and every other
		// camera job run on; guards get a system.fault alarm (Run).
		g.faceErr = err
		g.gallery, g.faceEngine = nil, nil
		g.log.Error("face recognition disabled; everything else runs", "err", err)
		detectors = vision.Factories(map[string]vision.Factory{"face": nil})
	}
	if g.gallery != nil {
		// The live gallery: enrolments through the API apply at once and
		// unknown-face crops are kept for retention.
		detectors = vision.Factories(map[string]vision.Factory{"face": face.Factory(face.Deps{Gallery: g.gallery, Log: g.log})})
	}
	camMetrics := camera.NewMetrics(g.reg)
	for _, cc := range cfg.Cameras {
		g.cams = append(g.cams, camera.New(cc, camera.Deps{
			Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Sink: g.store, Media: g.store,
			Metrics: camMetrics, Log: g.log,
			Detectors: detectors, OfflineGrace: cc.OfflineGrace.D(), StallTimeout: cc.StallTimeout.D(),
		}))
	}
	if g.liveView, err = liveview.New(liveview.Options{Cameras: g.cams, MaxViewers: cfg.Live.MaxViewers,
		Logger: g.log, Registerer: g.reg}); err != nil {
		return err
	}
	g.api = api.New(api.Options{
		Events:        g.store,
		Media:         g.store,
		DeadLetters:   g.store,
		Devices:       func() []api.DeviceStatus { return g.router.Status(g.live.Status) },
		Cameras:       g.cams.Status,
		SessionAuth:   g.console.SessionAuth,
		Snapshot:      g.cams.Snapshot,
		Recent:        g.cams.Recent,
		Ready:         g.readyChecks(),
		Followers:     g.store.FollowerLag,
		Tokens:        cfg.API.Tokens,
		MetricsPublic: cfg.API.MetricsPublic,
		MaxBodyBytes:  cfg.API.MaxBodyBytes,
		Gatherer:      g.reg,
		Registerer:    g.reg,
		Logger:        g.log,
	})
	h := api.Handlers{
		Alarms: g.alarms.HTTP(), Actions: g.act.HTTP(), Gate: g.gate.HTTP(), Zones: g.zones.HTTP(), Console: g.console.HTTP(),
		Live:   g.liveView.HTTP(),
		Places: PlacesHandler(cfg),
		Uplink: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.WriteJSON(w, http.StatusOK, map[string]any{"targets": g.uplink.Load().Status()})
		}),
	}
	if g.gallery != nil {
		h.Gallery = g.gallery.HTTP(g.faceEngine)
	}
	h.Calibration = calibrate.New(calibrate.Options{Config: cfg, Cameras: g.cams, Audit: g.audit, Logger: g.log,
		Validate: func(overlay []byte) (*config.Config, error) { return config.LoadWith(cfg.Path(), overlay, Checks...) }}).HTTP()
	g.api.Mount(h)
	return g.buildMQTT()
}

// buildMQTT builds the MQTT clients (Run connects them) and what publishes
// through them: the alarm and event mirrors, the rules, Home Assistant.
func (g *Gateway) buildMQTT() (err error) {
	cfg := g.cfg
	g.brokerURL = cfg.MQTT.Broker
	user, pass := cfg.MQTT.Username, cfg.MQTT.Password
	if g.broker != nil {
		g.brokerURL = "tcp://" + g.broker.Addr()
		user, pass = internalUser, g.internalPass
	}
	// Embedded: device topics are ingested inside the broker (inlineIngest),
	// so our client must not subscribe to them.
	subs, unsubs := g.router.Filters(), []string(nil)
	if g.broker != nil {
		subs, unsubs = nil, subs
	}
	if h := cfg.MQTT.HomeAssistant; h.Enabled {
		g.ha = homeassistant.New(homeassistant.Options{
			Gateway: cfg.Gateway.ID, Prefix: h.Prefix, Devices: cfg.Devices, Cameras: cfg.Cameras,
			Info: homeassistant.Info{Version: g.opts.Version}, Readings: g.readings,
			StateFile: filepath.Join(cfg.Gateway.DataDir, "homeassistant.json"), Logger: g.log,
		})
		subs = append(subs, g.ha.Topics().HAStatus())
	}
	g.client, err = bus.NewClient(bus.ClientOptions{
		URL: g.brokerURL, ClientID: cfg.MQTT.ClientID, Username: user, Password: pass,
		StatusTopic:   fmt.Sprintf("warden/%s/status", cfg.Gateway.ID),
		Subscriptions: subs, Unsubscribe: unsubs,
		// Embedded: only messages an older version's session still queues.
		OnMessage: func(m *bus.Message) {
			if g.ha != nil && m.Topic == g.ha.Topics().HAStatus() {
				g.ha.HAStatus(m.Payload)
				m.Ack()
				return
			}
			g.router.Handle(ingest.Message{Topic: m.Topic, Payload: m.Payload, Dup: m.Dup, Received: m.Received, Ack: m.Ack})
		},
		Logger:     g.log,
		Registerer: g.reg,
	})
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	if g.broker == nil {
		// External broker: commands to valves, gates and sirens get their
		// own connection, so they never queue behind the acks and event
		// mirrors of the main one.
		g.cmdClient, err = bus.NewClient(bus.ClientOptions{
			URL: g.brokerURL, ClientID: cfg.MQTT.ClientID + "-cmd", Username: user, Password: pass,
			Logger: g.log,
		})
		if err != nil {
			return fmt.Errorf("mqtt: commands: %w", err)
		}
		g.act.SetPublisher(g.cmdClient)
	}
	// Embedded: the gateway's own publishes (alarms, the event mirror,
	// rules) go out in-process, like its commands.
	var out interface {
		eventPublisher
		PublishNoWait(topic string, qos byte, retain bool, payload []byte)
	} = g.client
	if g.broker != nil {
		out = g.broker
	}
	g.alarms.AddNotify(func(c alarm.Change) {
		out.PublishNoWait("warden/"+cfg.Gateway.ID+"/alarms", 1, false, c.Payload())
	})
	if g.rules, err = rules.New(cfg, rules.Options{Publisher: out, Actuators: g.act, Commands: g.commands,
		Alarms: g.alarms, Logger: g.log, Registerer: g.reg}); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	g.rules.StartAt(g.rulesStart)
	g.pub = newPublisher(g.store, out, cfg.Gateway.ID, g.eventsTotal, g.log)
	if g.ha != nil {
		g.ha.SetPublisher(out)
		g.pub.observe = g.ha.Observe
	}
	return nil
}

// inlineIngest runs device ingest inside the embedded broker: a device's
// QoS 1 publish is PUBACKed only after its event is committed, so the event
// store's group commit is the only fsync on the path (edge/bus README.md,
// "Inline ingest").
func (g *Gateway) inlineIngest() *bus.Inline {
	return &bus.Inline{
		Filters: g.router.Filters(),
		Handle: func(m bus.InlineMessage, done func(error)) {
			g.router.Ingest(ingest.Message{Topic: m.Topic, Payload: m.Payload, Dup: m.Dup, Received: m.Received}, done)
		},
	}
}

const internalUser = "warden-gateway"

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func persistPath(cfg *config.Config) string {
	if p := cfg.MQTT.Embedded.Persist; p != nil && !*p {
		return ""
	}
	return filepath.Join(cfg.Gateway.DataDir, "broker.db")
}

// eventBudget is the tighter of the retention and uplink backlog limits.
func eventBudget(cfg *config.Config) int64 {
	b := cfg.Retention.EventsMaxBytes
	if u := cfg.Uplink.MaxBacklogBytes; u > 0 && (b == 0 || u < b) {
		b = u
	}
	return b
}

// LastSeq is the seq of the newest committed event.
func (g *Gateway) LastSeq() uint64 { return g.store.LastSeq() }

// Registry is the gateway's Prometheus registry.
func (g *Gateway) Registry() *prometheus.Registry { return g.reg }

// APIAddr is the address the API listens on.
func (g *Gateway) APIAddr() string { return g.apiLn.Addr().String() }

// Run connects the MQTT clients, starts the services, and serves until
// ctx ends; then it shuts down in the order that loses nothing: stop the
// API, commit what is queued (and ack it), publish offline, close the
// broker. Everything it starts was built by New.
func (g *Gateway) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	errc := make(chan error, 1)
	start := func(s service) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				select { // the first error is the one reported; never block on the rest
				case errc <- fmt.Errorf("%s: %w", s.name, err):
				default:
				}
				cancel()
			}
		}()
	}
	// fail stops what already runs and releases everything: Run's exits
	// before the gateway is fully up.
	fail := func(err error) error {
		cancel()
		wg.Wait()
		g.closeAll()
		return err
	}
	services := g.services()
	for _, s := range services {
		if s.stage == beforeMQTT {
			start(s)
		}
	}
	if err := g.client.Connect(runCtx); err != nil {
		return fail(fmt.Errorf("mqtt: connect %s: %w", g.brokerURL, err))
	}
	g.mqttUp.Store(g.client) // the API (readyz) already serves: publish the client safely
	if g.cmdClient != nil {
		if err := g.cmdClient.Connect(runCtx); err != nil {
			return fail(fmt.Errorf("mqtt: connect %s for commands: %w", g.brokerURL, err))
		}
	}
	for _, s := range services {
		if s.stage == afterMQTT {
			start(s)
		}
	}
	if g.faceErr != nil {
		g.raiseFault(runCtx, "face", "face.disabled", "face recognition disabled: "+g.faceErr.Error())
	}
	g.log.Info("warden running", "gateway", g.cfg.Gateway.ID, "api", g.APIAddr(), "mqtt", g.brokerURL,
		"devices", len(g.cfg.Devices), "last_seq", g.store.LastSeq())
	if g.opts.Ready != nil {
		g.opts.Ready()
	}
	if g.opts.Healthy != nil && g.opts.HealthyEvery > 0 {
		// Liveness, not readiness: a failing disk or uplink makes the
		// gateway not ready, and a restart would only interrupt the
		// interlock. A stuck safety loop is worth a restart.
		start(service{name: "watchdog", run: func(ctx context.Context) error {
			return health.Watchdog(ctx, g.opts.HealthyEvery, g.lock.Alive, g.opts.Healthy, g.log)
		}})
	}

	<-runCtx.Done()
	var runErr error
	select {
	case runErr = <-errc:
	default:
	}
	cancel()
	wg.Wait()
	g.closeAll()
	g.log.Info("warden stopped", "last_seq", g.store.LastSeq())
	return runErr
}

// stage is when Run starts a service: the API and the store's own jobs
// serve while the MQTT client connects; the rest needs it.
type stage int

const (
	beforeMQTT stage = iota
	afterMQTT
)

// service is one long-running part of the gateway; followers read the
// event log (store.Follow or store.Tail) and show their lag on /readyz.
type service struct {
	name  string
	run   func(context.Context) error
	stage stage
	// follows is the name (or, ending in a space, the prefix) under
	// which the service reads the event log in store.FollowerLag.
	follows string
}

// services is every goroutine Run starts, in start order.
func (g *Gateway) services() []service {
	s := []service{
		{name: "store retention", run: g.store.Run},
		{name: "ingest retry", run: g.router.Run},
		{name: "api", run: func(ctx context.Context) error { return g.api.Serve(ctx, g.apiLn) }},
		{name: "live view", run: g.liveView.Run},

		{name: "interlock", run: g.lock.Run, stage: afterMQTT},
		{name: "alarms", run: g.alarms.Run, stage: afterMQTT, follows: "alarms"},
	}
	if g.notify.Enabled() {
		s = append(s, service{name: "notify", run: g.notify.Run, stage: afterMQTT})
	}
	if len(g.cfg.Rules) > 0 { // no rules: nothing to follow the log for
		s = append(s, service{name: "rules", run: func(ctx context.Context) error { return g.rules.Run(ctx, g.store) },
			stage: afterMQTT, follows: "rules"})
	}
	for _, c := range g.cams {
		s = append(s, service{name: "camera " + c.ID(), run: c.Run, stage: afterMQTT})
	}
	if g.gallery != nil {
		s = append(s, service{name: "face retention", stage: afterMQTT, run: func(ctx context.Context) error {
			g.gallery.RunRetention(ctx, g.cfg.Retention.UnknownFaceDays, time.Hour)
			return nil
		}})
	}
	s = append(s,
		service{name: "gate", run: g.gate.Run, stage: afterMQTT},
		service{name: "liveness", run: g.live.Run, stage: afterMQTT},
		service{name: "uplink", run: g.uplink.Load().Run, stage: afterMQTT, follows: "uplink "},
		service{name: "storage watch", run: g.watchStorage, stage: afterMQTT},
	)
	if g.ha != nil {
		s = append(s, service{name: "homeassistant", run: g.ha.Run, stage: afterMQTT})
	}
	return append(s, service{name: "event publisher", run: g.pub.run, stage: afterMQTT, follows: "mqtt-mirror"})
}

func (g *Gateway) readyChecks() []api.Check {
	return []api.Check{
		{Name: "store", Fn: func() error { return errors.Join(g.store.Healthy(), g.router.Healthy()) }},
		{Name: "uplink", Fn: func() error { return g.uplink.Load().Healthy() }},
		{Name: "mqtt-store", Fn: func() error {
			if g.broker == nil {
				return nil
			}
			return g.broker.Healthy()
		}},
		{Name: "mqtt", Fn: func() error {
			if c := g.mqttUp.Load(); c == nil || !c.Connected() {
				return errors.New("not connected to the broker")
			}
			return nil
		}},
	}
}

func places(cfg *config.Config) i18n.Places {
	cams := map[string]string{}
	for _, c := range cfg.Cameras {
		if c.DisplayName != "" {
			cams[c.ID] = c.DisplayName
		}
	}
	return i18n.Places{Buildings: cfg.Places.Buildings, Zones: cfg.Places.Zones, Sources: cams}
}

// PlacesHandler answers GET /api/v1/places: the words for building, zone
// and camera ids (config places, cameras[].display_name), for the console.
func PlacesHandler(cfg *config.Config) http.Handler {
	cams := places(cfg).Sources
	nz := func(m map[string]string) map[string]string {
		if m == nil {
			return map[string]string{}
		}
		return m
	}
	body := map[string]any{"buildings": nz(cfg.Places.Buildings), "zones": nz(cfg.Places.Zones), "cameras": cams}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { api.WriteJSON(w, http.StatusOK, body) })
}

// openGallery opens the face gallery when a camera recognises faces. Its
// key must exist: templates are never stored unencrypted.
func (g *Gateway) openGallery() error {
	if !slices.ContainsFunc(g.cfg.Cameras, func(c config.Camera) bool { return c.Detect.Face != nil }) {
		return nil
	}
	opts, err := face.SiteOptions(g.cfg.Cameras)
	if err != nil {
		return err
	}
	key, err := gallery.LoadKey(opts.KeyFile)
	if err != nil {
		return fmt.Errorf("face gallery: %w (detect.face.key_file)", err)
	}
	g.gallery, err = gallery.Open(gallery.Options{DB: g.store.DB(), Dir: filepath.Join(g.cfg.Gateway.DataDir, "faces"),
		Key: key, Audit: g.audit, Log: g.log, EventCrops: g.store})
	if err != nil {
		return err
	}
	g.faceEngine, err = face.NewEngine(opts)
	return err
}

// closeAll releases everything that New or Run opened; safe on partial state.
func (g *Gateway) closeAll() {
	if g.apiLn != nil {
		g.apiLn.Close()
	}
	if g.faceEngine != nil {
		g.faceEngine.Close()
	}
	if g.store != nil {
		if err := g.store.Close(); err != nil {
			g.log.Error("store close", "err", err)
		}
	}
	if g.cmdClient != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := g.cmdClient.Close(ctx); err != nil {
			g.log.Warn("mqtt command client close", "err", err)
		}
		cancel()
	}
	if g.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := g.client.Close(ctx); err != nil {
			g.log.Warn("mqtt close", "err", err)
		}
		cancel()
	}
	if g.broker != nil {
		if err := g.broker.Close(); err != nil {
			g.log.Warn("broker close", "err", err)
		}
	}
}

// sealedPicture reads an unknown face's crop or scene for the GA/T 1400
// uplink: the gallery keeps them sealed, outside the event store.
func (g *Gateway) sealedPicture(url string) ([]byte, error) {
	if g.gallery == nil {
		return nil, fmt.Errorf("%s: face gallery is off", url)
	}
	id, ok := strings.CutPrefix(url, gallery.UnknownCropURL(""))
	if !ok || id == "" {
		return nil, fmt.Errorf("%s: not a sealed face picture", url)
	}
	if id, ok := strings.CutSuffix(id, "/scene"); ok {
		return g.gallery.UnknownScene(id)
	}
	return g.gallery.UnknownCrop(id)
}

// readings are the drivers' last measurements by device id.
func (g *Gateway) readings() map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, d := range g.router.Devices() {
		if len(d.Readings) > 0 {
			out[d.ID] = d.Readings
		}
	}
	return out
}
