// Package viidtest is a fake GA/T 1400 view library (视图库) for tests and
// benchmarks: real HTTP on 127.0.0.1 that enforces digest registration,
// nonce freshness and counts, the headers, and the formats of every face
// and vehicle it is sent. It is the far side we do not own.
package viidtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // decode the pictures sent
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"

	"github.com/smartcommunity/warden/edge/uplink/viid"
)

// Realm of the challenges.
const Realm = "viid"

// Object is one accepted face or vehicle, in arrival order.
type Object struct {
	Kind  string // face or vehicle
	ID    string // FaceID or MotorVehicleID
	Face  viid.Face
	MV    viid.MotorVehicle
	Count int // times received, including this one (duplicates are resends)
}

// Server is the fake view library.
type Server struct {
	HTTP     *httptest.Server
	User     string
	Password string
	// NonceTTL is how long a nonce is accepted (default 1 min).
	NonceTTL time.Duration
	// Location of the times it reports (default time.Local); set before use.
	Location *time.Location
	// Open turns off digest and registration: the benchmark's bare client.
	Open bool

	mu         sync.Mutex
	nonces     map[string]*nonceState
	registered map[string]bool // DeviceID
	objects    []Object
	seen       map[string]int
	problems   []string
	down       bool
	clockSkew  time.Duration
	refuse     func(id string) (code, reason string)
	failKA     int // keepalives to answer 500
	garbage    int // object lists to answer 200 with a body that is not a status
	stats      Stats
	accept     time.Duration // sleep per list, to model a slow platform
}

type nonceState struct {
	issued time.Time
	nc     int
}

// Stats counts the calls.
type Stats struct {
	Challenges, Registers, Keepalives, UnRegisters, TimeReads int
	FaceLists, VehicleLists, Unauthorized, Duplicates         int
}

// New starts a view library that wants user and password.
func New(user, password string) *Server {
	s := &Server{User: user, Password: password, NonceTTL: time.Minute, Location: time.Local,
		nonces: map[string]*nonceState{}, registered: map[string]bool{}, seen: map[string]int{}}
	s.HTTP = httptest.NewServer(s)
	return s
}

// URL is the base URL.
func (s *Server) URL() string { return s.HTTP.URL }

// Close stops the server.
func (s *Server) Close() { s.HTTP.Close() }

// SetDown makes every request fail with a dropped connection while down.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetClockSkew shifts the time GET /VIID/System/Time reports.
func (s *Server) SetClockSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clockSkew = d
}

// SetRefuse decides per object: a non-"0" code refuses it.
func (s *Server) SetRefuse(f func(id string) (code, reason string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = f
}

// SetAcceptDelay makes every list take d.
func (s *Server) SetAcceptDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept = d
}

// Garble answers the next n object lists with 200 and a body that is no
// GA/T 1400 status (a proxy's error page), recording nothing.
func (s *Server) Garble(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.garbage = n
}

// FailKeepalives answers the next n keepalives with 500.
func (s *Server) FailKeepalives(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failKA = n
}

// Forget drops every registration and nonce, as a platform restart does.
func (s *Server) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registered = map[string]bool{}
	s.nonces = map[string]*nonceState{}
}

// Objects returns what was accepted, in order, duplicates included.
func (s *Server) Objects() []Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Object(nil), s.objects...)
}

// Distinct is the number of different ids accepted.
func (s *Server) Distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// Problems lists every format or protocol violation seen.
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Registered reports whether device is registered now.
func (s *Server) Registered(device string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.registered[device]
}

