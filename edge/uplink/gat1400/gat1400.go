package gat1400

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig of the pictures sent
	"io"
	"math"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/uplink"
	"github.com/smartcommunity/warden/edge/uplink/viid"
)

const (
	defaultKeepalive = 50 * time.Second
	// maxClockSkew beyond which evidence times are wrong enough to say so.
	maxClockSkew = 2 * time.Second
	// objectTries before a refused object is dead-lettered (critical ones
	// are kept and retried for ever, as on the HTTP target).
	objectTries = 5
	// maxListBytes caps one POST's pictures, so a backlog of large crops
	// goes in several requests rather than one huge one.
	maxListBytes  = 4 << 20
	maxReplyBytes = 4 << 20
)

// errUnauthorized ends a session: the next one registers again.
var errUnauthorized = errors.New("platform answered 401: registration lost")

// gatTarget sends faces and vehicles to a GA/T 1400 view library, on its
// own cursor: registration with HTTP digest, keepalive, one POST per list
// of objects, and a per-object retry of what the platform refuses.
type gatTarget struct {
	t         *uplink.Target
	cfg       *config.GAT1400
	base      string
	client    *http.Client
	loc       *time.Location
	keepalive time.Duration
	sealed    func(url string) ([]byte, error)
	m         metrics

	mu       sync.Mutex
	chal     *digest.Challenge // nil: the platform asked for no auth
	nc       int
	clockBad bool
}

//go:embed sample.yaml
var sample []byte

func init() {
	uplink.Register(uplink.Kind{Name: "gat1400", Order: 3, New: New, Options: config.GAT1400{}, Sample: sample})
}

// New builds the GA/T 1400 target when the uplink config has gat1400.
func New(e *uplink.Env) ([]uplink.Runner, error) {
	if e.Config.GAT1400 == nil {
		return nil, nil
	}
	t, err := newGATTarget(e, e.Config.GAT1400)
	if err != nil {
		return nil, err
	}
	return []uplink.Runner{t}, nil
}

func newGATTarget(e *uplink.Env, c *config.GAT1400) (*gatTarget, error) {
	if !viid.ValidDeviceID(c.DeviceID) {
		return nil, fmt.Errorf("uplink gat1400: device_id %q is not 20 digits", c.DeviceID)
	}
	base, err := url.Parse(c.URL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("uplink gat1400: url %q is not an http(s) URL", c.URL)
	}
	client, err := e.HTTPClient(c.TLS, c.Timeout.D())
	if err != nil {
		return nil, fmt.Errorf("uplink gat1400: %w", err)
	}
	t, err := e.NewTarget("gat1400", "gat1400")
	if err != nil {
		return nil, err
	}
	ka := c.Keepalive.D()
	if ka <= 0 {
		ka = defaultKeepalive
	}
	loc := e.Location
	if loc == nil {
		loc = time.Local
	}
	return &gatTarget{t: t, m: newMetrics(e.Metrics), cfg: c, base: strings.TrimRight(c.URL, "/"), client: client, loc: loc,
		keepalive: ka, sealed: e.Sealed}, nil
}

// run registers, sends, and registers again after any trouble, until ctx
// ends; then it unregisters.
func (g *gatTarget) Run(ctx context.Context) error { return g.t.Sessions(ctx, g.session) }

