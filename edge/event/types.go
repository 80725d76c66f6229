package event

import (
	"fmt"
	"sort"
	"time"
)

// Event types of INTERFACES.md with their default severity.
const (
	GasLeak         = "gas.leak"
	GasCleared      = "gas.cleared"
	ValveClosed     = "valve.closed"
	ValveOpened     = "valve.opened"
	ValveFault      = "valve.fault"
	WristbandSOS    = "wristband.sos"
	WristbandFall   = "wristband.fall"
	WristbandHR     = "wristband.heart_rate"
	WristbandBatt   = "wristband.low_battery"
	WristbandQuiet  = "wristband.inactive"
	PerimeterIntr   = "perimeter.intrusion"
	PerimeterTamper = "perimeter.tamper"
	GateVehicle     = "gate.vehicle"
	GateDenied      = "gate.denied"
	GateFault       = "gate.fault"
	FaceRecognized  = "face.recognized"
	FaceUnknown     = "face.unknown"
	FaceWatchlist   = "face.watchlist"
	ThrowDetected   = "throw.detected"
	CameraOffline   = "camera.offline"
	CameraOnline    = "camera.online"
	DeviceOffline   = "device.offline"
	DeviceOnline    = "device.online"
	MotionDetected  = "motion.detected"
	DeviceTamper    = "device.tamper"
	DeviceBattery   = "device.low_battery"
	DeviceFault     = "device.fault"
	SystemStorage   = "system.storage"
	SystemDeadLtr   = "system.deadletter"
	SystemFault     = "system.fault"
	SystemClock     = "system.clock"
	AlarmOpened     = "alarm.opened"
	AlarmAcked      = "alarm.acknowledged"
	AlarmResolved   = "alarm.resolved"
	AlarmEscalated  = "alarm.escalated"
	AlarmAssigned   = "alarm.assigned"
	AlarmAccepted   = "alarm.accepted"
	AlarmOnScene    = "alarm.on_scene"
	// MediaAdded brings evidence that was not ready at detection (a clip
	// that needs its post-event seconds) to the event data.event_id of
	// type data.event_type, from the same source.
	MediaAdded = "media.added"
)

// types maps every known type to its default severity. Types after
// motion.detected are Warden's own additions, documented in docs/events.md:
// alarm.* record the guards' closed loop so it reaches the platform too.
var types = map[string]Severity{
	GasLeak: Critical, GasCleared: Info, ValveClosed: Info, ValveOpened: Warning, ValveFault: Critical,
	WristbandSOS: Critical, WristbandFall: Critical, WristbandHR: Warning, WristbandBatt: Warning, WristbandQuiet: Critical,
	PerimeterIntr: Critical, PerimeterTamper: Warning,
	GateVehicle: Info, GateDenied: Warning, GateFault: Warning,
	FaceRecognized: Info, FaceUnknown: Warning, FaceWatchlist: Critical,
	ThrowDetected: Critical,
	CameraOffline: Warning, CameraOnline: Info, DeviceOffline: Warning, DeviceOnline: Info,
	MotionDetected: Info, DeviceTamper: Warning, DeviceBattery: Warning, DeviceFault: Warning,
	SystemStorage: Critical, SystemDeadLtr: Warning, SystemFault: Critical, SystemClock: Warning,
	AlarmOpened: Info, AlarmAcked: Info, AlarmResolved: Info, AlarmEscalated: Critical,
	AlarmAssigned: Info, AlarmAccepted: Info, AlarmOnScene: Info, MediaAdded: Info,
}

// Types lists every known event type, sorted.
func Types() []string {
	out := make([]string, 0, len(types))
	for t := range types {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Known reports whether t is a known event type.
func Known(t string) bool { _, ok := types[t]; return ok }

// DefaultSeverity is the severity a type gets unless a driver or rule says otherwise.
func DefaultSeverity(t string) Severity { return types[t] }

// Origin fills the fields every event shares.
type Origin struct {
	Gateway, Site string
	Source        Source
	Location      Location
	Time          time.Time
}

// New builds an event of a known type with its default severity. It panics on
// an unknown type, which is a programming error; use Make for config-driven types.
func New(o Origin, typ string, data map[string]any) *Event {
	e, err := Make(o, typ, "", data)
	if err != nil {
		panic(err)
	}
	return e
}

// Make builds an event of type typ; sev empty means the type's default.
func Make(o Origin, typ string, sev Severity, data map[string]any) (*Event, error) {
	def, ok := types[typ]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", typ)
	}
	if sev == "" {
		sev = def
	}
	if !sev.Valid() {
		return nil, fmt.Errorf("event %s: bad severity %q", typ, sev)
	}
	t := o.Time
	if t.IsZero() {
		t = time.Now()
	}
	if data == nil {
		data = map[string]any{}
	}
	return &Event{
		ID: NewID(t), Time: t.UTC(), Gateway: o.Gateway, Site: o.Site,
		Type: typ, Severity: sev, Source: o.Source, Location: o.Location, Data: data,
	}, nil
}

// Typed constructors, one per contract type that carries data.

func NewGasLeak(o Origin, lelPercent *float64, sev Severity) *Event {
	d := map[string]any{}
	if lelPercent != nil {
		d["lel_percent"] = *lelPercent
	}
	e, _ := Make(o, GasLeak, sev, d)
	return e
}

func NewValveFault(o Origin, reason string) *Event {
	return New(o, ValveFault, map[string]any{"reason": reason})
}

func NewHeartRate(o Origin, bpm float64, sev Severity) *Event {
	e, _ := Make(o, WristbandHR, sev, map[string]any{"bpm": bpm})
	return e
}

func NewGateVehicle(o Origin, plate, direction, decision string) *Event {
	return New(o, GateVehicle, map[string]any{"plate": plate, "direction": direction, "decision": decision})
}

// BBox is an image rectangle in pixels.
type BBox struct{ X, Y, W, H int }

func (b BBox) list() []int { return []int{b.X, b.Y, b.W, b.H} }

func NewFace(o Origin, typ, personID, name string, score float64, box BBox) *Event {
	return New(o, typ, map[string]any{"person_id": personID, "name": name, "score": score, "bbox": box.list()})
}

// TrackPoint is one observation of a falling object: milliseconds since the
// track started and the pixel position.
type TrackPoint struct {
	TMs  int64
	X, Y float64
}

func NewThrow(o Origin, floor int, originX float64, traj []TrackPoint, box BBox) *Event {
	pts := make([][]float64, len(traj))
	for i, p := range traj {
		pts[i] = []float64{float64(p.TMs), p.X, p.Y}
	}
	return New(o, ThrowDetected, map[string]any{
		"origin":     map[string]any{"floor": floor, "x": originX},
		"trajectory": pts, "bbox": box.list(),
	})
}