func (s *Server) problem(f string, a ...any) {
	s.problems = append(s.problems, fmt.Sprintf(f, a...))
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down, delay := s.down, s.accept
	s.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	dev := r.Header.Get("User-Identify")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !viid.ValidDeviceID(dev) {
		s.problem("%s %s: User-Identify %q is not a 20-digit device id", r.Method, r.URL.Path, dev)
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != viid.ContentType {
		s.problem("%s: Content-Type %q, want %s", r.URL.Path, r.Header.Get("Content-Type"), viid.ContentType)
	}
	if !s.Open && !s.authorized(w, r) {
		return
	}
	switch r.URL.Path {
	case viid.PathRegister:
		var b struct{ RegisterObject struct{ DeviceID string } }
		if json.Unmarshal(body, &b) != nil || b.RegisterObject.DeviceID != dev {
			s.problem("register body %q does not name User-Identify %s", body, dev)
			s.status(w, r, "4", "bad RegisterObject", "")
			return
		}
		s.registered[dev] = true
		s.stats.Registers++
		s.status(w, r, "0", "OK", dev)
	case viid.PathTime:
		if !s.needRegistered(w, r, dev) {
			return
		}
		s.stats.TimeReads++
		now := time.Now().Add(s.clockSkew).In(s.Location)
		writeJSON(w, map[string]any{"SystemTimeObject": map[string]string{
			"VIIDServerID": "fake", "TimeMode": "1", "LocalTime": now.Format(viid.TimeLayout), "TimeZone": now.Format("MST")}})
	case viid.PathKeepalive:
		if !s.needRegistered(w, r, dev) {
			return
		}
		s.stats.Keepalives++
		if s.failKA > 0 {
			s.failKA--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		s.status(w, r, "0", "OK", dev)
	case viid.PathUnRegister:
		s.stats.UnRegisters++
		delete(s.registered, dev)
		s.status(w, r, "0", "OK", dev)
	case viid.PathFaces, viid.PathVehicles:
		if !s.needRegistered(w, r, dev) {
			return
		}
		if delay > 0 {
			s.mu.Unlock()
			time.Sleep(delay)
			s.mu.Lock()
		}
		if s.garbage > 0 {
			s.garbage--
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html><body>502 Bad Gateway (nginx)</body></html>"))
			return
		}
		s.objectsPost(w, r, dev, body)
	default:
		http.NotFound(w, r)
	}
}

// authorized checks the digest Authorization; without one (or with a bad or
// stale one) it answers 401 with a fresh challenge.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if h != "" {
		cred, err := digest.ParseCredentials(h)
		switch {
		case err != nil:
			s.problem("Authorization %q: %v", h, err)
		case cred.Username != s.User || cred.Realm != Realm || cred.QOP != "auth" || cred.URI != r.URL.RequestURI():
			s.problem("digest fields wrong: user %q realm %q qop %q uri %q", cred.Username, cred.Realm, cred.QOP, cred.URI)
		default:
			ns, ok := s.nonces[cred.Nonce]
			switch {
			case !ok || time.Since(ns.issued) > s.NonceTTL:
				// unknown or stale: challenge again (not a client fault)
			case cred.Nc <= ns.nc:
				s.problem("nonce count %d not above %d (replay)", cred.Nc, ns.nc)
			default:
				want, _ := digest.Digest(&digest.Challenge{Realm: Realm, Nonce: cred.Nonce, Opaque: cred.Opaque, Algorithm: "MD5", QOP: []string{"auth"}},
					digest.Options{Method: r.Method, URI: cred.URI, Count: cred.Nc, Username: s.User, Password: s.Password, Cnonce: cred.Cnonce})
				if want != nil && want.Response == cred.Response {
					ns.nc = cred.Nc
					return true
				}
				s.problem("digest response wrong for %s", r.URL.Path)
			}
		}
	}
	s.stats.Challenges++
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	nonce := hex.EncodeToString(b)
	s.nonces[nonce] = &nonceState{issued: time.Now()}
	c := digest.Challenge{Realm: Realm, Nonce: nonce, Opaque: "warden-test", Algorithm: "MD5", QOP: []string{"auth"}}
	w.Header().Set("WWW-Authenticate", c.String())
	w.WriteHeader(http.StatusUnauthorized)
	return false
}

func (s *Server) needRegistered(w http.ResponseWriter, r *http.Request, dev string) bool {
	if s.registered[dev] || s.Open {
		return true
	}
	s.stats.Unauthorized++
	delete(s.nonces, nonceOf(r))
	c := digest.Challenge{Realm: Realm, Nonce: "not-registered", Algorithm: "MD5", QOP: []string{"auth"}}
	w.Header().Set("WWW-Authenticate", c.String())
	w.WriteHeader(http.StatusUnauthorized)
	return false
}

func nonceOf(r *http.Request) string {
	c, err := digest.ParseCredentials(r.Header.Get("Authorization"))
	if err != nil {
		return ""
	}
	return c.Nonce
}

var (
	digits41 = regexp.MustCompile(`^[0-9]{41}$`)
	digits48 = regexp.MustCompile(`^[0-9]{48}$`)
)