// session registers and delivers until something fails or ctx ends.
func (g *gatTarget) session(ctx context.Context) (progressed bool, err error) {
	if err := g.register(ctx); err != nil {
		return false, err
	}
	defer func() {
		if perr := g.t.Persist(context.WithoutCancel(ctx)); perr != nil && err == nil {
			err = perr
		}
		if ctx.Err() != nil {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if _, uerr := g.call(uctx, viid.PathUnRegister, viid.UnRegister(g.cfg.DeviceID)); uerr != nil {
				g.t.Log().Warn("GA/T 1400 unregister failed", "err", uerr)
			} else {
				g.t.Log().Info("GA/T 1400 unregistered")
			}
		}
	}()
	g.checkClock(ctx)

	sctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.keepAlive(sctx, cancel)
	}()
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	// A failed keepalive cancels sctx: its cause is the session's error.
	why := func(err error) error {
		if sctx.Err() != nil && ctx.Err() == nil {
			return context.Cause(sctx)
		}
		return err
	}
	// The next batch is read, its pictures loaded and its lists encoded
	// while the current one is on the wire.
	ready := make(chan gatBatch, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := g.prefetch(sctx, ready); err != nil && sctx.Err() == nil {
			cancel(err)
		}
	}()
	for {
		var b gatBatch
		select {
		case <-sctx.Done():
			return progressed, why(sctx.Err())
		case b = <-ready:
		}
		for _, l := range b.lists {
			if err := g.send(sctx, l); err != nil {
				return progressed, why(err)
			}
		}
		progressed = true
		// Saved at once: pictures make a batch slow to send again, and an
		// fsync is nothing beside a POST of megabytes.
		if err := g.t.Ack(sctx, b.last, 0, true); err != nil {
			return progressed, why(err)
		}
	}
}

// gatBatch is a batch of events made ready to send: its lists of objects,
// each encoded once.
type gatBatch struct {
	last  uint64 // the batch's last seq: the cursor once every list is in
	lists []gatList
}

type gatList struct {
	path, kind string
	objs       []*pending
	body       []byte
}

// prefetch reads batches after the cursor and hands them over prepared.
func (g *gatTarget) prefetch(ctx context.Context, ready chan<- gatBatch) error {
	cfg := g.t.Config()
	after := g.t.Cursor()
	for {
		batch, err := g.t.Next(ctx, after, cfg.Batch, cfg.Linger.D())
		if err != nil {
			return err
		}
		after = batch[len(batch)-1].Seq
		b, err := g.prepare(batch)
		if err != nil {
			return err
		}
		select {
		case ready <- b:
		case <-ctx.Done():
			return nil
		}
	}
}

// keepAlive posts a keepalive every interval; a failure ends the session
// (cancel), which registers again.
func (g *gatTarget) keepAlive(ctx context.Context, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(g.keepalive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := g.call(ctx, viid.PathKeepalive, viid.Keepalive(g.cfg.DeviceID)); err != nil {
			if ctx.Err() == nil {
				cancel(fmt.Errorf("keepalive: %w", err))
			}
			return
		}
	}
}

// register answers the platform's digest challenge (RFC 2617, qop=auth).
func (g *gatTarget) register(ctx context.Context) error {
	g.mu.Lock()
	g.chal, g.nc = nil, 0
	g.mu.Unlock()
	st, err := g.call(ctx, viid.PathRegister, viid.Register(g.cfg.DeviceID))
	if errors.Is(err, errUnauthorized) && g.challenged() {
		st, err = g.call(ctx, viid.PathRegister, viid.Register(g.cfg.DeviceID))
	}
	if err != nil {
		g.m.viidRegs.WithLabelValues("failed").Inc()
		return fmt.Errorf("register: %w", err)
	}
	g.m.viidRegs.WithLabelValues("ok").Inc()
	g.t.Log().Info("GA/T 1400 registered", "url", g.base, "device_id", g.cfg.DeviceID, "status", st.StatusString)
	return nil
}

// challenged reports whether the last 401 left a digest challenge we can answer.
func (g *gatTarget) challenged() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.chal != nil
}

// call POSTs one object and reads its single status.
func (g *gatTarget) call(ctx context.Context, p string, body any) (viid.Status, error) {
	js, err := json.Marshal(body)
	if err != nil {
		return viid.Status{}, err
	}
	r := g.do(ctx, http.MethodPost, p, js)
	if r.Err != nil {
		return viid.Status{}, r.Err
	}
	if r.Status < 200 || r.Status >= 300 {
		return viid.Status{}, fmt.Errorf("%s: %s", p, r)
	}
	sts, err := viid.ParseStatuses(r.Body)
	if err != nil {
		return viid.Status{}, fmt.Errorf("%s: %w", p, err)
	}
	if len(sts) == 0 || !sts[0].OK() {
		s := viid.Status{StatusCode: "?"}
		if len(sts) > 0 {
			s = sts[0]
		}
		return s, fmt.Errorf("%s: StatusCode %s: %s", p, s.StatusCode, s.StatusString)
	}
	return sts[0], nil
}

