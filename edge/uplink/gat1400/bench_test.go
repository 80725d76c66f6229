package gat1400_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/uplink"
	"github.com/smartcommunity/warden/edge/uplink/uplinktest"
	"github.com/smartcommunity/warden/edge/uplink/viid"
	"github.com/smartcommunity/warden/edge/uplink/viid/viidtest"
)

// BenchmarkGAT1400Drain drains a backlog of 10,000 faces (a ~20 KB crop and
// a ~20 KB scene each) and of 10,000 vehicles to the fake view library, and
// beside it the fake's own accept rate: a bare client posting the same
// lists (50 objects, pictures base64-encoded beforehand) one at a time on
// one kept-alive connection, with no digest and no registration. The fake
// parses every object and decodes every picture's header.
//
//	go test -run '^$' -bench GAT1400Drain -benchtime 1x ./edge/uplink/
func BenchmarkGAT1400Drain(b *testing.B) {
	const n, list = 10000, 50
	for _, kind := range []string{"faces", "vehicles"} {
		b.Run(kind, func(b *testing.B) {
			for range b.N {
				benchGAT(b, kind, n, list)
			}
		})
	}
}

func benchGAT(b *testing.B, kind string, n, list int) {
	st := storetest.Open(b, store.Options{})
	crop, scene := noisyJPEG(b, 1), noisyJPEG(b, 2)
	var media []event.Media
	if kind == "faces" {
		ci, err := st.PutMedia("crop", "image/jpeg", crop)
		if err != nil {
			b.Fatal(err)
		}
		si, err := st.PutMedia("snapshot", "image/jpeg", scene)
		if err != nil {
			b.Fatal(err)
		}
		media = []event.Media{{Kind: "crop", URL: "/api/v1/media/" + ci.ID}, {Kind: "snapshot", URL: "/api/v1/media/" + si.ID}}
	}
	uplinktest.Fill(b, st, n, func(i int) *event.Event {
		if kind == "vehicles" {
			return uplinktest.Event(event.GateVehicle, "", map[string]any{"plate": "浙A12345", "direction": "in", "plate_color": "blue"})
		}
		ev := uplinktest.Event(event.FaceUnknown, "", map[string]any{"bbox": []int{i % 1000, 10, 112, 112}})
		ev.Media = media
		return ev
	})

	// The view library's own rate.
	bare := viidtest.New("", "")
	bare.Open = true
	defer bare.Close()
	var bodies [][]byte
	src := viid.SourceID(testDeviceID, viid.SourceImage, time.Now(), time.Local, 1)
	for i := 0; i < n; i += list {
		var js []byte
		var err error
		if kind == "faces" {
			var l viid.FaceList
			for j := range list {
				im := func(typ string, data []byte) viid.SubImage {
					return viid.SubImage{ImageID: src, DeviceID: testDeviceID, Type: typ, FileFormat: "Jpeg", ShotTime: src[22:36], Width: picSide, Height: picSide, Data: data}
				}
				l.FaceListObject.FaceObject = append(l.FaceListObject.FaceObject, viid.Face{
					FaceID: viid.ObjectID(src, viid.ObjectFace, i+j), InfoKind: 1, SourceID: src, DeviceID: testDeviceID,
					RightBtmX: 112, RightBtmY: 112, ShotTime: src[22:36], FaceAppearTime: src[22:36],
					SubImageList: &viid.SubImageList{SubImageInfoObject: []viid.SubImage{im(viid.ImageFace, crop), im(viid.ImageScene, scene)}}})
			}
			js, err = json.Marshal(l)
		} else {
			var l viid.MotorVehicleList
			for j := range list {
				l.MotorVehicleListObject.MotorVehicleObject = append(l.MotorVehicleListObject.MotorVehicleObject, viid.MotorVehicle{
					MotorVehicleID: viid.ObjectID(src, viid.ObjectMotorV, i+j), InfoKind: 1, SourceID: src, DeviceID: testDeviceID,
					PassTime: src[22:36], HasPlate: true, PlateNo: "浙A12345", PlateColor: "5", Direction: "entry"})
			}
			js, err = json.Marshal(l)
		}
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, js)
	}
	path := viid.PathFaces
	if kind == "vehicles" {
		path = viid.PathVehicles
	}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer client.CloseIdleConnections()
	t0 := time.Now()
	for _, body := range bodies {
		req, _ := http.NewRequest(http.MethodPost, bare.URL()+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", viid.ContentType)
		req.Header.Set("User-Identify", testDeviceID)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("bare post: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	bareRate := float64(n) / time.Since(t0).Seconds()
	if bare.Distinct() != n {
		b.Fatalf("bare client: %d distinct, want %d", bare.Distinct(), n)
	}

	v := viidtest.New("warden", "s3cret")
	defer v.Close()
	cfg := gatConfig(v.URL())
	cfg.Batch = list
	start := time.Now()
	r := uplinktest.Run(b, uplink.Options{Config: cfg, Store: st})
	deadline := start.Add(5 * time.Minute)
	for v.Distinct() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d %s after %s", v.Distinct(), n, kind, deadline.Sub(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	r.Stop()
	if p := v.Problems(); len(p) > 0 {
		b.Fatalf("violations: %v", p[:min(len(p), 5)])
	}
	rate := float64(n) / el.Seconds()
	b.ReportMetric(rate, "drain_"+kind+"/s")
	b.ReportMetric(bareRate, "viid_"+kind+"/s")
	b.ReportMetric(rate/bareRate, "ratio")
	if kind == "faces" {
		b.ReportMetric(float64(len(crop)+len(scene))/2/1024, "KB/picture")
	}
}

// picSide makes a noisy JPEG of about 20 KB.
const picSide = 184

// noisyJPEG is a picSide² JPEG of noise in every channel.
func noisyJPEG(b *testing.B, seed uint64) []byte {
	img := image.NewRGBA(image.Rect(0, 0, picSide, picSide))
	r := rand.New(rand.NewPCG(seed, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}
