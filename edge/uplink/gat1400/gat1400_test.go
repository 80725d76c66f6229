package gat1400_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/uplink"
	"github.com/smartcommunity/warden/edge/uplink/uplinktest"
	"github.com/smartcommunity/warden/edge/uplink/viid"
	"github.com/smartcommunity/warden/edge/uplink/viid/viidtest"
)

const testDeviceID = "33010299011190000253"

// gatConfig is a GA/T 1400 uplink with short retries.
func gatConfig(url string) config.Uplink {
	return config.Uplink{
		GAT1400: &config.GAT1400{URL: url, DeviceID: testDeviceID, Username: "warden", Password: "s3cret",
			Keepalive: config.Duration(time.Hour), Timeout: config.Duration(10 * time.Second)},
		Batch:      50,
		Linger:     config.Duration(10 * time.Millisecond),
		MinBackoff: config.Duration(20 * time.Millisecond),
		MaxBackoff: config.Duration(200 * time.Millisecond),
	}
}

// viewLibrary is a fake view library that wants warden/s3cret, and a
// fresh store; both end with the test.
func viewLibrary(t *testing.T) (*viidtest.Server, *store.Store) {
	t.Helper()
	v := viidtest.New("warden", "s3cret")
	t.Cleanup(v.Close)
	return v, storetest.Open(t, store.Options{Dir: t.TempDir()})
}

// testJPEG is a w×h JPEG of noise, about size bytes for larger pictures.
func testJPEG(t testing.TB, w, h int, seed uint64) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(seed, 1))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(r.IntN(256)), uint8(x), uint8(y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// faceEvent is a face event whose crop and scene are in the store.
func faceEvent(t testing.TB, st *store.Store, typ string, i int) *event.Event {
	t.Helper()
	crop, err := st.PutMedia("crop", "image/jpeg", testJPEG(t, 96, 112, uint64(i)))
	if err != nil {
		t.Fatal(err)
	}
	scene, err := st.PutMedia("snapshot", "image/jpeg", testJPEG(t, 320, 180, uint64(i)+1000))
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"bbox": []int{100 + i, 50, 96, 112}, "score": 0.91}
	if typ != event.FaceUnknown {
		data["person_id"], data["name"] = fmt.Sprintf("r-%03d", i), fmt.Sprintf("住户%d", i)
	}
	ev := uplinktest.Event(typ, "", data)
	ev.Source = event.Source{Kind: "camera", ID: "gate-cam"}
	ev.Media = []event.Media{
		{Kind: "crop", URL: "/api/v1/media/" + crop.ID, SHA256: crop.SHA256},
		{Kind: "snapshot", URL: "/api/v1/media/" + scene.ID, SHA256: scene.SHA256},
	}
	return ev
}