// do sends one request with the GA/T 1400 headers and, once challenged, a
// digest Authorization with the next nonce count. A 401 keeps the new
// challenge and returns errUnauthorized.
func (g *gatTarget) do(ctx context.Context, method, p string, body []byte) uplink.Result {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+p, rd)
	if err != nil {
		return uplink.Result{Err: err}
	}
	req.Header.Set("User-Identify", g.cfg.DeviceID)
	req.Header.Set("Content-Type", viid.ContentType)
	req.Header.Set("Accept", viid.ContentType+", application/json")
	req.Header.Set("User-Agent", "warden-uplink")
	g.mu.Lock()
	if g.chal != nil {
		g.nc++
		cred, derr := digest.Digest(g.chal, digest.Options{
			Method: method, URI: req.URL.RequestURI(), Count: g.nc,
			Username: g.cfg.Username, Password: g.cfg.Password,
		})
		if derr != nil {
			g.mu.Unlock()
			return uplink.Result{Err: fmt.Errorf("digest: %w", derr)}
		}
		req.Header.Set("Authorization", cred.String())
	}
	g.mu.Unlock()
	// A list's reply has a status per object: keep all of it.
	r := uplink.Do(g.client, req, maxReplyBytes)
	if r.Err == nil && r.Status == http.StatusUnauthorized {
		g.mu.Lock()
		g.chal = nil
		if c, err := digest.FindChallenge(r.Header); err == nil && digest.CanDigest(c) {
			g.chal, g.nc = c, 0
		}
		g.mu.Unlock()
		r.Err = errUnauthorized
	}
	return r
}

// checkClock reads the platform's time and raises system.clock when ours
// is more than maxClockSkew off: evidence timestamps would be wrong.
func (g *gatTarget) checkClock(ctx context.Context) {
	t0 := time.Now()
	r := g.do(ctx, http.MethodGet, viid.PathTime, nil)
	t1 := time.Now()
	if r.Err != nil || r.Status != http.StatusOK {
		g.t.Log().Warn("GA/T 1400 time not read; clock not checked", "err", r)
		return
	}
	var st viid.SystemTime
	if err := json.Unmarshal(r.Body, &st); err != nil {
		g.t.Log().Warn("GA/T 1400 time reply not understood; clock not checked", "err", err)
		return
	}
	theirs, err := viid.ParseLocalTime(st.SystemTimeObject.LocalTime, g.loc)
	if err != nil {
		g.t.Log().Warn("GA/T 1400 time reply not understood; clock not checked", "err", err)
		return
	}
	mid := t0.Add(t1.Sub(t0) / 2)
	// The platform's time has whole seconds: compare with ours rounded
	// down, so a right clock never reads as up to 1 s off.
	skew := mid.Truncate(time.Second).Sub(theirs)
	g.mu.Lock()
	was := g.clockBad
	g.clockBad = skew > maxClockSkew || skew < -maxClockSkew
	bad := g.clockBad
	g.mu.Unlock()
	switch {
	case bad && !was:
		g.t.Log().Warn("gateway clock differs from the GA/T 1400 platform's; evidence times are off", "skew", skew.Round(time.Millisecond))
		ev := event.New(g.t.Env().Origin(g.t.Name()), event.SystemClock, map[string]any{
			"reason":        fmt.Sprintf("gateway clock is %.1f s off the view library's (allowed ±%.0f s)", skew.Seconds(), maxClockSkew.Seconds()),
			"reason_code":   "clock.skew",
			"skew_seconds":  math.Round(skew.Seconds()*10) / 10,
			"platform_time": st.SystemTimeObject.LocalTime,
			"gateway_time":  viid.Time(mid, g.loc),
			"target":        g.t.Name(),
		})
		if err := g.t.Env().Store.Append(ctx, ev); err != nil && ctx.Err() == nil {
			g.t.Log().Error("could not record the system.clock event", "err", err)
		}
	case !bad && was:
		g.t.Log().Info("gateway clock agrees with the GA/T 1400 platform again", "skew", skew.Round(time.Millisecond))
	}
}