func (s *Server) objectsPost(w http.ResponseWriter, r *http.Request, dev string, body []byte) {
	type entry struct {
		id   string
		face viid.Face
		mv   viid.MotorVehicle
	}
	var list []entry
	kind := "face"
	if r.URL.Path == viid.PathFaces {
		s.stats.FaceLists++
		var fl viid.FaceList
		if err := json.Unmarshal(body, &fl); err != nil {
			s.problem("faces body: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, f := range fl.FaceListObject.FaceObject {
			s.checkFace(dev, f)
			list = append(list, entry{id: f.FaceID, face: f})
		}
	} else {
		kind = "vehicle"
		s.stats.VehicleLists++
		var vl viid.MotorVehicleList
		if err := json.Unmarshal(body, &vl); err != nil {
			s.problem("vehicles body: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, v := range vl.MotorVehicleListObject.MotorVehicleObject {
			s.checkVehicle(dev, v)
			list = append(list, entry{id: v.MotorVehicleID, mv: v})
		}
	}
	if len(list) == 0 {
		s.problem("%s: empty list", r.URL.Path)
	}
	var sts []map[string]string
	for _, e := range list {
		code, reason := "0", "OK"
		if s.refuse != nil {
			if c, why := s.refuse(e.id); c != "0" && c != "" {
				code, reason = c, why
			}
		}
		if code == "0" {
			s.seen[e.id]++
			if s.seen[e.id] > 1 {
				s.stats.Duplicates++
			}
			s.objects = append(s.objects, Object{Kind: kind, ID: e.id, Face: e.face, MV: e.mv, Count: s.seen[e.id]})
		}
		sts = append(sts, map[string]string{"RequestURL": r.URL.Path, "StatusCode": code, "StatusString": reason,
			"Id": e.id, "LocalTime": time.Now().Format(viid.TimeLayout)})
	}
	writeJSON(w, map[string]any{"ResponseStatusListObject": map[string]any{"ResponseStatusObject": sts}})
}

func (s *Server) checkTime(what, v string) {
	if _, err := time.ParseInLocation(viid.TimeLayout, v, time.Local); err != nil || len(v) != 14 {
		s.problem("%s %q is not yyyyMMddHHmmss", what, v)
	}
}

func (s *Server) checkIDs(dev, id, src string, idRe *regexp.Regexp, typ string) {
	if !idRe.MatchString(id) || !strings.HasPrefix(id, src) || id[41:43] != typ {
		s.problem("object id %q is not SourceID+%s+5 digits", id, typ)
	}
	if !digits41.MatchString(src) || !strings.HasPrefix(src, dev) {
		s.problem("SourceID %q is not 41 digits starting with DeviceID %s", src, dev)
	}
}

func (s *Server) checkFace(dev string, f viid.Face) {
	s.checkIDs(dev, f.FaceID, f.SourceID, digits48, viid.ObjectFace)
	if f.DeviceID != dev || f.InfoKind != 1 {
		s.problem("face %s: DeviceID %q InfoKind %d", f.FaceID, f.DeviceID, f.InfoKind)
	}
	s.checkTime("ShotTime", f.ShotTime)
	s.checkTime("FaceAppearTime", f.FaceAppearTime)
	if f.RightBtmX < f.LeftTopX || f.RightBtmY < f.LeftTopY {
		s.problem("face %s: box (%d,%d)-(%d,%d) upside down", f.FaceID, f.LeftTopX, f.LeftTopY, f.RightBtmX, f.RightBtmY)
	}
	s.checkImages(dev, f.FaceID, f.SubImageList, viid.ImageFace, viid.ImageScene)
}

func (s *Server) checkVehicle(dev string, v viid.MotorVehicle) {
	s.checkIDs(dev, v.MotorVehicleID, v.SourceID, digits48, viid.ObjectMotorV)
	s.checkTime("PassTime", v.PassTime)
	if v.HasPlate != (v.PlateNo != "") {
		s.problem("vehicle %s: HasPlate %v with PlateNo %q", v.MotorVehicleID, v.HasPlate, v.PlateNo)
	}
	if v.Direction != "" && v.Direction != "entry" && v.Direction != "exit" {
		s.problem("vehicle %s: Direction %q", v.MotorVehicleID, v.Direction)
	}
	s.checkImages(dev, v.MotorVehicleID, v.SubImageList, viid.ImagePlate, viid.ImageVehicle)
}

func (s *Server) checkImages(dev, id string, l *viid.SubImageList, types ...string) {
	if l == nil {
		return
	}
	for _, im := range l.SubImageInfoObject {
		if !digits41.MatchString(im.ImageID) || !strings.HasPrefix(im.ImageID, dev) {
			s.problem("%s: ImageID %q", id, im.ImageID)
		}
		ok := false
		for _, t := range types {
			ok = ok || im.Type == t
		}
		if !ok || im.FileFormat != "Jpeg" {
			s.problem("%s: image Type %q FileFormat %q", id, im.Type, im.FileFormat)
		}
		s.checkTime("SubImage ShotTime", im.ShotTime)
		cfg, format, err := image.DecodeConfig(bytes.NewReader(im.Data))
		if err != nil || format != "jpeg" || cfg.Width != im.Width || cfg.Height != im.Height {
			s.problem("%s: image %s does not decode as a %dx%d JPEG (%v %s %dx%d)", id, im.ImageID, im.Width, im.Height, err, format, cfg.Width, cfg.Height)
		}
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, code, str, id string) {
	writeJSON(w, map[string]any{"ResponseStatusObject": map[string]string{
		"RequestURL": r.URL.Path, "StatusCode": code, "StatusString": str, "Id": id, "LocalTime": time.Now().Format(viid.TimeLayout)}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