func TestGAT1400FacesAndVehicles(t *testing.T) {
	t.Parallel()
	v, st := viewLibrary(t)
	sealedCrop, sealedScene := testJPEG(t, 80, 90, 7), testJPEG(t, 640, 360, 8)
	var evs []*event.Event
	evs = append(evs, faceEvent(t, st, event.FaceRecognized, 1))
	unknown := uplinktest.Event(event.FaceUnknown, "", map[string]any{"bbox": []int{10, 20, 80, 90}, "score": 0.2})
	unknown.Media = []event.Media{{Kind: "crop", URL: "/api/v1/faces/unknown/u1"}, {Kind: "snapshot", URL: "/api/v1/faces/unknown/u1/scene"}}
	evs = append(evs, unknown)
	evs = append(evs, uplinktest.Event(event.GasLeak, "", map[string]any{"gas": true})) // not for the view library
	car := uplinktest.Event(event.GateVehicle, "", map[string]any{"plate": "浙A12345", "plate_color": "blue", "direction": "in", "decision": "denied"})
	for kind, side := range map[string]int{"snapshot": 400, "crop": 60} { // the camera's scene and plate pictures
		mi, err := st.PutMedia(kind, "image/jpeg", testJPEG(t, side, side/2, uint64(side)))
		if err != nil {
			t.Fatal(err)
		}
		car.Media = append(car.Media, event.Media{Kind: kind, URL: "/api/v1/media/" + mi.ID, SHA256: mi.SHA256})
	}
	evs = append(evs, car)
	// The denial of that same pass is not a second vehicle.
	evs = append(evs, uplinktest.Event(event.GateDenied, "", map[string]any{"plate": "浙A12345", "direction": "in", "vehicle_event": car.ID}))
	evs = append(evs, uplinktest.Event(event.GateDenied, "", map[string]any{"plate": "", "direction": "out", "reason": "no_plate"}))
	evs = append(evs, faceEvent(t, st, event.FaceWatchlist, 2))
	if err := st.Append(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	sealed := func(url string) ([]byte, error) {
		switch url {
		case "/api/v1/faces/unknown/u1":
			return sealedCrop, nil
		case "/api/v1/faces/unknown/u1/scene":
			return sealedScene, nil
		}
		return nil, errors.New("no such picture")
	}
	reg := prometheus.NewRegistry()
	loc := time.FixedZone("CST", 8*3600)
	v.Location = loc
	r := uplinktest.Run(t, uplink.Options{Store: st, Config: gatConfig(v.URL()), Sealed: sealed, Location: loc, Registerer: reg})
	testenv.Until(t, 10*time.Second, "5 objects", func() bool { return v.Distinct() == 5 })
	// The cursor is saved once the reply is in (stopping before that
	// would only resend the same ids).
	last := st.LastSeq()
	testenv.Until(t, 10*time.Second, "the cursor saved at the last event", func() bool {
		c, _ := st.Cursor("uplink:gat1400")
		return c == last
	})
	r.Stop()

	if p := v.Problems(); len(p) > 0 {
		t.Fatalf("the view library saw %d violations:\n%s", len(p), strings.Join(p, "\n"))
	}
	s := v.Stats()
	if s.Registers != 1 || s.Challenges < 1 || s.TimeReads != 1 || s.UnRegisters != 1 {
		t.Errorf("stats %+v: want one digest registration (after a 401 challenge), one time read, one unregister at stop", s)
	}
	got := v.Objects()
	var kinds []string
	for _, o := range got {
		kinds = append(kinds, o.Kind)
	}
	if want := []string{"face", "face", "face", "vehicle", "vehicle"}; !slices.Equal(kinds, want) {
		t.Fatalf("objects %v, want %v", kinds, want)
	}
	seqOf := func(e *event.Event) uint64 {
		t.Helper()
		for _, r := range mustRead(t, st) {
			if strings.Contains(string(r.JSON), e.ID) {
				return r.Seq
			}
		}
		t.Fatalf("event %s not in store", e.ID)
		return 0
	}
	// Ids are the event's: device, type 02, local time, seq.
	wantSrc := viid.SourceID(testDeviceID, viid.SourceImage, evs[0].Time, loc, seqOf(evs[0]))
	f := got[0].Face
	if f.SourceID != wantSrc || f.FaceID != wantSrc+"06"+"00001" || len(f.FaceID) != 48 {
		t.Errorf("FaceID %s SourceID %s, want %s…", f.FaceID, f.SourceID, wantSrc)
	}
	if f.ShotTime != evs[0].Time.In(loc).Format("20060102150405") || f.FaceAppearTime != f.ShotTime {
		t.Errorf("ShotTime %s FaceAppearTime %s, want the event's local time", f.ShotTime, f.FaceAppearTime)
	}
	if f.LeftTopX != 101 || f.LeftTopY != 50 || f.RightBtmX != 197 || f.RightBtmY != 162 || f.Name != "住户1" {
		t.Errorf("face box/name %+v", f)
	}
	imgs := func(l *viid.SubImageList) map[string][2]int {
		m := map[string][2]int{}
		if l != nil {
			for _, im := range l.SubImageInfoObject {
				m[im.Type] = [2]int{im.Width, im.Height}
			}
		}
		return m
	}
	if m := imgs(f.SubImageList); m["11"] != [2]int{96, 112} || m["14"] != [2]int{320, 180} {
		t.Errorf("recognised face pictures %v, want crop 11 96x112 and scene 14 320x180", m)
	}
	u := got[1].Face
	if m := imgs(u.SubImageList); m["11"] != [2]int{80, 90} || m["14"] != [2]int{640, 360} {
		t.Errorf("stranger's sealed pictures %v, want crop 80x90 and scene 640x360", m)
	}
	if u.Name != "" {
		t.Errorf("a stranger has no name, got %q", u.Name)
	}
	if !bytes.Equal(u.SubImageList.SubImageInfoObject[0].Data, sealedCrop) {
		t.Error("the stranger's crop is not the sealed picture's bytes")
	}
	mv := got[3].MV
	if mv.PlateNo != "浙A12345" || !mv.HasPlate || mv.PlateColor != "5" || mv.Direction != "entry" || len(mv.MotorVehicleID) != 48 {
		t.Errorf("vehicle %+v: want plate 浙A12345, HasPlate, PlateColor 5 (blue), Direction entry", mv)
	}
	if m := imgs(mv.SubImageList); m["01"] != [2]int{400, 200} || m["02"] != [2]int{60, 30} {
		t.Errorf("vehicle pictures %v, want scene 01 400x200 and plate 02 60x30", m)
	}
	if mv2 := got[4].MV; mv2.HasPlate || mv2.Direction != "exit" {
		t.Errorf("plateless denial %+v: want HasPlate false, Direction exit", mv2)
	}
	if n := testenv.MetricValue(t, reg, "warden_uplink_gat1400_objects_total", map[string]string{"kind": "face"}); n != 3 {
		t.Errorf("objects_total{face} = %v, want 3", n)
	}
	if last != seqOf(evs[len(evs)-1]) {
		t.Errorf("last seq %d is not the last event's: something else was stored", last)
	}
}

// mustRead returns every stored event.
func mustRead(t testing.TB, st *store.Store) []store.Raw {
	t.Helper()
	rs, err := st.ReadRaw(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// A refused object is retried alone; the rest of its list is taken once.
// An object refused every time is dead-lettered; a critical one never is.
func TestGAT1400RefusedObjectRetriedAlone(t *testing.T) {
	t.Parallel()
	v, st := viewLibrary(t)
	var evs []*event.Event
	for i := range 6 {
		evs = append(evs, uplinktest.Event(event.GateVehicle, "", map[string]any{"plate": fmt.Sprintf("浙A0000%d", i), "direction": "in"}))
	}
	evs = append(evs, uplinktest.Event(event.FaceWatchlist, event.Critical, map[string]any{"bbox": []int{1, 2, 3, 4}, "name": "watched"}))
	if err := st.Append(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	refusals := map[string]int{}
	// Pin the ids the refusals are about.
	rs := mustRead(t, st)
	loc := time.Local
	second := viid.ObjectID(viid.SourceID(testDeviceID, viid.SourceImage, evs[1].Time, loc, rs[1].Seq), viid.ObjectMotorV, 1)
	watchID := viid.ObjectID(viid.SourceID(testDeviceID, viid.SourceImage, evs[6].Time, loc, rs[6].Seq), viid.ObjectFace, 1)
	v.SetRefuse(func(id string) (string, string) {
		refusals[id]++
		switch {
		case id == second && refusals[id] <= 2:
			return "4", "数据格式错误"
		case id == watchID && refusals[id] <= 6: // more than objectTries: a critical object is never dropped
			return "6", "服务器繁忙"
		}
		return "0", ""
	})
	reg := prometheus.NewRegistry()
	uplinktest.Run(t, uplink.Options{Store: st, Config: gatConfig(v.URL()), Registerer: reg})
	testenv.Until(t, 20*time.Second, "7 objects", func() bool { return v.Distinct() == 7 })
	if p := v.Problems(); len(p) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(p, "\n"))
	}
	got := v.Objects()
	for _, o := range got {
		if o.Count != 1 {
			t.Errorf("%s taken %d times: only the refused object may be sent again", o.ID, o.Count)
		}
	}
	if n := testenv.MetricValue(t, reg, "warden_uplink_gat1400_refused_total", map[string]string{"code": "4"}); n != 2 {
		t.Errorf("refused_total{code=4} = %v, want 2", n)
	}
	if n := testenv.MetricValue(t, reg, "warden_uplink_gat1400_refused_total", map[string]string{"code": "6"}); n != 6 {
		t.Errorf("refused_total{code=6} = %v, want 6", n)
	}
	// The critical face raised the rejected-critical alarm once and was not dead-lettered.
	var faults int
	for _, r := range mustRead(t, st) {
		if r.Type == event.SystemFault && strings.Contains(string(r.JSON), "uplink.rejected_critical") {
			faults++
		}
		if r.Type == event.SystemDeadLtr {
			t.Errorf("dead-lettered: %s", r.JSON)
		}
	}
	if faults != 1 {
		t.Errorf("%d rejected-critical alarms, want 1", faults)
	}
}

// An object the platform always refuses is dead-lettered after five tries
// and the queue moves on.
func TestGAT1400AlwaysRefusedIsDeadLettered(t *testing.T) {
	t.Parallel()
	v, st := viewLibrary(t)
	bad := uplinktest.Event(event.GateVehicle, "", map[string]any{"plate": "BAD", "direction": "in"})
	good := uplinktest.Event(event.GateVehicle, "", map[string]any{"plate": "GOOD", "direction": "in"})
	if err := st.Append(context.Background(), bad, good); err != nil {
		t.Fatal(err)
	}
	rs := mustRead(t, st)
	badID := viid.ObjectID(viid.SourceID(testDeviceID, viid.SourceImage, bad.Time, time.Local, rs[0].Seq), viid.ObjectMotorV, 1)
	v.SetRefuse(func(id string) (string, string) {
		if id == badID {
			return "4", "车牌号码格式错误"
		}
		return "0", ""
	})
	uplinktest.Run(t, uplink.Options{Store: st, Config: gatConfig(v.URL())})
	testenv.Until(t, 20*time.Second, "the good vehicle and a dead letter", func() bool {
		if v.Distinct() != 1 {
			return false
		}
		for _, r := range mustRead(t, st) {
			if r.Type == event.SystemDeadLtr {
				return strings.Contains(string(r.JSON), badID)
			}
		}
		return false
	})
}

// The platform forgets the gateway (401) and a keepalive fails: both make
// it register again, and nothing is lost.
func TestGAT1400RegistersAgain(t *testing.T) {
	t.Parallel()
	v, st := viewLibrary(t)
	cfg := gatConfig(v.URL())
	cfg.GAT1400.Keepalive = config.Duration(200 * time.Millisecond)
	uplinktest.Run(t, uplink.Options{Store: st, Config: cfg})
	add := func(n int) {
		for range n {
			if err := st.Append(context.Background(), uplinktest.Event(event.GateVehicle, "", map[string]any{"plate": "浙B1", "direction": "out"})); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(3)
	testenv.Until(t, 10*time.Second, "3 vehicles", func() bool { return v.Distinct() == 3 })
	testenv.Until(t, 10*time.Second, "keepalives", func() bool { return v.Stats().Keepalives >= 2 })
	v.Forget() // a platform restart: the next request gets 401
	add(3)
	testenv.Until(t, 10*time.Second, "6 vehicles", func() bool { return v.Distinct() == 6 })
	if s := v.Stats(); s.Registers < 2 || s.Challenges+s.Unauthorized < 2 {
		t.Errorf("after the platform forgot us: %+v, want a 401 then a second registration", s)
	}
	regs := v.Stats().Registers
	v.FailKeepalives(1)
	testenv.Until(t, 10*time.Second, "registration after a failed keepalive", func() bool { return v.Stats().Registers > regs })
	add(2)
	testenv.Until(t, 10*time.Second, "8 vehicles", func() bool { return v.Distinct() == 8 })
	if p := v.Problems(); len(p) > 0 {
		t.Fatalf("violations (nonce counts must rise, digest must be right):\n%s", strings.Join(p, "\n"))
	}
}

// A clock more than 2 s off the platform's raises one system.clock event.
func TestGAT1400ClockSkew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		skew time.Duration
		want int
	}{{0, 0}, {5 * time.Second, 1}, {-4 * time.Second, 1}} {
		t.Run(tc.skew.String(), func(t *testing.T) {
			t.Parallel()
			v, st := viewLibrary(t)
			v.SetClockSkew(tc.skew)
			if err := st.Append(context.Background(), uplinktest.Event(event.GateVehicle, "", map[string]any{"plate": "A1"})); err != nil {
				t.Fatal(err)
			}
			uplinktest.Run(t, uplink.Options{Store: st, Config: gatConfig(v.URL())})
			testenv.Until(t, 10*time.Second, "the vehicle", func() bool { return v.Distinct() == 1 })
			var clock []map[string]any
			for _, r := range mustRead(t, st) {
				if r.Type == event.SystemClock {
					var e event.Event
					_ = json.Unmarshal(r.JSON, &e)
					clock = append(clock, e.Data)
				}
			}
			if len(clock) != tc.want {
				t.Fatalf("%d system.clock events for a %v skew, want %d", len(clock), tc.skew, tc.want)
			}
			if tc.want == 1 {
				got, _ := clock[0]["skew_seconds"].(float64)
				if d := got + tc.skew.Seconds(); d < -1.5 || d > 1.5 {
					t.Errorf("skew_seconds %v for a platform %v ahead", got, tc.skew)
				}
			}
		})
	}
}

// A 60 s outage while faces keep coming: every one arrives once, in order,
// after the platform is back.
func TestGAT1400OutageAllArriveOnceInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("a 60 s outage")
	}
	t.Parallel()
	v, st := viewLibrary(t)
	cfg := gatConfig(v.URL())
	cfg.MaxBackoff = config.Duration(2 * time.Second)
	uplinktest.Run(t, uplink.Options{Store: st, Config: cfg})
	n := 0
	add := func(k int) {
		for range k {
			ev := uplinktest.Event(event.FaceUnknown, "", map[string]any{"bbox": []int{n, 0, 10, 10}})
			n++
			if err := st.Append(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(20)
	testenv.Until(t, 10*time.Second, "20 faces", func() bool { return v.Distinct() == 20 })
	v.SetDown(true)
	end := time.Now().Add(60 * time.Second)
	for time.Now().Before(end) {
		add(5)
		time.Sleep(time.Second)
	}
	v.SetDown(false)
	testenv.Until(t, 30*time.Second, "every face", func() bool { return v.Distinct() == n })
	objs := v.Objects()
	prev := -1
	for _, o := range objs {
		if o.Count > 1 {
			t.Errorf("face %s arrived %d times", o.ID, o.Count)
		}
		if o.Face.LeftTopX <= prev {
			t.Fatalf("face %d arrived after %d", o.Face.LeftTopX, prev)
		}
		prev = o.Face.LeftTopX
	}
	if p := v.Problems(); len(p) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(p, "\n"))
	}
	t.Logf("%d faces, %d registrations", n, v.Stats().Registers)
}

func TestGAT1400ConfigRefused(t *testing.T) {
	st := storetest.Open(t, store.Options{Dir: t.TempDir()})
	cfg := gatConfig("http://127.0.0.1:1")
	cfg.GAT1400.DeviceID = "3301029901119000025" // 19 digits
	if _, err := uplink.New(uplink.Options{Store: st, Config: cfg}); err == nil || !strings.Contains(err.Error(), "20 digits") {
		t.Fatalf("19-digit device id: err %v", err)
	}
}

// A reply that is not a GA/T 1400 status (a proxy's error page with 200)
// proves nothing: the objects are sent again, and none is lost.
func TestGAT1400GarbledReplyResends(t *testing.T) {
	t.Parallel()
	v, st := viewLibrary(t)
	v.Garble(3)
	for i := range 4 {
		if err := st.Append(context.Background(), uplinktest.Event(event.GateVehicle, "", map[string]any{"plate": fmt.Sprintf("浙D%d", i)})); err != nil {
			t.Fatal(err)
		}
	}
	uplinktest.Run(t, uplink.Options{Store: st, Config: gatConfig(v.URL())})
	testenv.Until(t, 20*time.Second, "4 vehicles after 3 garbled replies", func() bool { return v.Distinct() == 4 })
	for _, o := range v.Objects() {
		if o.Count != 1 {
			t.Errorf("%s recorded %d times", o.ID, o.Count)
		}
	}
	if s := v.Stats(); s.Registers < 2 {
		t.Errorf("%d registrations: a garbled reply should end the session", s.Registers)
	}
}