// pending is one object waiting for the platform's StatusCode 0.
type pending struct {
	raw   store.Raw
	id    string // FaceID or MotorVehicleID
	obj   any
	size  int
	tries int
	held  bool // a critical one refused: alarm raised, retried for ever
}

// prepare turns a batch into lists of faces and of vehicles (other events
// are skipped), at most maxListBytes each, in seq order, encoded.
func (g *gatTarget) prepare(batch []store.Raw) (gatBatch, error) {
	var faces, vehicles []*pending
	for _, r := range batch {
		p, kind, err := g.object(r)
		if err != nil {
			g.t.Log().Error("event not convertible to GA/T 1400; skipped", "seq", r.Seq, "type", r.Type, "err", err)
			continue
		}
		switch kind {
		case "face":
			faces = append(faces, p)
		case "vehicle":
			vehicles = append(vehicles, p)
		}
	}
	b := gatBatch{last: batch[len(batch)-1].Seq}
	for _, k := range []gatList{{path: viid.PathFaces, kind: "face", objs: faces}, {path: viid.PathVehicles, kind: "vehicle", objs: vehicles}} {
		objs := k.objs
		for len(objs) > 0 {
			n, size := 0, 0
			for n < len(objs) && (n == 0 || size+objs[n].size <= maxListBytes) {
				size += objs[n].size
				n++
			}
			body, err := encodeList(k.kind, objs[:n])
			if err != nil {
				return gatBatch{}, err
			}
			b.lists = append(b.lists, gatList{path: k.path, kind: k.kind, objs: objs[:n], body: body})
			objs = objs[n:]
		}
	}
	return b, nil
}

// send posts one list. The objects the reply refuses are retried alone,
// with backoff, before the next list; after objectTries a non-critical one
// is dead-lettered, a critical one raises an alarm and is retried for ever.
func (g *gatTarget) send(ctx context.Context, l gatList) error {
	refused, err := g.post(ctx, l.path, l.kind, l.objs, l.body)
	if err != nil {
		return err
	}
	g.accepted(len(l.objs) - len(refused))
	bo := g.t.NewBackoff()
	for len(refused) > 0 {
		var retry []*pending
		for _, o := range refused {
			o.tries++
			switch {
			case o.raw.Severity == event.Critical:
				if !o.held {
					o.held = true
					g.t.RejectedCritical(ctx, o.raw, http.StatusOK, []byte("GA/T 1400 view library refused object "+o.id))
				}
				retry = append(retry, o)
			case o.tries >= objectTries:
				msg := fmt.Sprintf("GA/T 1400 view library refused object %s %d times", o.id, o.tries)
				if err := g.t.DeadLetter(ctx, o.raw, http.StatusOK, []byte(msg)); err != nil {
					return err
				}
			default:
				retry = append(retry, o)
			}
		}
		if len(retry) == 0 {
			break
		}
		g.t.Fail(fmt.Errorf("%s: %d objects refused; retrying them alone", l.path, len(retry)))
		if err := uplink.Sleep(ctx, bo.NextBackOff()); err != nil {
			return err
		}
		refused = refused[:0]
		for _, o := range retry {
			one, err := g.post(ctx, l.path, l.kind, []*pending{o}, nil)
			if err != nil {
				return err
			}
			g.accepted(1 - len(one))
			refused = append(refused, one...)
		}
	}
	return nil
}

func (g *gatTarget) accepted(n int) {
	if n > 0 {
		g.t.Delivered(n)
	}
}

// post sends one list and returns the objects the reply refuses. A
// transport error, a 5xx or a 401 is a session error (everything from the
// cursor is sent again, with the same ids); any other 4xx refuses the
// whole list.
func (g *gatTarget) post(ctx context.Context, p, kind string, list []*pending, js []byte) ([]*pending, error) {
	if js == nil {
		var err error
		if js, err = encodeList(kind, list); err != nil {
			return nil, err
		}
	}
	r := g.do(ctx, http.MethodPost, p, js)
	switch {
	case r.Err != nil:
		return nil, fmt.Errorf("post %s: %w", p, r.Err)
	case r.Status >= 200 && r.Status < 300:
	case r.Rejects():
		g.m.viidRefused.WithLabelValues(fmt.Sprintf("http_%d", r.Status)).Add(float64(len(list)))
		g.t.Log().Error("GA/T 1400 platform refused a list", "path", p, "objects", len(list), "status", r.Status, "response", uplink.Truncate(r.Body, 200))
		return list, nil
	default:
		return nil, fmt.Errorf("post %s: %s", p, r)
	}
	sts, err := viid.ParseStatuses(r.Body)
	if err != nil {
		return nil, fmt.Errorf("post %s: %w", p, err)
	}
	byID := make(map[string]viid.Status, len(sts))
	for _, s := range sts {
		if s.ID != "" {
			byID[s.ID] = s
		}
	}
	var refused []*pending
	for i, o := range list {
		s, ok := byID[o.id]
		switch {
		case ok:
		case len(sts) == len(list):
			s = sts[i]
		case len(sts) == 1: // one status for the whole list
			s = sts[0]
		default:
			s = viid.Status{StatusCode: "?", StatusString: fmt.Sprintf("no status for this object among %d", len(sts))}
		}
		if s.OK() {
			g.m.viidObjects.WithLabelValues(kind).Inc()
			continue
		}
		g.m.viidRefused.WithLabelValues(string(s.StatusCode)).Inc()
		g.t.Log().Warn("GA/T 1400 platform refused an object; retried alone", "id", o.id, "seq", o.raw.Seq,
			"code", string(s.StatusCode), "reason", s.StatusString)
		refused = append(refused, o)
	}
	return refused, nil
}

// encodeList is the body of a FaceList or MotorVehicleList.
func encodeList(kind string, list []*pending) ([]byte, error) {
	var body any
	switch kind {
	case "face":
		var l viid.FaceList
		for _, o := range list {
			l.FaceListObject.FaceObject = append(l.FaceListObject.FaceObject, o.obj.(viid.Face))
		}
		body = l
	default:
		var l viid.MotorVehicleList
		for _, o := range list {
			l.MotorVehicleListObject.MotorVehicleObject = append(l.MotorVehicleListObject.MotorVehicleObject, o.obj.(viid.MotorVehicle))
		}
		body = l
	}
	return json.Marshal(body)
}

// object turns a face or gate event into its GA/T 1400 object; kind ""
// for events the view library does not take.
func (g *gatTarget) object(r store.Raw) (*pending, string, error) {
	switch r.Type {
	case event.FaceRecognized, event.FaceUnknown, event.FaceWatchlist, event.GateVehicle, event.GateDenied:
	default:
		return nil, "", nil
	}
	var e event.Event
	if err := json.Unmarshal(r.JSON, &e); err != nil {
		return nil, "", err
	}
	dev := g.cfg.DeviceID
	n := e.Seq % 50000
	src := viid.SourceID(dev, viid.SourceImage, e.Time, g.loc, n)
	shot := viid.Time(e.Time, g.loc)
	box := bbox(e.Data["bbox"])
	img := func(m event.Media, typ string, seq uint64) (viid.SubImage, bool) {
		b, err := g.media(m.URL)
		if err != nil {
			g.t.Log().Warn("picture for GA/T 1400 not readable; sent without it", "event_id", e.ID, "kind", m.Kind, "err", err)
			return viid.SubImage{}, false
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			g.t.Log().Warn("picture for GA/T 1400 is not an image; sent without it", "event_id", e.ID, "kind", m.Kind, "err", err)
			return viid.SubImage{}, false
		}
		id := src
		if seq != n {
			id = viid.SourceID(dev, viid.SourceImage, e.Time, g.loc, seq)
		}
		return viid.SubImage{ImageID: id, EventSort: 10, DeviceID: dev, Type: typ, FileFormat: "Jpeg",
			ShotTime: shot, Width: cfg.Width, Height: cfg.Height, Data: b}, true
	}
	var subs []viid.SubImage
	size := 0
	pics := func(crop, scene string) {
		for _, m := range e.Media {
			var s viid.SubImage
			ok := false
			switch m.Kind {
			case "crop":
				s, ok = img(m, crop, n+50000)
			case "snapshot":
				s, ok = img(m, scene, n)
			}
			if ok {
				subs = append(subs, s)
				size += len(s.Data) * 4 / 3
			}
		}
	}
	list := func() *viid.SubImageList {
		if len(subs) == 0 {
			return nil
		}
		return &viid.SubImageList{SubImageInfoObject: subs}
	}
	switch r.Type {
	case event.GateVehicle, event.GateDenied:
		if r.Type == event.GateDenied {
			if _, ok := e.Data["vehicle_event"]; ok {
				return nil, "", nil // the pass itself went as its gate.vehicle
			}
		}
		plate, _ := e.Data["plate"].(string)
		color, _ := e.Data["plate_color"].(string)
		pics(viid.ImagePlate, viid.ImageVehicle)
		v := viid.MotorVehicle{
			MotorVehicleID: viid.ObjectID(src, viid.ObjectMotorV, 1), InfoKind: 1, SourceID: src, DeviceID: dev,
			PassTime: shot, HasPlate: plate != "", PlateNo: plate, PlateColor: viid.PlateColor(color),
			Direction: direction(e.Data["direction"]),
			LeftTopX:  box[0], LeftTopY: box[1], RightBtmX: box[0] + box[2], RightBtmY: box[1] + box[3],
			SubImageList: list(),
		}
		return &pending{raw: r, id: v.MotorVehicleID, obj: v, size: size + 512}, "vehicle", nil
	}
	pics(viid.ImageFace, viid.ImageScene)
	f := viid.Face{
		FaceID: viid.ObjectID(src, viid.ObjectFace, 1), InfoKind: 1, SourceID: src, DeviceID: dev,
		LeftTopX: box[0], LeftTopY: box[1], RightBtmX: box[0] + box[2], RightBtmY: box[1] + box[3],
		ShotTime: shot, FaceAppearTime: shot, SubImageList: list(),
	}
	if r.Type != event.FaceUnknown {
		f.Name, _ = e.Data["name"].(string)
		if s, ok := e.Data["score"].(float64); ok {
			f.SimilarityDegree = math.Round(s*1000) / 1000
		}
	}
	return &pending{raw: r, id: f.FaceID, obj: f, size: size + 512}, "face", nil
}

// media reads a picture named by an event: from the event store, or a
// sealed face picture through Options.Sealed.
func (g *gatTarget) media(u string) ([]byte, error) {
	if strings.HasPrefix(u, uplink.MediaPrefix) {
		id := path.Base(strings.SplitN(u, "?", 2)[0])
		f, _, err := g.t.Env().Store.OpenMedia(id)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, 16<<20))
	}
	if g.sealed == nil {
		return nil, fmt.Errorf("%s: no reader for media kept outside the store", u)
	}
	return g.sealed(u)
}

// bbox reads [x, y, w, h]; zeros when absent.
func bbox(v any) [4]int {
	var b [4]int
	l, _ := v.([]any)
	for i := 0; i < len(l) && i < 4; i++ {
		f, _ := l[i].(float64)
		b[i] = int(f)
	}
	return b
}

func direction(v any) string {
	switch v {
	case "in":
		return "entry"
	case "out":
		return "exit"
	}
	return ""
}
